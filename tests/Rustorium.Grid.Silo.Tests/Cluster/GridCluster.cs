using System.Diagnostics;
using System.Globalization;
using System.Text;
using Rustorium.Grid.Client;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Storage.Postgres;
using Rustorium.Grid.Testing;
using Xunit.Abstractions;
using MemberStatus = Rustorium.Grid.Cluster.SiloStatus;

namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>
/// A cluster for one test: a fresh database on the shared test PostgreSQL server and real silo processes on loopback,
/// with short failure-detection timings, plus direct read access to the cluster store (membership and directory) and the
/// shard store, which the checks read as the truth. Every step is logged with its time since the start, and
/// <see cref="DumpAsync"/> gives the silos' outputs and the directory for failure messages.
/// </summary>
internal sealed class GridCluster : IAsyncDisposable
{
    /// <summary>Heartbeat period of every silo.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>Heartbeat age after which a silo is declared dead.</summary>
    public static readonly TimeSpan DeathTimeout = TimeSpan.FromSeconds(3);

    /// <summary>How often each silo reconciles its shards with the directory.</summary>
    public static readonly TimeSpan ReconcileInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a rebalanced shard stays put.</summary>
    public static readonly TimeSpan MoveCooldown = TimeSpan.FromSeconds(5);

    /// <summary>The rebalance hysteresis (the silo default).</summary>
    public const int RebalanceThreshold = 2;

    /// <summary>Shards of the new store (8: split on the first key byte, 0x20 apart).</summary>
    public const int InitialShards = 8;

    /// <summary>Deadline for a silo process to answer /health (the first start on a busy 2-core machine is slow).</summary>
    public static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(60);

    private const string Schema = "grid_cluster";
    private readonly ITestOutputHelper _output;
    private readonly TempDirectory _dir = new("rgrid-cluster-");
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<ClusterSilo> _silos = [];
    private readonly List<string> _log = [];
    private readonly List<WriteLoad> _loads = [];
    private int _next;

    private GridCluster(ITestOutputHelper output, string connectionString, PostgresClusterStore store, PostgresShardStore shards)
    {
        _output = output;
        ConnectionString = connectionString;
        Store = store;
        Shards = shards;
    }

    /// <summary>The database's connection string.</summary>
    public string ConnectionString { get; }

    /// <summary>Membership and directory, read directly from PostgreSQL.</summary>
    public PostgresClusterStore Store { get; }

    /// <summary>The shard store (rows, roots, versions), read directly from PostgreSQL.</summary>
    public PostgresShardStore Shards { get; }

    /// <summary>Every silo started, in start order (running or not).</summary>
    public IReadOnlyList<ClusterSilo> Silos => _silos;

    /// <summary>The silos whose process still runs.</summary>
    public IReadOnlyList<ClusterSilo> Running => _silos.Where(s => !s.HasExited).ToList();

    /// <summary>Time since the cluster object was created (the log's clock).</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>A fresh database with the grid's schema, no silo yet.</summary>
    public static async Task<GridCluster> CreateAsync(ITestOutputHelper output)
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync("cluster");
        var store = await PostgresClusterStore.OpenAsync(new PostgresClusterStoreOptions { ConnectionString = connectionString, Schema = Schema }, default);
        var shards = await PostgresShardStore.OpenAsync(new PostgresShardStoreOptions { ConnectionString = connectionString, Schema = Schema }, default);
        return new GridCluster(output, connectionString, store, shards);
    }

    /// <summary>
    /// Starts <paramref name="count"/> silos together and waits until each serves and is an active member, and every
    /// shard has a live owner that has it open.
    /// </summary>
    public async Task<IReadOnlyList<ClusterSilo>> StartSilosAsync(int count, bool rebalance, params string[] extraSettings)
    {
        var started = Enumerable.Range(0, count).Select(_ => StartSilo(rebalance, extraSettings)).ToList();
        foreach (var silo in started) await silo.WaitUntilHealthyAsync(StartDeadline);
        await WaitUntilMembersAsync(started);
        await WaitUntilSettledAsync(TimeSpan.FromSeconds(20));
        return started;
    }

    /// <summary>Starts one more silo (not waiting for it).</summary>
    public ClusterSilo StartSilo(bool rebalance, params string[] extraSettings)
    {
        var name = $"silo-{++_next}";
        string[] settings =
        [
            "--shards", InitialShards.ToString(CultureInfo.InvariantCulture),
            $"--Silo:Cluster:HeartbeatInterval={HeartbeatInterval:c}",
            $"--Silo:Cluster:DeathTimeout={DeathTimeout:c}",
            $"--Silo:Cluster:ReconcileInterval={ReconcileInterval:c}",
            $"--Silo:Cluster:MoveCooldown={MoveCooldown:c}",
            $"--Silo:Cluster:RebalanceThreshold={RebalanceThreshold}",
            $"--Silo:Cluster:Rebalance={(rebalance ? "true" : "false")}",
            "--drain-timeout", "00:00:05",
            .. extraSettings,
        ];
        var silo = ClusterSilo.Start(name, Path.Combine(_dir.Path, name), ConnectionString, Schema, settings);
        _silos.Add(silo);
        Log($"started {name} on {silo.Endpoint} (pid {silo.ProcessId}, rebalance {rebalance})");
        return silo;
    }

    /// <summary>Waits until every silo in <paramref name="silos"/> is an active member of the table.</summary>
    public async Task WaitUntilMembersAsync(IEnumerable<ClusterSilo> silos)
    {
        var endpoints = silos.Select(s => s.Endpoint).ToHashSet();
        await PollAsync(async () =>
        {
            var members = await Store.ReadAllAsync(default);
            return endpoints.All(e => members.Any(m => m.Address.Endpoint == e && m.Status == MemberStatus.Active));
        }, TimeSpan.FromSeconds(20), $"{string.Join(", ", endpoints)} active in the membership table");
    }

    /// <summary>
    /// Waits until every shard is owned by an active member that is one of the running silos, and each running silo
    /// reports active exactly the shards it owns, at their directory epochs (GET /status). Returns the directory then.
    /// </summary>
    public async Task<ShardDirectorySnapshot> WaitUntilSettledAsync(TimeSpan deadline)
    {
        ShardDirectorySnapshot? settled = null;
        string last = "nothing read yet";
        await PollAsync(async () =>
        {
            var (ok, why, snapshot) = await CheckSettledAsync();
            last = why;
            settled = snapshot;
            return ok;
        }, deadline, () => $"the cluster to settle (every shard owned by a running active silo that has it open, and nothing else open): {last}");
        return settled!;
    }

    private async Task<(bool Ok, string Why, ShardDirectorySnapshot Snapshot)> CheckSettledAsync()
    {
        var snapshot = await Store.ReadAsync(default);
        var members = await Store.ReadAllAsync(default);
        var running = Running;
        if (snapshot.Shards.Count == 0) return (false, "the directory has no shards yet", snapshot);
        foreach (var shard in snapshot.Shards)
        {
            if (shard.Owner is not { } owner) return (false, $"shard {shard.ShardId} has no owner", snapshot);
            if (!members.Any(m => m.Address == owner && m.Status == MemberStatus.Active))
                return (false, $"shard {shard.ShardId} is owned by {owner}, not an active member", snapshot);
            if (!running.Any(s => s.Endpoint == owner.Endpoint))
                return (false, $"shard {shard.ShardId} is owned by {owner}, whose process is not running", snapshot);
        }
        foreach (var silo in running)
        {
            IReadOnlyDictionary<long, long> active;
            try
            {
                active = await silo.ReadActiveShardsAsync(default);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return (false, $"{silo.Name} /status: {e.Message}", snapshot);
            }
            var owned = snapshot.Shards.Where(s => s.Owner?.Endpoint == silo.Endpoint).ToDictionary(s => s.ShardId, s => s.Epoch);
            var stray = active.Where(a => !owned.TryGetValue(a.Key, out long epoch) || epoch != a.Value).ToList();
            if (stray.Count > 0)
                return (false, $"{silo.Name} reports active {Describe(stray)} but owns {Describe(owned)}", snapshot);
            var closed = owned.Keys.Where(id => !active.ContainsKey(id)).ToList();
            if (closed.Count > 0)
                return (false, $"{silo.Name} owns shards {string.Join(",", closed)} but has not opened them", snapshot);
        }
        return (true, "settled", snapshot);
    }

    private static string Describe(IEnumerable<KeyValuePair<long, long>> shards) =>
        "{" + string.Join(", ", shards.OrderBy(s => s.Key).Select(s => $"{s.Key}@e{s.Value}")) + "}";

    /// <summary>Shards owned by each running silo (zero for a silo that owns none).</summary>
    public Dictionary<ClusterSilo, List<ShardOwnership>> OwnedBySilo(ShardDirectorySnapshot snapshot) =>
        Running.ToDictionary(s => s, s => snapshot.Shards.Where(o => o.Owner?.Endpoint == s.Endpoint).ToList());

    /// <summary>
    /// Evens out the running silos' shard counts (to within one) with control-grain moves, for tests whose silos do not
    /// rebalance: the first silo up claims most shards before the others join.
    /// </summary>
    public async Task<ShardDirectorySnapshot> BalanceAsync()
    {
        for (int round = 0; ; round++)
        {
            var snapshot = await Store.ReadAsync(default);
            var owned = OwnedBySilo(snapshot);
            var most = owned.OrderByDescending(p => p.Value.Count).First();
            var least = owned.OrderBy(p => p.Value.Count).First();
            if (most.Value.Count - least.Value.Count <= 1)
            {
                Log("balanced: " + Describe(snapshot));
                return await WaitUntilSettledAsync(TimeSpan.FromSeconds(10));
            }
            if (round > 3 * InitialShards) throw new Xunit.Sdk.XunitException($"Balancing did not converge: {Describe(snapshot)}\n{await DumpAsync()}");
            var shard = most.Value.OrderBy(s => s.KeyCount).ThenBy(s => s.ShardId).First();
            await MoveAsync(shard.ShardId, most.Key, least.Key);
        }
    }

    /// <summary>Moves a shard with <see cref="ISiloControlGrain.MoveShardAsync"/> on its owner; returns the result and the wall-clock time of the call.</summary>
    public async Task<(ShardMoveResult Result, TimeSpan Elapsed)> MoveAsync(long shardId, ClusterSilo from, ClusterSilo to)
    {
        var watch = Stopwatch.StartNew();
        var result = await from.CallControlAsync(control => control.MoveShardAsync(shardId, to.Endpoint, default));
        watch.Stop();
        Log($"moved shard {shardId} {from.Name} -> {to.Name}: epoch {result.Epoch}, version {result.Version}, " +
            $"{result.ElapsedMicroseconds / 1000.0:0.0} ms in the silo, {watch.Elapsed.TotalMilliseconds:0.0} ms for the call");
        return (result, watch.Elapsed);
    }

    /// <summary>A client seeded with every running silo.</summary>
    public Task<GridClient> ConnectClientAsync(TimeSpan callTimeout) =>
        GridClient.ConnectAsync(Running.Select(s => s.Endpoint), new GridClientOptions { CallTimeout = callTimeout });

    /// <summary>A load through <paramref name="client"/> (see <see cref="WriteLoad"/>), started, and cancelled when the cluster is disposed.</summary>
    public WriteLoad StartLoad(GridClient client, string tag, int writers = 6, int readers = 2, TimeSpan? pause = null)
    {
        var load = new WriteLoad(client, tag, writers, readers, pause ?? TimeSpan.FromMilliseconds(2), () => _clock.Elapsed);
        _loads.Add(load);
        load.Start();
        Log($"load '{tag}' started: {writers} writers, {readers} readers");
        return load;
    }

    /// <summary>The running silo serving <paramref name="endpoint"/>.</summary>
    public ClusterSilo SiloAt(string endpoint) => _silos.Last(s => s.Endpoint == endpoint);

    /// <summary>Polls <paramref name="condition"/> every 50 ms until it holds; fails with <paramref name="what"/> at the deadline.</summary>
    public Task PollAsync(Func<Task<bool>> condition, TimeSpan deadline, string what) => PollAsync(condition, deadline, () => what);

    /// <inheritdoc cref="PollAsync(Func{Task{bool}}, TimeSpan, string)"/>
    public async Task PollAsync(Func<Task<bool>> condition, TimeSpan deadline, Func<string> what)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (await condition()) return;
            if (watch.Elapsed > deadline) throw new Xunit.Sdk.XunitException($"Waited {deadline.TotalSeconds:0.#} s for {what()}.\n{await DumpAsync()}");
            await Task.Delay(50);
        }
    }

    /// <summary>A line per shard: id, range, owner, epoch, version, keys.</summary>
    public string Describe(ShardDirectorySnapshot snapshot) =>
        $"generation {snapshot.Generation}: " + string.Join("; ", snapshot.Shards.Select(s =>
            $"#{s.ShardId} {Hex(s.Range.Start)}..{(s.Range.IsUnbounded ? "end" : Hex(s.Range.End))} " +
            $"{(s.Owner is { } o ? NameOf(o.Endpoint) : "no owner")} e{s.Epoch} v{s.Version} k{s.KeyCount}"));

    private string NameOf(string endpoint) => _silos.LastOrDefault(s => s.Endpoint == endpoint)?.Name ?? endpoint;

    private static string Hex(ReadOnlySpan<byte> bytes) => bytes.Length == 0 ? "''" : Convert.ToHexStringLower(bytes);

    /// <summary>Writes a timestamped line to the test output (and keeps it for <see cref="DumpAsync"/>).</summary>
    public void Log(string line)
    {
        var stamped = $"[{_clock.Elapsed.TotalSeconds,7:0.000} s] {line}";
        lock (_log) _log.Add(stamped);
        try
        {
            _output.WriteLine(stamped);
        }
        catch (InvalidOperationException)
        {
            // The test already finished (a background task logging late).
        }
    }

    /// <summary>The test's log, the directory and the membership table as PostgreSQL holds them now, and each silo's last output lines.</summary>
    public async Task<string> DumpAsync(int linesPerSilo = 80)
    {
        var text = new StringBuilder("==== cluster dump\n");
        lock (_log) text.AppendLine(string.Join('\n', _log));
        try
        {
            text.AppendLine("directory: " + Describe(await Store.ReadAsync(default)));
            foreach (var m in await Store.ReadAllAsync(default))
                text.AppendLine($"member {m.Address} {m.Name} {m.Status} heartbeat age {m.HeartbeatAge.TotalSeconds:0.0} s");
        }
        catch (Exception e)
        {
            text.AppendLine("(cannot read the cluster store: " + e.Message + ")");
        }
        text.AppendLine(await ReadSessionsAsync());
        foreach (var silo in _silos) text.AppendLine(silo.Tail(linesPerSilo));
        return text.ToString();
    }

    /// <summary>
    /// Sessions that block another session's lock wait while they themselves wait for their client in the middle of a
    /// statement pipeline (state active, wait ClientRead): a silo frozen half-way through sending a commit, still holding
    /// the shard's row lock. Neither idle_in_transaction_session_timeout nor statement_timeout ends such a session
    /// (see the report of <see cref="ClusterFaultTests"/>). Empty if there is none.
    /// </summary>
    public async Task<string> FindFrozenLockHoldersAsync()
    {
        await using var connection = new Npgsql.NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            """
            SELECT string_agg(format('pid %s (%s %s, in a transaction for %s s, blocking %s): %s', h.pid, h.state, h.wait_event,
                       round(extract(epoch FROM clock_timestamp() - h.xact_start)::numeric, 1), w.pid, left(h.query, 80)), '; ')
            FROM pg_stat_activity w
            JOIN pg_stat_activity h ON h.pid = ANY (pg_blocking_pids(w.pid))
            WHERE w.datname = current_database() AND h.state = 'active' AND h.wait_event = 'ClientRead'
            """, connection);
        return await command.ExecuteScalarAsync() as string ?? "";
    }

    /// <summary>
    /// The database's sessions that are in a transaction or waiting (pg_stat_activity, with the sessions blocking each):
    /// a silo frozen inside a transaction shows up here as the holder of a shard's row lock.
    /// </summary>
    private async Task<string> ReadSessionsAsync()
    {
        try
        {
            await using var connection = new Npgsql.NpgsqlConnection(ConnectionString);
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand(
                """
                SELECT pid, coalesce(state, ''), coalesce(wait_event_type || ':' || wait_event, ''),
                       coalesce(extract(epoch FROM clock_timestamp() - xact_start)::float8, -1),
                       pg_blocking_pids(pid)::text, left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 120)
                FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND (xact_start IS NOT NULL OR wait_event_type = 'Lock')
                ORDER BY xact_start
                """, connection);
            await using var reader = await command.ExecuteReaderAsync();
            var lines = new StringBuilder("sessions in a transaction:");
            while (await reader.ReadAsync())
                lines.Append($"\n  pid {reader.GetInt32(0)} {reader.GetString(1)} wait {reader.GetString(2)} xact {reader.GetDouble(3):0.0} s " +
                    $"blocked by {reader.GetString(4)}: {reader.GetString(5)}");
            return lines.ToString();
        }
        catch (Exception e)
        {
            return "(cannot read pg_stat_activity: " + e.Message + ")";
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var load in _loads) load.Cancel();
        foreach (var silo in _silos) await silo.DisposeAsync();
        await Shards.DisposeAsync();
        await Store.DisposeAsync();
        _dir.Dispose();
    }
}
