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

    public ShardWriter(IShardStore store, long shardId, long epoch, long version, ShardEngineOptions options,
        ShardTree tree, Action<GridException> fenced)
    {
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

        // A write that wants a proof must not share its version with a later write of the same key (the proof
        // would show the later value), nor with an earlier one it would hide: such writes start the next group.
        bool Fits(PendingWrite next)
        {
            foreach (var row in next.Rows)
                if (provenKeys.Contains(row.Key) || (next.Proof is not null && groupKeys.Contains(row.Key))) return false;
            return true;
        }
        // Ends once the queue is completed (DisposeAsync, or fencing) and drained: every queued write gets committed
        // or failed by CommitGroupAsync, so nothing is left waiting.
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
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
            if (group.Count > 0) await CommitGroupAsync(group).ConfigureAwait(false);
        }
    }

    private async Task CommitGroupAsync(List<PendingWrite> group)
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

        long version = _version + 1;
        long now = NowMicros();
        var result = new WriteResult(_shardId, version, now);

        await _tree.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
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

            foreach (var p in group)
                if (p.Mode == SyncMode.Async) p.Done.TrySetResult(result);

            try
            {
                _tree.Tree.ApplyBatch(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(changes));
                var staged = _tree.Nodes.TakeStaged();
                await _store.CommitAsync(new ShardCommit
                {
                    ShardId = _shardId,
                    Epoch = _epoch,
                    ExpectedVersion = _version,
                    NewVersion = version,
                    NewRoot = staged.NewRoot,
                    NewKeyCount = _tree.KeyCount + delta,
                    TimestampMicros = now,
                    Rows = rows,
                    AddedNodes = staged.AddedNodes,
                    RemovedNodes = staged.RemovedNodes,
                }, CancellationToken.None).ConfigureAwait(false);
                _tree.Nodes.AcceptStaged();
            }
            catch (Exception ex)
            {
                _tree.Nodes.DiscardStaged();
                var error = ex as GridException ?? new GridException(GridErrorCode.Internal, $"Commit of shard {_shardId} failed: {ex.Message}", ex);
                if (error.Code == GridErrorCode.Conflict)
                {
                    // Another owner moved the epoch on: this activation must never write again.
                    error = new GridException(GridErrorCode.NotOwner, $"Shard {_shardId} is owned elsewhere now (epoch {_epoch} is stale).", ex);
                    _fenced(error);
                    _queue.Writer.TryComplete();
                }
                foreach (var p in group) p.Fail(error);
                return;
            }

            _tree.KeyCount += delta;
            Volatile.Write(ref _version, version);
            foreach (var p in group)
            {
                if (p.Proof is not null) p.Proof.Done.TrySetResult(_tree.Tree.Prove(p.Proof.KeyHash));
                if (p.Mode == SyncMode.Full) p.Done.TrySetResult(result);
            }
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
