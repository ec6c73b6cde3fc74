using System.Threading.Channels;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The data path of one shard: queues writes and commits them in groups, one store transaction per group holding the
/// rows and the new version, conditioned on the owner's epoch and the shard's version; acknowledges them; and hands each
/// committed group to the shard's <see cref="ShardFolder"/>, which folds it into the tree afterwards. Nothing is hashed
/// here: a durable write costs a share of one store commit.
/// </summary>
/// <remarks>
/// One loop drains the queue, so commits of a shard never race each other; a group is everything queued since the last
/// commit, up to <see cref="ShardEngineOptions.MaxGroupRows"/> rows. Within a group a later write of a key wins (the group
/// is one transaction, so nothing observes the earlier one). A batch is one queue entry, so it is never split across
/// groups: all of it commits or none. Before each commit the writer waits while the folder has
/// <see cref="ShardEngineOptions.MaxUnfoldedRows"/> rows to fold (the tree never lags further).
/// </remarks>
internal sealed class ShardWriter : IAsyncDisposable
{
    private readonly IShardStore _store;
    private readonly long _shardId;
    private readonly long _epoch;
    private readonly ShardEngineOptions _options;
    private readonly ShardFolder _folder;
    private readonly Action<GridException> _fenced;
    private readonly Channel<PendingWrite> _queue;
    private readonly Task _loop;
    private readonly RowCache? _rows;
    private long _version;
    private long _sent;

    public ShardWriter(IShardStore store, long shardId, long epoch, long version, ShardEngineOptions options, ShardFolder folder,
        Action<GridException> fenced, RowCache? rows = null)
    {
        _rows = rows;
        _store = store;
        _shardId = shardId;
        _epoch = epoch;
        _version = version;
        _sent = version;
        _options = options;
        _folder = folder;
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
    /// The highest data version sent to the store: committed, or in flight (its rows may already be visible to readers of
    /// the store and the row cache before <see cref="Version"/> moves). Back to <see cref="Version"/> when a commit fails.
    /// </summary>
    public long SentVersion => Volatile.Read(ref _sent);

    /// <summary>
    /// Queues rows (already validated) to commit atomically; completes according to <paramref name="mode"/>.
    /// A <paramref name="proof"/> request is answered by the folder, at the tree version of the fold holding the write.
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

        // A write that wants a proof must not share its version with a later write of the same key (the proof would show
        // the later value), nor with an earlier one it would hide: such writes start the next group.
        bool Fits(PendingWrite next)
        {
            foreach (var row in next.Rows)
                if (provenKeys.Contains(row.Key) || (next.Proof is not null && groupKeys.Contains(row.Key))) return false;
            return true;
        }

        try
        {
            // The unfolded changes of an earlier activation are read at the version this one starts from, before it commits.
            await _folder.Recovered.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var error = e as GridException ?? new GridException(GridErrorCode.Internal, e.Message, e);
            _queue.Writer.TryComplete();
            while (reader.TryRead(out var p)) p.Fail(error);
            return;
        }

        // Ends once the queue is completed (DisposeAsync, or fencing) and drained: every queued write gets committed or
        // failed, so nothing is left waiting.
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            await _folder.WaitForRoomAsync().ConfigureAwait(false);
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
            if (group.Count > 0) await CommitAsync(group).ConfigureAwait(false);
        }
    }

    /// <summary>Commits one group's rows, acknowledges its writes and hands it to the folder; fails them all if the commit fails.</summary>
    private async Task CommitAsync(List<PendingWrite> group)
    {
        var rows = LastWrites.Of(group.Select(p => p.Rows));
        long version = _version + 1;
        long now = NowMicros();
        var result = new WriteResult(_shardId, version, now);
        foreach (var p in group)
            if (p.Mode == SyncMode.Async) p.Done.TrySetResult(result);
        Volatile.Write(ref _sent, version);
        try
        {
            await _store.CommitAsync(new ShardCommit
            {
                ShardId = _shardId,
                Epoch = _epoch,
                ExpectedVersion = version - 1,
                NewVersion = version,
                NewRoot = null,
                NewKeyCount = null,
                TimestampMicros = now,
                Rows = rows,
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Volatile.Write(ref _sent, version - 1);
            var error = ex as GridException ?? new GridException(GridErrorCode.Internal, $"Commit of shard {_shardId} failed: {ex.Message}", ex);
            if (error.Code == GridErrorCode.Conflict)
            {
                // Another owner moved the epoch on: this activation must never write again.
                error = ShardEngine.StaleEpoch(_shardId, _epoch, ex);
                _fenced(error);
                _queue.Writer.TryComplete();
            }
            foreach (var p in group) p.Fail(error);
            return;
        }

        // Before any acknowledgement: a read after the ack finds the new state in the cache.
        _rows?.OfferCommit(rows, version, now);
        Volatile.Write(ref _version, version);
        var proofs = new List<ProofRequest>();
        foreach (var p in group)
            if (p.Proof is not null) proofs.Add(p.Proof);
        _folder.Enqueue(new CommittedGroup(version, rows, proofs));
        foreach (var p in group)
            if (p.Mode == SyncMode.Full) p.Done.TrySetResult(result);
    }

    /// <summary>Stops taking writes, lets the loop commit what is queued (and hand it to the folder), then stops.</summary>
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
