using System.Runtime.InteropServices;
using System.Threading.Channels;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The proof side of one shard (ARCHITECTURE.md's ProofGrain): folds the shard's committed data groups into its sparse
/// Merkle tree, many groups at once, stores the changed nodes with a tree commit, and publishes (tree version, root).
/// </summary>
/// <remarks>
/// <para>The data path (<see cref="ShardWriter"/>) commits rows and acknowledges them without hashing; each committed group
/// is handed here. A fold takes every group queued (up to <see cref="ShardEngineOptions.MaxFoldKeys"/> rows), keeps the last
/// write of each key, hashes keys and values eight at a time, applies the changes to the tree in one batch (each changed
/// node hashed once: the more keys a fold holds, the more of the tree's upper levels they share), and writes the nodes, the
/// root and the new tree version in one store transaction, conditioned on the epoch and the tree version. So the published
/// root at tree version v is the tree of exactly the rows at v (invariant 3), and the tree lags the rows by at most the
/// groups queued here: the writer waits for room when <see cref="ShardEngineOptions.MaxUnfoldedRows"/> rows are waiting.</para>
/// <para><b>Proofs of writes.</b> A fold never holds, after a group with a write-with-proof, a later write of the same key,
/// so the proof shows the write's own value, at the tree version of its fold.</para>
/// <para><b>Crash recovery.</b> The store lists the keys of every data commit the tree has not folded
/// (<see cref="IShardStore.ReadUnfoldedAsync"/>). A new activation reads them with their current values before its first
/// data commit and folds them first, which brings the tree to the data's version.</para>
/// </remarks>
internal sealed class ShardFolder : IAsyncDisposable
{
    private readonly IShardStore _store;
    private readonly long _shardId;
    private readonly long _epoch;
    private readonly ShardEngineOptions _options;
    private readonly ShardTree _tree;
    private readonly TreeFoldBatcher? _folds;
    private readonly Action<GridException> _fenced;
    private readonly Channel<CommittedGroup> _queue = Channel.CreateUnbounded<CommittedGroup>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TaskCompletionSource _published = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _urgent = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _treeVersion;
    private int _unfoldedRows;
    private bool _stopped;

    public ShardFolder(IShardStore store, ShardState state, long epoch, ShardEngineOptions options, ShardTree tree,
        Action<GridException> fenced, TreeFoldBatcher? folds)
    {
        _store = store;
        _shardId = state.ShardId;
        _epoch = epoch;
        _options = options;
        _tree = tree;
        _folds = folds;
        _fenced = fenced;
        _treeVersion = state.TreeVersion;
        _loop = Task.Run(() => RunAsync(state));
    }

    /// <summary>The version the committed tree (<see cref="ShardTree.Root"/>) is of.</summary>
    public long TreeVersion => Volatile.Read(ref _treeVersion);

    /// <summary>Rows committed but not folded yet.</summary>
    public int UnfoldedRows => Volatile.Read(ref _unfoldedRows);

    /// <summary>Completes once the unfolded changes of earlier activations are known: the writer's first commit waits for it.</summary>
    public Task Recovered => _recovered.Task;

    /// <summary>
    /// A task that completes at the next publication of a tree version (or when folding stops). Take it before looking at the
    /// state it should wake you for (see the waiters below), never after.
    /// </summary>
    public Task NextPublication => Volatile.Read(ref _published).Task;

    /// <summary>Hands a committed group over to be folded (in version order).</summary>
    public void Enqueue(CommittedGroup group)
    {
        Interlocked.Add(ref _unfoldedRows, group.Rows.Count);
        if (!_queue.Writer.TryWrite(group))
        {
            Interlocked.Add(ref _unfoldedRows, -group.Rows.Count);
            group.FailProofs(Stopped());
        }
        else if (group.Proofs.Count > 0) FoldSoon();
    }

    /// <summary>Someone waits for the tree (a proof): the next fold starts without waiting out <see cref="ShardEngineOptions.FoldInterval"/>.</summary>
    public void FoldSoon() => Volatile.Read(ref _urgent).TrySetResult();

    /// <summary>
    /// Test seam: runs in a waiter (<see cref="WaitForTreeVersionAsync"/>, <see cref="WaitForRoomAsync"/>) after it looked at
    /// the folder's state and before it waits for the next publication, so a test can publish a fold exactly there.
    /// </summary>
    internal Func<Task>? BeforeWaitingForPublication { get; set; }

    // Every waiter below takes the publication it will wait for BEFORE it looks at the state it waits on. Taken after the
    // look, a fold that publishes in between (state changed, old publication completed, a new one installed) is missed,
    // and the waiter waits for a later fold that may never come (nothing else written): a proof read then hangs until its
    // deadline, the writer for good.

    /// <summary>Waits while <see cref="ShardEngineOptions.MaxUnfoldedRows"/> or more committed rows wait for their fold.</summary>
    public async ValueTask WaitForRoomAsync()
    {
        while (true)
        {
            var published = NextPublication;
            if (UnfoldedRows < _options.MaxUnfoldedRows || _queue.Reader.Completion.IsCompleted) return;
            if (BeforeWaitingForPublication is { } pause) await pause().ConfigureAwait(false);
            await published.ConfigureAwait(false);
        }
    }

    /// <summary>Waits until the published tree version is at least <paramref name="version"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if folding stopped first.</exception>
    public async Task WaitForTreeVersionAsync(long version, CancellationToken cancellationToken)
    {
        while (true)
        {
            var published = NextPublication;
            if (TreeVersion >= version) return;
            ThrowIfStopped();
            FoldSoon();
            if (BeforeWaitingForPublication is { } pause) await pause().ConfigureAwait(false);
            await published.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Throws <see cref="GridErrorCode.Unavailable"/> once folding has stopped (no tree version will be published any more).</summary>
    /// <remarks>The flag is set before the last publication (the loop's task completes only after it), so a waiter that took
    /// <see cref="NextPublication"/> after that publication, a task that never completes, is stopped here instead.</remarks>
    public void ThrowIfStopped()
    {
        if (Volatile.Read(ref _stopped)) throw Stopped();
    }

    private GridException Stopped() =>
        new(GridErrorCode.Unavailable, $"Shard {_shardId} stopped folding its tree (the activation is closing or was fenced); retry on its new activation.");

    private void Publish()
    {
        var done = Interlocked.Exchange(ref _published, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        done.TrySetResult();
    }

    private async Task RunAsync(ShardState state)
    {
        var batch = new List<CommittedGroup>();
        try
        {
            if (state.HasUnfolded)
            {
                var unfolded = await _store.ReadUnfoldedAsync(_shardId, CancellationToken.None).ConfigureAwait(false);
                if (unfolded.TreeVersion != _treeVersion || unfolded.Version != state.Version)
                    throw new GridException(GridErrorCode.NotOwner,
                        $"Shard {_shardId} changed after it was claimed at epoch {_epoch} (version {unfolded.Version}, tree version {unfolded.TreeVersion}).");
                if (unfolded.Rows.Count > 0)
                {
                    var recovery = new CommittedGroup(unfolded.Version, [.. unfolded.Rows], [], Recovery: true);
                    Interlocked.Add(ref _unfoldedRows, recovery.Rows.Count);
                    batch.Add(recovery);
                }
            }
            _recovered.TrySetResult();
        }
        catch (Exception e)
        {
            var error = e as GridException ?? new GridException(GridErrorCode.Internal, $"Reading the unfolded changes of shard {_shardId} failed: {e.Message}", e);
            if (error.Code == GridErrorCode.NotOwner) _fenced(error);
            _recovered.TrySetException(error);
            _queue.Writer.TryComplete();
            Volatile.Write(ref _stopped, true);
            Publish();
            return;
        }

        var reader = _queue.Reader;
        var provenKeys = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var retryDelay = TimeSpan.FromMilliseconds(50);
        try
        {
            long lastFold = 0;
            while (batch.Count > 0 || await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // A fold of more keys shares more of the tree (fewer hashes and node writes per key): unless many rows wait,
                // the next fold starts at least FoldInterval after the last one began.
                var wait = _options.FoldInterval - System.Diagnostics.Stopwatch.GetElapsedTime(lastFold);
                if (batch.Count == 0 && lastFold != 0 && wait > TimeSpan.Zero && UnfoldedRows < _options.MaxFoldKeys && !_stop.IsCancellationRequested)
                {
                    // Cut short by a proof waiting (FoldSoon) or by closing.
                    await Task.WhenAny(Task.Delay(wait, _stop.Token), Volatile.Read(ref _urgent).Task).ConfigureAwait(false);
                }
                if (_urgent.Task.IsCompleted) _urgent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lastFold = System.Diagnostics.Stopwatch.GetTimestamp();
                // Everything queued, up to the fold size, never past a later write of a key proven earlier in the fold.
                int rows = batch.Sum(g => g.Rows.Count);
                provenKeys.Clear();
                foreach (var g in batch) g.AddProvenKeys(provenKeys);
                while (rows < _options.MaxFoldKeys && reader.TryPeek(out var next) && !next.WritesAny(provenKeys))
                {
                    reader.TryRead(out _);
                    batch.Add(next);
                    rows += next.Rows.Count;
                    next.AddProvenKeys(provenKeys);
                }
                try
                {
                    await FoldAsync(batch).ConfigureAwait(false);
                    batch.Clear();
                    retryDelay = TimeSpan.FromMilliseconds(50);
                }
                catch (GridException e) when (e.Code == GridErrorCode.NotOwner)
                {
                    throw;
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                    // The rows are durable and the batch is kept: fold it again after a pause (a full disk may clear up).
                    try
                    {
                        await Task.Delay(retryDelay, _stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    retryDelay = TimeSpan.FromTicks(Math.Min(retryDelay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
                }
            }
        }
        catch (Exception)
        {
            // Fenced, or stopping after a failure: the store still lists the unfolded keys for the next owner.
        }
        finally
        {
            _queue.Writer.TryComplete();
            var error = Stopped();
            foreach (var g in batch) g.FailProofs(error);
            while (reader.TryRead(out var g)) g.FailProofs(error);
            Volatile.Write(ref _stopped, true);
            Publish();
        }
    }

    /// <summary>Folds <paramref name="batch"/> (consecutive committed groups) into the tree and commits it to the store.</summary>
    private async Task FoldAsync(List<CommittedGroup> batch)
    {
        var rows = LastWrites.Of(batch.Select(g => g.Rows));
        int batchRows = batch.Sum(g => g.Rows.Count);
        bool recovery = batch.Any(g => g.Recovery);
        long newTreeVersion = batch[^1].Version;

        // Hash keys and values eight at a time before taking the tree lock (pure computation).
        var keyHashes = new Fr[rows.Count];
        PoseidonBytes.HashMany(rows.Select(r => r.Key).ToArray(), keyHashes);
        var values = rows.Where(r => r.Value is not null).Select(r => r.Value!).ToArray();
        var valueHashes = new Fr[values.Length];
        PoseidonBytes.HashMany(values, valueHashes);

        StagedTreeChanges staged;
        long delta = 0;
        await _tree.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            // What each key holds now, its paths read a level per round trip (and kept for the batch below).
            var olds = new Fr[rows.Count];
            var presents = new bool[rows.Count];
            _tree.Tree.GetMany(keyHashes, olds, presents);
            var changes = new List<SmtChange>(rows.Count);
            for (int i = 0, v = 0; i < rows.Count; i++)
            {
                bool present = presents[i];
                var old = olds[i];
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
            try
            {
                if (_folds is null || changes.Count == 0) _tree.Tree.ApplyBatch(CollectionsMarshal.AsSpan(changes));
                else await _folds.ApplyAsync(_tree.Tree, [.. changes]).ConfigureAwait(false); // hashed with other shards' folds
                staged = _tree.Nodes.TakeStaged();
            }
            catch
            {
                _tree.Nodes.DiscardStaged();
                throw;
            }
        }
        finally
        {
            _tree.Lock.Release();
        }

        try
        {
            await _store.CommitTreeAsync(new ShardTreeCommit
            {
                ShardId = _shardId,
                Epoch = _epoch,
                ExpectedTreeVersion = TreeVersion,
                NewTreeVersion = newTreeVersion,
                NewRoot = staged.NewRoot,
                AddedNodes = staged.AddedNodes,
                RemovedNodes = staged.RemovedNodes,
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await _tree.Lock.WaitAsync().ConfigureAwait(false);
            try
            {
                _tree.Nodes.DiscardStaged();
            }
            finally
            {
                _tree.Lock.Release();
            }
            if (ex is GridException { Code: GridErrorCode.Conflict })
            {
                // Another owner moved the epoch on: this activation must never write again.
                var fenced = ShardEngine.StaleEpoch(_shardId, _epoch, ex);
                _fenced(fenced);
                throw fenced;
            }
            throw;
        }

        await _tree.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            _tree.Nodes.AcceptStaged();
            // A recovery fold starts from the tree at the old tree version but the key count of the data's version.
            if (!recovery) _tree.KeyCount += delta;
            Volatile.Write(ref _treeVersion, newTreeVersion);
            if (batch.Any(g => g.Proofs.Count > 0))
            {
                // A proven write's key is among the fold's rows (its group is in the batch, with no later write of the key).
                var hashOf = new Dictionary<byte[], Fr>(rows.Count, ByteArrayComparer.Instance);
                for (int i = 0; i < rows.Count; i++) hashOf[rows[i].Key] = keyHashes[i];
                foreach (var g in batch)
                    foreach (var proof in g.Proofs)
                        proof.Done.TrySetResult(new VersionedProof(_tree.CommittedTree.Prove(hashOf[proof.Key]), newTreeVersion));
            }
        }
        finally
        {
            _tree.Lock.Release();
        }
        Interlocked.Add(ref _unfoldedRows, -batchRows);
        Publish();
    }

    /// <summary>Stops taking groups, folds what is queued (once: a failure leaves it to the next owner), then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _stop.Cancel();
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}

/// <summary>A data group the store committed: its version, rows and write-with-proof requests.</summary>
/// <param name="Version">The data version of its commit.</param>
/// <param name="Rows">Its rows, each key once.</param>
/// <param name="Proofs">Its writes' proof requests, answered when a fold holds it.</param>
/// <param name="Recovery">Read back from the store at activation (its rows are the current values of the unfolded keys).</param>
internal sealed record CommittedGroup(long Version, List<RowWrite> Rows, List<ProofRequest> Proofs, bool Recovery = false)
{
    public void AddProvenKeys(HashSet<byte[]> keys)
    {
        foreach (var p in Proofs) keys.Add(p.Key);
    }

    public bool WritesAny(HashSet<byte[]> keys)
    {
        if (keys.Count == 0) return false;
        foreach (var row in Rows)
            if (keys.Contains(row.Key)) return true;
        return false;
    }

    public void FailProofs(Exception error)
    {
        foreach (var p in Proofs) p.Done.TrySetException(error);
    }
}

/// <summary>A proof and the tree version it is of.</summary>
internal readonly record struct VersionedProof(SmtProof Proof, long Version);
