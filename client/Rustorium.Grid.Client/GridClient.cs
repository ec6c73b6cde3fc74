using System.Diagnostics;
using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;

namespace Rustorium.Grid.Client;

/// <summary>
/// The .NET client of a Rustorium grid: routes each key to its shard's owner from a cached shard map, checks
/// every proof it gets back, and refreshes the map and retries when a shard moved or a silo restarted.
/// </summary>
/// <example>
/// <code>
/// await using var grid = await GridClient.ConnectAsync(["127.0.0.1:7400"]);
/// await grid.PutAsync("user:42"u8.ToArray(), "Ada"u8.ToArray());
/// var read = await grid.ReadAsync("user:42"u8.ToArray());   // value + proof, already verified
/// </code>
/// </example>
/// <remarks>Thread-safe; one instance per application is the intended use.</remarks>
public sealed class GridClient : IAsyncDisposable
{
    private readonly GridClientOptions _options;
    private readonly IReadOnlyList<string> _seeds;
    private readonly ConcurrentDictionary<string, Lazy<Task<GrainClient>>> _silos = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _mapRefresh = new(1, 1);
    private readonly ProofBatchVerifier _verifier = new();
    private readonly ReadCoalescer _reads;
    private readonly ConcurrentDictionary<long, ShardGrainRef> _shardGrains = new();
    private volatile ShardMap? _map;
    private volatile string? _lastMapSource;

    private readonly GrainFactory _grains;

    private GridClient(IReadOnlyList<string> seeds, GridClientOptions options)
    {
        _seeds = seeds;
        _options = options;
        _grains = new GrainFactory(new AnySiloInvoker(this));
        _reads = new ReadCoalescer(ShardGrainAsync, options.MaxReadBatch, options.CallTimeout);
    }

    /// <summary>Connects to the grid through any of <paramref name="endpoints"/> ("host:port") and loads the shard map.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad endpoints or options;
    /// <see cref="GridErrorCode.Unavailable"/> if no endpoint answers.</exception>
    public static async Task<GridClient> ConnectAsync(IEnumerable<string> endpoints, GridClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        options ??= new GridClientOptions();
        options.Validate();
        var seeds = endpoints.ToList();
        if (seeds.Count == 0) throw GridException.InvalidArgument("Give at least one silo endpoint (host:port).");
        foreach (var e in seeds) ParseEndpoint(e);
        var client = new GridClient(seeds, options);
        try
        {
            // A silo that accepts the connection but answers slowly (just started, busy cores) is asked again with twice the
            // patience, within CallTimeout; a silo that refuses the connection fails the connect at once.
            var deadline = Stopwatch.GetTimestamp() + (long)(options.CallTimeout.TotalSeconds * Stopwatch.Frequency);
            var perSilo = options.MapRefreshTimeout;
            while (true)
            {
                try
                {
                    await client.RefreshShardMapAsync(perSilo, cancellationToken).ConfigureAwait(false);
                    return client;
                }
                catch (GridException e) when (e.InnerException is GridException { Code: GridErrorCode.Timeout } && Stopwatch.GetTimestamp() < deadline)
                {
                    var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                    perSilo = perSilo * 2 < left ? perSilo * 2 : left;
                }
            }
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The shard map the client routes with (refreshed on <see cref="GridErrorCode.NotOwner"/>).</summary>
    public ShardMap ShardMap => _map ?? throw new InvalidOperationException("Not connected.");

    // ------------------------------------------------------------------ writes

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>.</summary>
    public Task<WriteResult> PutAsync(byte[] key, byte[] value, SyncMode? mode = null, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(value);
        _options.Limits.CheckValue(value);
        return OnShardOfAsync(key, (shard, ct) => shard.PutAsync(key, value, mode ?? _options.DefaultSyncMode, ct), cancellationToken);
    }

    /// <summary>Removes <paramref name="key"/> (absent keys are fine).</summary>
    public Task<WriteResult> DeleteAsync(byte[] key, SyncMode? mode = null, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        return OnShardOfAsync(key, (shard, ct) => shard.DeleteAsync(key, mode ?? _options.DefaultSyncMode, ct), cancellationToken);
    }

    /// <summary>Applies <paramref name="operations"/> atomically. All keys must belong to one shard (cross-shard atomicity comes with transactions).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the keys span shards or an operation is bad.</exception>
    public Task<WriteResult> BatchAsync(IReadOnlyList<BatchOperation> operations, SyncMode? mode = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count == 0) throw GridException.InvalidArgument("A batch needs at least one operation.");
        foreach (var op in operations)
        {
            CheckKey(op.Key);
            if (op.Kind == BatchOperationKind.Put) _options.Limits.CheckValue(op.Value ?? throw GridException.InvalidArgument("A put needs a value."));
        }
        var array = operations.ToArray();
        CheckOneShard(ShardMap, array);
        // Re-checked whenever the map is refreshed: a split may have cut the batch's keys apart since it was built.
        return OnShardOfAsync(operations[0].Key, (shard, ct) => shard.BatchAsync(array, mode ?? _options.DefaultSyncMode, ct), cancellationToken,
            map => CheckOneShard(map, array));
    }

    private static void CheckOneShard(ShardMap map, BatchOperation[] operations)
    {
        var first = map.Locate(operations[0].Key);
        foreach (var op in operations)
        {
            var shard = map.Locate(op.Key);
            if (shard.ShardId != first.ShardId)
                throw GridException.InvalidArgument(
                    $"The keys of a batch span more than one shard ({first.ShardId} {first.Range} and {shard.ShardId} {shard.Range}); " +
                    "use one batch per shard (transactions will lift this).");
        }
    }

    /// <summary>Sets <paramref name="key"/> durably and returns the write with its proof (verified unless turned off).</summary>
    public async Task<ProvenWriteResult> WriteWithProofAsync(byte[] key, byte[] value, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(value);
        _options.Limits.CheckValue(value);
        var result = await OnShardOfAsync(key, (shard, ct) => shard.WriteWithProofAsync(key, value, ct), cancellationToken).ConfigureAwait(false);
        if (_options.VerifyProofs) await _verifier.EnsureVerifiesAsync(result.Proof, key, value).ConfigureAwait(false);
        return result;
    }

    // ------------------------------------------------------------------ reads

    /// <summary>The value of <paramref name="key"/>, or null; proved and verified unless verification is turned off.</summary>
    public async Task<byte[]?> GetAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        var read = await ReadAsync(key, _options.VerifyProofs, cancellationToken).ConfigureAwait(false);
        return read.Value;
    }

    /// <summary>The value of <paramref name="key"/> with its version, region and proof (verified unless turned off).</summary>
    public async Task<ReadResult> ReadAsync(byte[] key, bool withProof = true, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        // Concurrent reads of a shard go together (ReadCoalescer); one the batch could not answer goes alone.
        var read = _options.MaxReadBatch > 1 && LocateOrNull(key) is { } shard
            ? await _reads.ReadAsync(shard, key, withProof, cancellationToken).ConfigureAwait(false)
            : null;
        read ??= await OnShardOfAsync(key, (shard, ct) => shard.ReadAsync(key, withProof, ct), cancellationToken).ConfigureAwait(false);
        if (withProof && _options.VerifyProofs)
        {
            if (read.Proof is null) throw new GridException(GridErrorCode.VerificationFailed, "The silo answered a proved read without a proof.");
            await _verifier.EnsureVerifiesAsync(read.Proof, key, read.Value).ConfigureAwait(false);
        }
        return read;
    }

    /// <summary>
    /// The rows with <paramref name="start"/> ≤ key &lt; <paramref name="end"/> (null: to the end of the key space), in
    /// key order across shards, at most <paramref name="limit"/> of them (null: all), fetched page by page.
    /// </summary>
    public async IAsyncEnumerable<KeyValue> ScanAsync(byte[] start, byte[]? end = null, int? limit = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        if (end is not null && KeyRange.Compare(start, end) > 0) throw GridException.InvalidArgument("Scan start is after its end.");
        if (limit is < 1) throw GridException.InvalidArgument($"Scan limit must be positive; got {limit}.");
        int left = limit ?? int.MaxValue;
        var from = start;
        while (left > 0)
        {
            var entry = ShardMap.Locate(from);
            byte[]? to = end;
            if (!entry.Range.IsUnbounded && (to is null || KeyRange.Compare(to, entry.Range.End) > 0)) to = entry.Range.End.ToArray();
            var pageFrom = from;
            var page = await OnShardOfAsync(from, (shard, ct) => shard.ScanAsync(pageFrom, to, Math.Min(left, _options.ScanPageSize), ct), cancellationToken).ConfigureAwait(false);
            foreach (var item in page.Items)
            {
                yield return item;
                if (--left == 0) yield break;
            }
            if (page.NextKey is not null) { from = page.NextKey; continue; }
            // This shard is done: continue at the next shard's start, unless the scan ends here.
            if (entry.Range.IsUnbounded || (end is not null && KeyRange.Compare(end, entry.Range.End) <= 0)) yield break;
            from = entry.Range.End.ToArray();
        }
    }

    // ------------------------------------------------------------------ grains and routing

    /// <summary>A reference to a shard's grain on its owning silo, for direct grain calls.</summary>
    public async Task<IShardGrain> GetShardGrainAsync(long shardId, CancellationToken cancellationToken = default)
    {
        var entry = ShardMap.Shards.FirstOrDefault(s => s.ShardId == shardId)
            ?? throw new GridException(GridErrorCode.UnknownShard, $"Shard {shardId} is not in the shard map.");
        var silo = await SiloAsync(entry.Endpoint, cancellationToken).ConfigureAwait(false);
        return silo.GetGrain<IShardGrain>(shardId);
    }

    /// <summary>
    /// A reference to any grain of the cluster by interface and key (Orleans's <c>GetGrain</c>). Calls go to a silo this client
    /// reaches, which runs them or forwards them to the silo that hosts the grain (docs/runtime.md, "Placement"); if that silo
    /// cannot be reached, the next one is tried; a call that was sent is never sent again (at most once). Shard data goes through <see cref="PutAsync"/>, <see cref="ReadAsync"/> etc.
    /// </summary>
    public TGrainInterface GetGrain<TGrainInterface>(long key) where TGrainInterface : IGrainWithIntegerKey =>
        _grains.GetGrain<TGrainInterface>(key);

    /// <inheritdoc cref="GetGrain{TGrainInterface}(long)"/>
    public TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey =>
        _grains.GetGrain<TGrainInterface>(key);

    /// <summary>Sends grain calls to a reachable silo: the one the shard map came from first, then the others and the seeds.</summary>
    private sealed class AnySiloInvoker(GridClient client) : IGrainCallInvoker
    {
        public async ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken)
        {
            GridException? last = null;
            foreach (var endpoint in client.KnownEndpoints())
            {
                GrainClient silo;
                try
                {
                    silo = await client.SiloAsync(endpoint, cancellationToken).ConfigureAwait(false);
                }
                catch (GridException ex) when (ex.Code is GridErrorCode.Unavailable or GridErrorCode.Timeout)
                {
                    last = ex;
                    continue;
                }
                // Once sent, a call is not sent again (at most once): a failure is the caller's to see.
                return await silo.Invoker.InvokeAsync(call, cancellationToken).ConfigureAwait(false);
            }
            throw last ?? new GridException(GridErrorCode.Unavailable, "No silo of the grid could be reached.");
        }
    }

    /// <summary>Every silo endpoint the client knows, once each: the one the shard map came from last, the map's owners, the seeds.</summary>
    private List<string> KnownEndpoints() =>
        new[] { _lastMapSource }.Concat(_map?.Shards.Select(s => s.Endpoint) ?? []).Concat(_seeds).OfType<string>().Distinct(StringComparer.Ordinal).ToList();

    /// <summary>Reloads the shard map from any reachable silo.</summary>
    public Task<ShardMap> RefreshShardMapAsync(CancellationToken cancellationToken = default) =>
        RefreshShardMapAsync(_options.MapRefreshTimeout, cancellationToken);

    private async Task<ShardMap> RefreshShardMapAsync(TimeSpan perSilo, CancellationToken cancellationToken)
    {
        await _mapRefresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            GridException? last = null;
            // The silo that answered last first; each gets a short deadline, so a paused silo (which still accepts
            // connections) costs one MapRefreshTimeout, not the whole call.
            var candidates = KnownEndpoints();
            foreach (var endpoint in candidates)
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                attempt.CancelAfter(perSilo);
                try
                {
                    var silo = await SiloAsync(endpoint, attempt.Token).ConfigureAwait(false);
                    var map = await silo.GetGrain<IClusterGrain>(0).GetShardMapAsync(attempt.Token).ConfigureAwait(false);
                    if (map.Shards.Length == 0) throw new GridException(GridErrorCode.Internal, $"Silo {endpoint} returned an empty shard map.");
                    // Every silo reads the map from the cluster's store when asked, so the answer is current.
                    _map = map;
                    _lastMapSource = endpoint;
                    _reads.Retain(map);
                    return map;
                }
                catch (GridException ex) when (ex.Code is GridErrorCode.Unavailable or GridErrorCode.Timeout)
                {
                    Forget(endpoint);
                    last = ex;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    Forget(endpoint);
                    last = new GridException(GridErrorCode.Timeout, $"Silo {endpoint} did not answer the shard map within {perSilo.TotalSeconds:0.#} s.");
                }
            }
            throw new GridException(GridErrorCode.Unavailable,
                $"No silo answered ({string.Join(", ", candidates)}): {last?.Message ?? "no endpoints"}", last);
        }
        finally
        {
            _mapRefresh.Release();
        }
    }

    private async Task<T> OnShardOfAsync<T>(byte[] key, Func<IShardGrain, CancellationToken, Task<T>> call, CancellationToken cancellationToken,
        Action<ShardMap>? recheck = null)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.CallTimeout);
        try
        {
            return await OnShardOfCoreAsync(key, call, recheck, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            // Raised by the call, a backoff or a map refresh: the call's own deadline passed.
            throw CallTimedOut(_options.CallTimeout);
        }
    }

    private async Task<T> OnShardOfCoreAsync<T>(byte[] key, Func<IShardGrain, CancellationToken, Task<T>> call, Action<ShardMap>? recheck,
        CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            var map = ShardMap;
            if (attempt > 1) recheck?.Invoke(map);
            var entry = map.Locate(key);
            try
            {
                return await call(await ShardGrainAsync(entry.Endpoint, entry.ShardId, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            }
            catch (GridException ex) when (attempt < _options.MaxAttempts && ex.Code is GridErrorCode.NotOwner or GridErrorCode.Unavailable or GridErrorCode.UnknownShard)
            {
                // The shard moved, or its silo restarted or died and the cluster is re-homing its shards: forget the
                // connection, wait a little (at once for a plain redirect), reload the map, try again — until the call's
                // deadline, so a failover or a migration looks like a slow call, not an error.
                if (ex.Code == GridErrorCode.Unavailable) Forget(entry.Endpoint);
                if (ex.Code == GridErrorCode.Unavailable || attempt > 2) await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                try
                {
                    await RefreshShardMapAsync(ct).ConfigureAwait(false);
                }
                catch (GridException refresh) when (refresh.Code is GridErrorCode.Unavailable or GridErrorCode.Timeout)
                {
                    // No silo answered right now: the next attempt waits and asks again.
                }
            }
        }
    }

    /// <summary>The shard of <paramref name="key"/> in the cached map; null if the map has no such range (the ordinary path reloads it).</summary>
    private ShardMapEntry? LocateOrNull(byte[] key)
    {
        try
        {
            return ShardMap.Locate(key);
        }
        catch (GridException)
        {
            return null;
        }
    }

    /// <summary>The error of a call whose deadline passed.</summary>
    internal static GridException CallTimedOut(TimeSpan timeout) =>
        new(GridErrorCode.Timeout, $"The call did not complete within {timeout.TotalSeconds:0.#} s.");

    /// <summary>The reference to a shard's grain over the connection to <paramref name="endpoint"/>, made once per connection and shard.</summary>
    private async Task<IShardGrain> ShardGrainAsync(string endpoint, long shardId, CancellationToken cancellationToken)
    {
        var silo = await SiloAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (_shardGrains.TryGetValue(shardId, out var known) && ReferenceEquals(known.Silo, silo)) return known.Grain;
        var grain = silo.GetGrain<IShardGrain>(shardId);
        _shardGrains[shardId] = new ShardGrainRef(silo, grain);
        return grain;
    }

    private sealed record ShardGrainRef(GrainClient Silo, IShardGrain Grain);

    private static TimeSpan Backoff(int attempt) => TimeSpan.FromMilliseconds(Math.Min(1000, 50 * (1 << Math.Min(attempt, 5))));

    private async Task<GrainClient> SiloAsync(string endpoint, CancellationToken cancellationToken)
    {
        var lazy = _silos.GetOrAdd(endpoint, e => new Lazy<Task<GrainClient>>(() => ConnectSiloAsync(e)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (GridException)
        {
            _silos.TryRemove(new KeyValuePair<string, Lazy<Task<GrainClient>>>(endpoint, lazy));
            throw;
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            _silos.TryRemove(new KeyValuePair<string, Lazy<Task<GrainClient>>>(endpoint, lazy));
            throw new GridException(GridErrorCode.Unavailable, $"Cannot reach silo {endpoint}: {ex.Message}", ex);
        }
    }

    private static Task<GrainClient> ConnectSiloAsync(string endpoint) => GrainClient.ConnectAsync(ParseEndpoint(endpoint));

    private void Forget(string endpoint)
    {
        if (_silos.TryRemove(endpoint, out var lazy) && lazy.IsValueCreated) _ = DisposeQuietlyAsync(lazy.Value);
    }

    private static async Task DisposeQuietlyAsync(Task<GrainClient> connecting)
    {
        try
        {
            await (await connecting.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A connection that failed or is already broken has nothing left to close.
        }
    }

    private static IPEndPoint ParseEndpoint(string endpoint)
    {
        if (string.IsNullOrWhiteSpace(endpoint) || !IPEndPoint.TryParse(endpoint, out var ep) || ep.Port == 0)
            throw GridException.InvalidArgument($"'{endpoint}' is not a silo endpoint: use host:port with a numeric IP, e.g. 127.0.0.1:7400.");
        return ep;
    }

    private void CheckKey(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _options.Limits.CheckKey(key);
    }

    /// <summary>Closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var (_, lazy) in _silos)
        {
            if (lazy.IsValueCreated) await DisposeQuietlyAsync(lazy.Value).ConfigureAwait(false);
        }
        _silos.Clear();
        _mapRefresh.Dispose();
    }
}
