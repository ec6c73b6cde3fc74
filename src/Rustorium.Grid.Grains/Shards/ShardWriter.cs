using System.Threading.Channels;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The write path of one shard: queues writes and commits them in groups, one store transaction per group
/// holding the rows, the tree nodes they change and the new root, conditioned on the owner's epoch and the
/// shard's version. So the root at every version is the tree of exactly the rows at that version.
/// </summary>
/// <remarks>
/// One loop drains the queue, so commits of a shard never race each other; a group is everything queued
/// since the last commit, up to <see cref="ShardEngineOptions.MaxGroupRows"/> rows. Within a group a later
/// write of a key wins (the group is one transaction, so nothing observes the earlier one). A batch is one
/// queue entry, so it is never split across groups: all of it commits or none.
/// </remarks>
internal sealed class ShardWriter : IAsyncDisposable
{
    private readonly IShardStore _store;
    private readonly long _shardId;
    private readonly long _epoch;
    private readonly ShardEngineOptions _options;
    private readonly ShardTree _tree;
    private readonly Action<GridException> _fenced;
    private readonly Channel<PendingWrite> _queue;
    private readonly Task _loop;
    private long _version;

    private readonly TreeFoldBatcher? _folds;
    private readonly RowCache? _rows;

    public ShardWriter(IShardStore store, long shardId, long epoch, long version, ShardEngineOptions options,
        ShardTree tree, Action<GridException> fenced, TreeFoldBatcher? folds = null, RowCache? rows = null)
    {
        _folds = folds;
        _rows = rows;
        _store = store;
        _shardId = shardId;
        _epoch = epoch;
        _version = version;
        _options = options;
        _tree = tree;
        _fenced = fenced;
        _queue = Channel.CreateBounded<PendingWrite>(new BoundedChannelOptions(options.MaxQueuedWrites)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The last committed data version.</summary>
    public long Version => Volatile.Read(ref _version);

    /// <summary>
    /// Queues rows (already validated) to commit atomically; completes according to <paramref name="mode"/>.
    /// A <paramref name="proof"/> request is answered with a proof at the version of the group holding the write.
    /// </summary>
    public async Task<WriteResult> WriteAsync(RowWrite[] rows, SyncMode mode, ProofRequest? proof, CancellationToken cancellationToken)
    {
        var pending = new PendingWrite(rows, mode, proof);
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new GridException(GridErrorCode.Unavailable, $"Shard {_shardId} is closing; retry on its new activation.");
        }
        if (mode == SyncMode.None) return new WriteResult(_shardId, 0, NowMicros());
        return await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        var group = new List<PendingWrite>();
        var groupKeys = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var provenKeys = new HashSet<byte[]>(ByteArrayComparer.Instance);
        Task<bool>? inFlight = null;
        int lastGroupRows = 0;

        // A write that wants a proof must not share its version with a later write of the same key (the proof
        // would show the later value), nor with an earlier one it would hide: such writes start the next group.
        bool Fits(PendingWrite next)
        {
            foreach (var row in next.Rows)
                if (provenKeys.Contains(row.Key) || (next.Proof is not null && groupKeys.Contains(row.Key))) return false;
            return true;
        }
        // Ends once the queue is completed (DisposeAsync, or fencing) and drained: every queued write gets committed
        // or failed, so nothing is left waiting.
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            if (inFlight is not null && reader.Count < _options.PipelineMinRows)
            {
                // Few writes queued: folding them now would hash a small group (its lanes mostly empty). Let them
                // accumulate while the commit in flight finishes; a full queue is folded at once, overlapping the commit.
                // Its outcome needs no handling here: a failure already failed its writes and discarded the staged layers.
                await inFlight.ConfigureAwait(false);
                inFlight = null;
                continue;
            }
            if (lastGroupRows > 1 && reader.Count < LingerBelowRows && _options.GroupLinger > TimeSpan.Zero && !reader.Completion.IsCompleted)
            {
                // Writers are concurrent (the last group had several) but few are queued: a small group hashes with most
                // of its eight lanes empty, so give them a moment to queue more. A lone sequential writer never waits.
                await Task.Delay(_options.GroupLinger).ConfigureAwait(false);
            }
            group.Clear();
            groupKeys.Clear();
            provenKeys.Clear();
            int rows = 0;
            while (rows < _options.MaxGroupRows && reader.TryPeek(out var next) && (group.Count == 0 || Fits(next)))
            {
                reader.TryRead(out _);
                group.Add(next);
                rows += next.Rows.Length;
                foreach (var row in next.Rows)
                {
                    groupKeys.Add(row.Key);
                    if (next.Proof is not null) provenKeys.Add(row.Key);
                }
            }
            if (group.Count == 0) continue;
            lastGroupRows = rows;

            // Pipelined: this group is hashed and folded into the tree while the previous group's store commit is in
            // flight; its own commit starts once that one is done (commits of a shard are sequential by version).
            var folded = await FoldAsync([.. group]).ConfigureAwait(false);
            if (inFlight is not null)
            {
                bool committed = await inFlight.ConfigureAwait(false);
                inFlight = null;
                if (!committed)
                {
                    // The previous commit failed and discarded every staged change, this group's included.
                    if (folded is not null) await AbandonAsync(folded, _lastFailure!).ConfigureAwait(false);
                    continue;
                }
            }
            if (folded is not null) inFlight = CommitAsync(folded);
        }
        if (inFlight is not null) await inFlight.ConfigureAwait(false);
    }

    /// <summary>A group hashed and folded into the tree, its changes taken for one store commit.</summary>
    private sealed record FoldedGroup(List<PendingWrite> Writes, List<RowWrite> Rows, long Version, long Now, long KeyCount,
        StagedTreeChanges Changes, WriteResult Result);

    private GridException? _lastFailure;

    /// <summary>Groups smaller than this wait <see cref="ShardEngineOptions.GroupLinger"/> for more writes first.</summary>
    private const int LingerBelowRows = 8;
    private long _nextVersion = -1;
    private long _stagedKeyCount;

    /// <summary>Coalesces, hashes and folds one group into the tree (staged, not committed); acknowledges its Async writes.</summary>
    private async Task<FoldedGroup?> FoldAsync(List<PendingWrite> group)
    {
        // Coalesce: the last write of a key in the group wins; the order of first appearance is kept.
        var latest = new Dictionary<byte[], int>(ByteArrayComparer.Instance);
        var rows = new List<RowWrite>();
        foreach (var p in group)
        {
            foreach (var row in p.Rows)
            {
                if (latest.TryGetValue(row.Key, out int at)) rows[at] = row;
                else
                {
                    latest[row.Key] = rows.Count;
                    rows.Add(row);
                }
            }
        }

        // Hash keys and values eight at a time, before taking the tree lock (pure computation).
        var keys = rows.Select(r => r.Key).ToArray();
        var keyHashes = new Fr[keys.Length];
        PoseidonBytes.HashMany(keys, keyHashes);
        var values = rows.Where(r => r.Value is not null).Select(r => r.Value!).ToArray();
        var valueHashes = new Fr[values.Length];
        PoseidonBytes.HashMany(values, valueHashes);

        await _tree.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_nextVersion < 0 || !_tree.Nodes.HasStaged)
            {
                // Nothing staged: the next group builds on the committed state.
                _nextVersion = _version + 1;
                _stagedKeyCount = _tree.KeyCount;
            }
            var changes = new List<SmtChange>(rows.Count);
            long delta = 0;
            for (int i = 0, v = 0; i < rows.Count; i++)
            {
                bool present = _tree.Tree.TryGet(keyHashes[i], out var old);
                if (rows[i].Value is null)
                {
                    if (!present) continue;
                    changes.Add(SmtChange.Delete(keyHashes[i]));
                    delta--;
                    continue;
                }
                var valueHash = valueHashes[v++];
                if (!present)
                {
                    changes.Add(SmtChange.Insert(keyHashes[i], valueHash));
                    delta++;
                }
                else if (old != valueHash)
                {
                    changes.Add(SmtChange.Update(keyHashes[i], valueHash));
                }
            }
            if (_folds is null || changes.Count == 0) _tree.Tree.ApplyBatch(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(changes));
            else await _folds.ApplyAsync(_tree.Tree, [.. changes]).ConfigureAwait(false); // hashed with other shards' groups
            var staged = _tree.Nodes.TakeStaged();
            long version = _nextVersion++;
            _stagedKeyCount += delta;
            long now = NowMicros();
            var result = new WriteResult(_shardId, version, now);
            foreach (var p in group)
                if (p.Mode == SyncMode.Async) p.Done.TrySetResult(result);
            return new FoldedGroup(group, rows, version, now, _stagedKeyCount, staged, result);
        }
        catch (Exception ex)
        {
            // Nothing of this group was staged (a batch stages all or nothing), but an earlier taken layer may be in
            // flight: leave the tree to it; only this group fails.
            var error = ex as GridException ?? new GridException(GridErrorCode.Internal, $"Folding a group of shard {_shardId} failed: {ex.Message}", ex);
            foreach (var p in group) p.Fail(error);
            return null;
        }
        finally
        {
            _tree.Lock.Release();
        }
    }

    /// <summary>Commits a folded group to the store; true if it committed, false if it failed (every staged change is then discarded).</summary>
    private async Task<bool> CommitAsync(FoldedGroup folded)
    {
        await _tree.CommitLock.WaitAsync().ConfigureAwait(false);
        try
        {
            try
            {
                await _store.CommitAsync(new ShardCommit
                {
                    ShardId = _shardId,
                    Epoch = _epoch,
                    ExpectedVersion = folded.Version - 1,
                    NewVersion = folded.Version,
                    NewRoot = folded.Changes.NewRoot,
                    NewKeyCount = folded.KeyCount,
                    TimestampMicros = folded.Now,
                    Rows = folded.Rows,
                    AddedNodes = folded.Changes.AddedNodes,
                    RemovedNodes = folded.Changes.RemovedNodes,
                }, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                var error = ex as GridException ?? new GridException(GridErrorCode.Internal, $"Commit of shard {_shardId} failed: {ex.Message}", ex);
                if (error.Code == GridErrorCode.Conflict)
                {
                    // Another owner moved the epoch on: this activation must never write again.
                    error = new GridException(GridErrorCode.NotOwner, $"Shard {_shardId} is owned elsewhere now (epoch {_epoch} is stale).", ex);
                    _fenced(error);
                    _queue.Writer.TryComplete();
                }
                _lastFailure = error;
                await DiscardAllAsync().ConfigureAwait(false);
                foreach (var p in folded.Writes) p.Fail(error);
                return false;
            }

            await _tree.Lock.WaitAsync().ConfigureAwait(false);
            try
            {
                _tree.Nodes.AcceptStaged();
                _tree.KeyCount = folded.KeyCount;
                // Before any acknowledgement: a read after the ack finds the new state in the cache.
                _rows?.OfferCommit(folded.Rows, folded.Version, folded.Now);
                Volatile.Write(ref _version, folded.Version);
                foreach (var p in folded.Writes)
                {
                    if (p.Proof is not null) p.Proof.Done.TrySetResult(_tree.CommittedTree.Prove(p.Proof.KeyHash));
                    if (p.Mode == SyncMode.Full) p.Done.TrySetResult(folded.Result);
                }
            }
            finally
            {
                _tree.Lock.Release();
            }
            return true;
        }
        finally
        {
            _tree.CommitLock.Release();
        }
    }

    /// <summary>Fails a group that was folded on top of a commit that then failed (its changes are already discarded).</summary>
    private async Task AbandonAsync(FoldedGroup folded, GridException error)
    {
        // It may have been folded after the discard, onto the committed state: discard again, nothing is in flight now.
        await DiscardAllAsync().ConfigureAwait(false);
        foreach (var p in folded.Writes) p.Fail(error);
    }

    private async Task DiscardAllAsync()
    {
        await _tree.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            _tree.Nodes.DiscardStaged();
            _nextVersion = -1;
        }
        finally
        {
            _tree.Lock.Release();
        }
    }

    /// <summary>Stops taking writes, lets the loop commit what is queued, then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    internal static long NowMicros() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;

    private sealed class PendingWrite(RowWrite[] rows, SyncMode mode, ProofRequest? proof)
    {
        public RowWrite[] Rows { get; } = rows;
        public SyncMode Mode { get; } = mode;
        public ProofRequest? Proof { get; } = proof;
        public TaskCompletionSource<WriteResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fail(Exception error)
        {
            Done.TrySetException(error);
            Proof?.Done.TrySetException(error);
        }
    }
}
