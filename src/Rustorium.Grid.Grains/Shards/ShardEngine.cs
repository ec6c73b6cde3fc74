using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// One shard, live: validates requests, group-commits writes (<see cref="ShardWriter"/>), folds the committed groups
/// into the shard's tree (<see cref="ShardFolder"/>), and answers reads with proofs. The ShardGrain is a thin adapter around it;
/// see docs/sharding.md for the guarantees.
/// </summary>
public sealed class ShardEngine : IAsyncDisposable
{
    private readonly IShardStore _store;
    private readonly ShardEngineOptions _options;
    private readonly ShardTree _tree;
    private readonly ShardWriter _writer;
    private readonly ShardFolder _folder;
    private GridException? _fenced;
    private readonly RowCache? _rows;

    private ShardEngine(IShardStore store, ShardState state, ShardEngineOptions options, TreeFoldBatcher? folds = null)
    {
        _store = store;
        _options = options;
        ShardId = state.ShardId;
        Range = state.Range;
        Epoch = state.Epoch;
        _tree = new ShardTree(store, state);
        _rows = options.RowCacheBytes > 0 ? new RowCache(options.RowCacheBytes) : null;
        _folder = new ShardFolder(store, state, state.Epoch, options, _tree, Fence, folds);
        _writer = new ShardWriter(store, state.ShardId, state.Epoch, state.Version, options, _folder, Fence, _rows);
    }

    /// <summary>
    /// Claims the shard (its epoch moves on, fencing any earlier owner) and starts serving from its stored root:
    /// nothing is rehashed, tree nodes load as paths are walked.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/>; <see cref="GridErrorCode.InvalidArgument"/> for bad options.</exception>
    public static async Task<ShardEngine> OpenAsync(IShardStore store, long shardId, ShardEngineOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var state = await store.ClaimAsync(shardId, cancellationToken).ConfigureAwait(false);
        return new ShardEngine(store, state, options);
    }

    /// <summary>
    /// Starts serving a shard this process already owns under <paramref name="owned"/>'s epoch (a cluster claimed it in its
    /// directory): nothing is rehashed, tree nodes load as paths are walked. Commits are refused once the epoch moves on.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options.</exception>
    /// <param name="store">The shard store.</param>
    /// <param name="owned">The shard's state under the epoch this process owns it by.</param>
    /// <param name="options">Engine options.</param>
    /// <param name="folds">The silo's fold batcher, to hash this shard's groups together with other shards'; null folds alone.</param>
    public static ShardEngine Open(IShardStore store, ShardState owned, ShardEngineOptions options, TreeFoldBatcher? folds = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(owned);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ShardEngine(store, owned, options, folds);
    }

    /// <summary>True once a commit was refused because another owner claimed the shard: this engine only refuses from then on.</summary>
    public bool IsFenced => Volatile.Read(ref _fenced) is not null;

    /// <summary>The shard.</summary>
    public long ShardId { get; }

    /// <summary>The keys it owns.</summary>
    public KeyRange Range { get; }

    /// <summary>This activation's ownership epoch.</summary>
    public long Epoch { get; }

    /// <summary>The last committed data version.</summary>
    public long Version => _writer.Version;

    /// <summary>The version of the stored tree (<see cref="Root"/>, the last checkpoint): at most <see cref="FoldedVersion"/>.</summary>
    public long TreeVersion => _folder.TreeVersion;

    /// <summary>The version of the folded tree, which proofs are of: at most <see cref="Version"/>, behind it by the groups not folded yet.</summary>
    public long FoldedVersion => _folder.FoldedVersion;

    /// <summary>The root of the stored tree at <see cref="TreeVersion"/>.</summary>
    public Crypto.Fr Root => _tree.Root;

    /// <summary>Keys in the tree at <see cref="FoldedVersion"/>.</summary>
    public long KeyCount => _tree.KeyCount;

    /// <summary>The shard's folder, for tests that interleave with it.</summary>
    internal ShardFolder Folder => _folder;

    /// <summary>Waits until the stored tree holds every write committed so far (<see cref="TreeVersion"/> reaches <see cref="Version"/> as it was): folds and checkpoints at once.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if the engine stopped folding first.</exception>
    public Task WaitForTreeAsync(CancellationToken cancellationToken = default) => _folder.WaitForTreeVersionAsync(Version, cancellationToken);

    /// <summary>The error of a commit (data or tree) the store refused because another owner moved the epoch on.</summary>
    internal static GridException StaleEpoch(long shardId, long epoch, Exception refusal) =>
        new(GridErrorCode.NotOwner, $"Shard {shardId} is owned elsewhere now (epoch {epoch} is stale).", refusal);

    private void Fence(GridException error) => Interlocked.CompareExchange(ref _fenced, error, null);

    private void ThrowIfFenced()
    {
        var fenced = Volatile.Read(ref _fenced);
        if (fenced is not null) throw new GridException(GridErrorCode.NotOwner, fenced.Message, fenced);
    }

    // ------------------------------------------------------------------ writes

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>.</summary>
    public Task<WriteResult> PutAsync(byte[] key, byte[] value, SyncMode? mode = null, CancellationToken cancellationToken = default)
    {
        CheckPut(key, value);
        return WriteAsync([new RowWrite(key, value)], mode, null, cancellationToken);
    }

    /// <summary>Removes <paramref name="key"/> (absent keys are fine).</summary>
    public Task<WriteResult> DeleteAsync(byte[] key, SyncMode? mode = null, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        return WriteAsync([new RowWrite(key, null)], mode, null, cancellationToken);
    }

    /// <summary>Applies all operations atomically (all keys must be in this shard).</summary>
    public Task<WriteResult> BatchAsync(IReadOnlyList<BatchOperation> operations, SyncMode? mode = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count == 0) throw GridException.InvalidArgument("A batch needs at least one operation.");
        if (operations.Count > _options.Limits.MaxBatchOperations)
            throw GridException.InvalidArgument($"A batch of {operations.Count} operations exceeds the limit of {_options.Limits.MaxBatchOperations}.");
        var rows = new RowWrite[operations.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            var op = operations[i];
            switch (op.Kind)
            {
                case BatchOperationKind.Put:
                    if (op.Value is null) throw GridException.InvalidArgument($"Operation {i} is a put without a value.");
                    CheckPut(op.Key, op.Value);
                    rows[i] = new RowWrite(op.Key, op.Value);
                    break;
                case BatchOperationKind.Delete:
                    CheckKey(op.Key);
                    rows[i] = new RowWrite(op.Key, null);
                    break;
                default:
                    throw GridException.InvalidArgument($"Operation {i} has unknown kind {(byte)op.Kind}.");
            }
        }
        return WriteAsync(rows, mode, null, cancellationToken);
    }

    /// <summary>
    /// Sets <paramref name="key"/> durably and returns its inclusion proof at the tree version of the fold that holds the
    /// write (at least the write's version; the key's value there is this write's: waits for that fold).
    /// </summary>
    public async Task<ProvenWriteResult> WriteWithProofAsync(byte[] key, byte[] value, CancellationToken cancellationToken = default)
    {
        CheckPut(key, value);
        var request = new ProofRequest(key);
        var write = await WriteAsync([new RowWrite(key, value)], SyncMode.Full, request, cancellationToken).ConfigureAwait(false);
        var proof = await request.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new ProvenWriteResult(write, new ShardProof(ShardId, Range, proof.Version, proof.Proof));
    }

    private Task<WriteResult> WriteAsync(RowWrite[] rows, SyncMode? mode, ProofRequest? proof, CancellationToken cancellationToken)
    {
        ThrowIfFenced();
        var m = mode ?? _options.DefaultSyncMode;
        if (!Enum.IsDefined(m)) throw GridException.InvalidArgument($"Unknown sync mode {(byte)m}.");
        return _writer.WriteAsync(rows, m, proof, cancellationToken);
    }

    private void CheckKey(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _options.Limits.CheckKey(key);
        if (!Range.Contains(key))
            throw new GridException(GridErrorCode.NotOwner, $"Key {Convert.ToHexStringLower(key)} is outside shard {ShardId}'s range {Range}.");
    }

    private void CheckPut(byte[] key, byte[] value)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(value);
        _options.Limits.CheckValue(value);
    }

    // ------------------------------------------------------------------ reads

    /// <summary>The committed value of <paramref name="key"/>, or null.</summary>
    public async Task<byte[]?> GetAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ThrowIfFenced();
        var row = await GetRowAsync(key, cancellationToken).ConfigureAwait(false);
        return row?.Value;
    }

    /// <summary>The committed row of <paramref name="key"/>: from the row cache, or from the store (then cached).</summary>
    private async ValueTask<StoredRow?> GetRowAsync(byte[] key, CancellationToken cancellationToken)
    {
        if (_rows is null) return await _store.GetAsync(ShardId, key, cancellationToken).ConfigureAwait(false);
        long generation = _rows.Generation; // before the version: a commit accepted in between is then noticed
        long seen = Version;                 // an absence is kept at the version committed before the read
        if (_rows.TryGet(key, out var cached)) return cached.ToRow();
        var row = await _store.GetAsync(ShardId, key, cancellationToken).ConfigureAwait(false);
        _rows.OfferRead(row is null ? new RowCache.Entry(key, null, seen, 0) : new RowCache.Entry(row.Key, row.Value, row.Version, row.TimestampMicros),
            generation);
        return row;
    }

    /// <summary>
    /// The value of <paramref name="key"/> with a proof (or without, if not asked). With a proof, the value and the proof are of
    /// one tree version, at least the data version committed when the read began (the read waits for the fold, if any).
    /// </summary>
    public async Task<ReadResult> ReadAsync(byte[] key, bool withProof = true, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ThrowIfFenced();
        if (!withProof)
        {
            // The shard version the read observed (at least the one committed when it began, and at least the one that
            // wrote the value), so versions never go back across reads, with or without proofs.
            long observed = Version;
            var row = await GetRowAsync(key, cancellationToken).ConfigureAwait(false);
            return new ReadResult(row?.Value, Math.Max(observed, row?.Version ?? 0), row?.TimestampMicros ?? 0, _options.Region, null);
        }

        // First the tree catches up with the data version committed when the read began, so the proof's version never goes
        // back behind one this caller saw before (nor behind a write it had acknowledged). Then the value is the committed
        // row and the proof is of the published tree: they agree when the tree's leaf for the key is the row's value (or
        // both are absent) — the value is then the one at the tree's version, and the proof shows it. A write of the key
        // since that version makes them differ: wait for the next fold and look again.
        var keyHash = PoseidonBytes.Hash(key);
        await _folder.WaitForFoldAsync(Version, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var published = _folder.NextPublication;
            long dataVersion = Version;
            var stored = await GetRowAsync(key, cancellationToken).ConfigureAwait(false);
            var valueHash = stored is null ? default : PoseidonBytes.Hash(stored.Value);
            SmtProof proof;
            long version;
            await _tree.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfFenced();
                proof = _tree.Tree.Prove(keyHash);
                version = _folder.FoldedVersion;
            }
            finally
            {
                _tree.Lock.Release();
            }
            if (stored is null ? !proof.Exists : proof.Exists && proof.Value == valueHash)
                return new ReadResult(stored?.Value, version, stored?.TimestampMicros ?? 0, _options.Region, new ShardProof(ShardId, Range, version, proof));
            // The tree holds every commit up to the data version the row was read at, and no commit was sent to the store since
            // (a commit's rows are visible in the store and the row cache before Version moves): no fold will ever make them
            // agree. The store returned a row its own tree never held — report it, do not wait.
            if (version >= dataVersion && _writer.SentVersion == dataVersion)
                throw new GridException(GridErrorCode.Corrupted,
                    $"Shard {ShardId}: the stored row of key {Convert.ToHexStringLower(key)} disagrees with the shard's tree at version {version}; the store is corrupted.");
            _folder.ThrowIfStopped();
            await published.WaitAsync(cancellationToken).ConfigureAwait(false);
            ThrowIfFenced();
        }
    }

    /// <summary>Up to <paramref name="limit"/> rows of this shard with start ≤ key &lt; end, in key order.</summary>
    public async Task<ScanPage> ScanAsync(byte[] start, byte[]? end, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        if (limit < 1 || limit > _options.Limits.MaxScanLimit)
            throw GridException.InvalidArgument($"Scan limit must be 1..{_options.Limits.MaxScanLimit}; got {limit}.");
        if (end is not null && KeyRange.Compare(start, end) > 0)
            throw GridException.InvalidArgument("Scan start is after its end.");
        ThrowIfFenced();

        // Clip to the shard's range.
        var from = KeyRange.Compare(start, Range.Start) < 0 ? Range.Start.ToArray() : start;
        byte[]? to = end;
        if (!Range.IsUnbounded && (to is null || KeyRange.Compare(to, Range.End) > 0)) to = Range.End.ToArray();
        if (to is not null && KeyRange.Compare(from, to) >= 0) return new ScanPage([], null);

        // A null byte[] would convert to an empty (non-null) memory, an end before every key: pass "unbounded" explicitly.
        var rows = await _store.ScanAsync(ShardId, from, to is null ? null : (ReadOnlyMemory<byte>?)to, limit, cancellationToken).ConfigureAwait(false);
        var items = rows.Select(r => new KeyValue(r.Key, r.Value, r.Version)).ToList();
        byte[]? next = null;
        if (items.Count == limit)
        {
            // The next page starts right after the last key: append a zero byte (the smallest longer key).
            var last = items[^1].Key;
            next = new byte[last.Length + 1];
            last.CopyTo(next, 0);
        }
        return new ScanPage(items, next);
    }

    /// <summary>Commits what is queued and folds it into the tree, then stops; the shard can then be opened elsewhere.</summary>
    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _folder.DisposeAsync().ConfigureAwait(false);
        _tree.Dispose();
    }
}
