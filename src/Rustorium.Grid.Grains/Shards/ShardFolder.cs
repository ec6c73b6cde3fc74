using System.Runtime.InteropServices;
using System.Threading.Channels;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The proof side of one shard (ARCHITECTURE.md's ProofGrain): folds the shard's committed data groups into its sparse
/// Merkle tree, many groups at once, publishes each folded (tree version, root) for proofs, and stores the changed nodes in
/// periodic tree commits (checkpoints).
/// </summary>
/// <remarks>
/// <para>The data path (<see cref="ShardWriter"/>) commits rows and acknowledges them without hashing; each committed group
/// is handed here. A fold takes every group queued (up to <see cref="ShardEngineOptions.MaxFoldKeys"/> rows), keeps the last
/// write of each key, hashes keys and values eight at a time and applies the changes to the tree in one batch (each changed
/// node hashed once). The folded tree is the tree of exactly the shard's rows at the fold's version (invariant 3), rows that
/// are already durable: proofs are answered from it at once (<see cref="FoldedVersion"/>).</para>
/// <para><b>Checkpoints.</b> The folds' node changes stay staged in memory and go to the store together, in one tree commit
/// (conditioned on the epoch and the stored tree version), one checkpoint at a time: the folds made while one is written
/// go together into the next (at least <see cref="ShardEngineOptions.TreeCommitInterval"/> apart, sooner when half of
/// <see cref="ShardEngineOptions.MaxUnfoldedRows"/> rows wait for one or someone waits for the stored tree). Between two checkpoints a key's path changes many times but is written once, and the upper levels all keys share
/// are written once for all of them. Folding goes on while a checkpoint is written. A failed tree commit is sent again
/// (the same changes, after a pause); the data path waits for room when <see cref="ShardEngineOptions.MaxUnfoldedRows"/>
/// rows are not yet in a stored tree.</para>
/// <para><b>Proofs of writes.</b> A fold never holds, after a group with a write-with-proof, a later write of the same key,
/// so the proof shows the write's own value, at the tree version of its fold.</para>
/// <para><b>Crash recovery.</b> The store lists the keys of every data commit its tree has not taken in
/// (<see cref="IShardStore.ReadUnfoldedAsync"/>). A new activation reads them with their current values before its first
/// data commit and folds them first, which brings the tree to the data's version: the roots it hands out are the same as
/// the ones the crashed owner handed out, being functions of the same durable rows.</para>
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
    private readonly Signal _published = new();      // pulsed at each fold and checkpoint
    private readonly Signal _urgent = new();         // a proof waits: fold now
    private readonly Signal _checkpointSoon = new(); // someone waits for the stored tree: checkpoint now
    private long _treeVersion;
    private long _foldedVersion;
    private int _unfoldedRows;
    private bool _stopped;
    private volatile bool _foldingDone;

    // Rows folded since the last checkpoint took the staged changes (under the tree lock).
    private int _stagedRows;
    // Rows queued and not folded yet.
    private int _queuedRows;

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
        _foldedVersion = state.TreeVersion;
        _loop = Task.Run(() => RunAsync(state));
    }

    /// <summary>The version of the tree in the store (<see cref="ShardTree.Root"/>, the last checkpoint).</summary>
    public long TreeVersion => Volatile.Read(ref _treeVersion);

    /// <summary>The version of the folded tree (<see cref="ShardTree.Tree"/>): proofs are of it.</summary>
    public long FoldedVersion => Volatile.Read(ref _foldedVersion);

    /// <summary>Rows committed but not yet in a stored tree (folded or not).</summary>
    public int UnfoldedRows => Volatile.Read(ref _unfoldedRows);

    /// <summary>Completes once the unfolded changes of earlier activations are known: the writer's first commit waits for it.</summary>
    public Task Recovered => _recovered.Task;

    /// <summary>
    /// A task that completes at the next fold or checkpoint (or when folding stops). Take it before looking at the state it
    /// should wake you for (see the waiters below), never after.
    /// </summary>
    public Task NextPublication => _published.Task;

    /// <summary>Hands a committed group over to be folded (in version order).</summary>
    public void Enqueue(CommittedGroup group)
    {
        Interlocked.Add(ref _unfoldedRows, group.Rows.Count);
        Interlocked.Add(ref _queuedRows, group.Rows.Count);
        if (!_queue.Writer.TryWrite(group))
        {
            Interlocked.Add(ref _unfoldedRows, -group.Rows.Count);
            Interlocked.Add(ref _queuedRows, -group.Rows.Count);
            group.FailProofs(Stopped());
        }
        else if (group.Proofs.Count > 0) FoldSoon();
    }

    /// <summary>Someone waits for the tree (a proof): the next fold starts without waiting out <see cref="ShardEngineOptions.FoldInterval"/>.</summary>
    public void FoldSoon() => _urgent.Set();

    /// <summary>Someone waits for the stored tree: the next checkpoint starts without waiting out <see cref="ShardEngineOptions.TreeCommitInterval"/>.</summary>
    public void CheckpointSoon() => _checkpointSoon.Set();

    /// <summary>
    /// Test seam: runs in a waiter (<see cref="WaitForFoldAsync"/>, <see cref="WaitForTreeVersionAsync"/>,
    /// <see cref="WaitForRoomAsync"/>) after it looked at the folder's state and before it waits for the next publication, so
    /// a test can publish exactly there.
    /// </summary>
    internal Func<Task>? BeforeWaitingForPublication { get; set; }

    /// <summary>Test seam: runs before each fold takes the tree lock, so a test can hold a fold back.</summary>
    internal Func<Task>? BeforeFold { get; set; }

    // Every waiter below takes the publication it will wait for BEFORE it looks at the state it waits on. Taken after the
    // look, a fold that publishes in between (state changed, old publication completed, a new one installed) is missed,
    // and the waiter waits for a later fold that may never come (nothing else written): a proof read then hangs until its
    // deadline, the writer for good.

    /// <summary>Waits while <see cref="ShardEngineOptions.MaxUnfoldedRows"/> or more committed rows are not in a stored tree.</summary>
    public async ValueTask WaitForRoomAsync()
    {
        while (true)
        {
            var published = NextPublication;
            if (UnfoldedRows < _options.MaxUnfoldedRows || _queue.Reader.Completion.IsCompleted) return;
            CheckpointSoon();
            if (BeforeWaitingForPublication is { } pause) await pause().ConfigureAwait(false);
            await published.ConfigureAwait(false);
        }
    }

    /// <summary>Waits until the folded tree's version is at least <paramref name="version"/> (proofs of it can be made).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if folding stopped first.</exception>
    public Task WaitForFoldAsync(long version, CancellationToken cancellationToken) =>
        FoldedVersion >= version ? Task.CompletedTask : WaitForAsync(() => FoldedVersion >= version, FoldSoon, cancellationToken);

    /// <summary>Waits until the stored tree's version is at least <paramref name="version"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if folding stopped first.</exception>
    public Task WaitForTreeVersionAsync(long version, CancellationToken cancellationToken) =>
        WaitForAsync(() => TreeVersion >= version, () =>
        {
            FoldSoon();
            CheckpointSoon();
        }, cancellationToken);

    private async Task WaitForAsync(Func<bool> reached, Action hurry, CancellationToken cancellationToken)
    {
        while (true)
        {
            var published = NextPublication;
            if (reached()) return;
            ThrowIfStopped();
            hurry();
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

    private void Publish() => _published.Pulse();

    /// <summary>A one-shot wake-up that is renewed: waiters take <see cref="Task"/>, setters complete it.</summary>
    private sealed class Signal
    {
        private TaskCompletionSource _source = New();

        private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Task => Volatile.Read(ref _source).Task;

        /// <summary>Completes the current task (a request stays set until <see cref="RenewIfSet"/>).</summary>
        public void Set() => Volatile.Read(ref _source).TrySetResult();

        /// <summary>Completes the current task and installs a new one (a publication: later waiters wait for the next).</summary>
        public void Pulse() => Interlocked.Exchange(ref _source, New()).TrySetResult();

        /// <summary>Takes a request: a set task is replaced by a new one, so a request made from now on counts again.</summary>
        public void RenewIfSet()
        {
            var current = Volatile.Read(ref _source);
            if (current.Task.IsCompleted) Interlocked.CompareExchange(ref _source, New(), current);
        }
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
                    Interlocked.Add(ref _queuedRows, recovery.Rows.Count);
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

        var checkpoints = Task.Run(CheckpointLoopAsync);
        var reader = _queue.Reader;
        var provenKeys = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var retryDelay = TimeSpan.FromMilliseconds(50);
        try
        {
            long lastFold = 0;
            while (batch.Count > 0 || await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                if (checkpoints.IsCompleted) break; // fenced: nothing this activation folds can be stored any more

                // A fold of more keys shares more of the tree (fewer hashes per key): unless many rows wait, the next fold
                // starts at least FoldInterval after the last one began.
                var wait = _options.FoldInterval - System.Diagnostics.Stopwatch.GetElapsedTime(lastFold);
                if (batch.Count == 0 && lastFold != 0 && wait > TimeSpan.Zero && Volatile.Read(ref _queuedRows) < _options.MaxFoldKeys && !_stop.IsCancellationRequested)
                {
                    // Cut short by a proof waiting (FoldSoon) or by closing.
                    await Task.WhenAny(Task.Delay(wait, _stop.Token), _urgent.Task).ConfigureAwait(false);
                }
                _urgent.RenewIfSet();
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
                    if (BeforeFold is { } hold) await hold().ConfigureAwait(false);
                    await FoldAsync(batch).ConfigureAwait(false);
                    batch.Clear();
                    retryDelay = TimeSpan.FromMilliseconds(50);
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                    // Reading the tree failed; the rows are durable and the batch is kept: fold it again after a pause.
                    if (!await PauseAsync(retryDelay).ConfigureAwait(false)) break;
                    retryDelay = Longer(retryDelay);
                }
            }
        }
        catch (Exception)
        {
            // Stopping after a failure: the store still lists the unfolded keys for the next owner.
        }
        finally
        {
            _queue.Writer.TryComplete();
            // The last checkpoint stores what was folded (once: a failure leaves it to the next owner).
            _foldingDone = true;
            CheckpointSoon();
            await checkpoints.ConfigureAwait(false);
            var error = Stopped();
            foreach (var g in batch) g.FailProofs(error);
            while (reader.TryRead(out var g)) g.FailProofs(error);
            Volatile.Write(ref _stopped, true);
            Publish();
        }
    }

    private static TimeSpan Longer(TimeSpan delay) => TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));

    /// <summary>Waits before trying failed work again (a full disk may clear up); false when the folder is stopping.</summary>
    private async Task<bool> PauseAsync(TimeSpan delay)
    {
        if (_stop.IsCancellationRequested) return false;
        try
        {
            await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Folds <paramref name="batch"/> (consecutive committed groups) into the tree, staged over what earlier folds staged, and
    /// answers the batch's write-with-proof requests from it: the folded tree is the tree of exactly the shard's rows at the
    /// batch's version, rows that are already durable, so a proof need not wait for a checkpoint (if the silo dies first,
    /// the next owner folds the same rows into the same root).
    /// </summary>
    private async Task FoldAsync(List<CommittedGroup> batch)
    {
        var rows = LastWrites.Of(batch.Select(g => g.Rows));
        int batchRows = batch.Sum(g => g.Rows.Count);
        bool recovery = batch.Any(g => g.Recovery);
        long newVersion = batch[^1].Version;

        // Hash keys and values eight at a time before taking the tree lock (pure computation).
        var keyHashes = new Fr[rows.Count];
        PoseidonBytes.HashMany(rows.Select(r => r.Key).ToArray(), keyHashes);
        var values = rows.Where(r => r.Value is not null).Select(r => r.Value!).ToArray();
        var valueHashes = new Fr[values.Length];
        PoseidonBytes.HashMany(values, valueHashes);

        bool checkpointNow;
        await _tree.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            // What each key holds now, its paths read a level per round trip (and kept for the batch below).
            var olds = new Fr[rows.Count];
            var presents = new bool[rows.Count];
            _tree.Tree.GetMany(keyHashes, olds, presents);
            var changes = new List<SmtChange>(rows.Count);
            long delta = 0;
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
            }
            catch
            {
                _tree.Nodes.DiscardOpen(); // earlier folds' staged changes (and a checkpoint in flight) stay
                throw;
            }

            // The open layer now holds this fold on top of the earlier ones: the tree at newVersion.
            if (batch.Any(g => g.Proofs.Count > 0))
            {
                // A proven write's key is among the fold's rows (its group is in the batch, with no later write of the key).
                var hashOf = new Dictionary<byte[], Fr>(rows.Count, ByteArrayComparer.Instance);
                for (int i = 0; i < rows.Count; i++) hashOf[rows[i].Key] = keyHashes[i];
                foreach (var g in batch)
                    foreach (var proof in g.Proofs)
                        proof.Done.TrySetResult(new VersionedProof(_tree.Tree.Prove(hashOf[proof.Key]), newVersion));
            }
            // A recovery fold starts from the stored tree but with the key count of the data's version.
            if (!recovery) _tree.KeyCount += delta;
            _stagedRows += batchRows;
            checkpointNow = _stagedRows >= CheckpointRows;
            Volatile.Write(ref _foldedVersion, newVersion);
        }
        finally
        {
            _tree.Lock.Release();
        }
        Interlocked.Add(ref _queuedRows, -batchRows);
        if (checkpointNow) CheckpointSoon();
        Publish();
    }

    /// <summary>Folded rows that start a checkpoint without waiting out the interval: half the back-pressure limit.</summary>
    private int CheckpointRows => Math.Max(1, _options.MaxUnfoldedRows / 2);

    /// <summary>
    /// Stores the folds' staged node changes, root and tree version in one tree commit, at most once per
    /// <see cref="ShardEngineOptions.TreeCommitInterval"/> (sooner when asked), one at a time; a failed commit is sent again
    /// after a pause until it lands, the epoch is refused (fenced) or the folder stops.
    /// </summary>
    private async Task CheckpointLoopAsync()
    {
        long lastCheckpoint = System.Diagnostics.Stopwatch.GetTimestamp();
        var retryDelay = TimeSpan.FromMilliseconds(50);
        try
        {
            while (true)
            {
                var soon = _checkpointSoon.Task;
                var folded = NextPublication;
                bool done = _foldingDone;
                if (FoldedVersion == TreeVersion)
                {
                    if (done) return;
                    // Nothing to store: a request for a checkpoint is moot (the next fold publishes and wakes this loop).
                    if (soon.IsCompleted) _checkpointSoon.RenewIfSet();
                    else await Task.WhenAny(soon, folded).ConfigureAwait(false);
                    continue;
                }
                var wait = _options.TreeCommitInterval - System.Diagnostics.Stopwatch.GetElapsedTime(lastCheckpoint);
                if (!done && !soon.IsCompleted && wait > TimeSpan.Zero)
                {
                    await Task.WhenAny(soon, Task.Delay(wait)).ConfigureAwait(false);
                    continue;
                }
                // A request made from here on asks for the next checkpoint (this one may not hold what its caller waits for).
                _checkpointSoon.RenewIfSet();
                lastCheckpoint = System.Diagnostics.Stopwatch.GetTimestamp();

                StagedTreeChanges changes;
                long version;
                int rows;
                await _tree.Lock.WaitAsync().ConfigureAwait(false);
                try
                {
                    changes = _tree.Nodes.TakeStaged();
                    version = FoldedVersion;
                    rows = _stagedRows;
                    _stagedRows = 0;
                }
                finally
                {
                    _tree.Lock.Release();
                }
                changes = changes.InStoreOrder(); // after the lock: the folds need not wait for the sort

                while (true)
                {
                    try
                    {
                        await _store.CommitTreeAsync(new ShardTreeCommit
                        {
                            ShardId = _shardId,
                            Epoch = _epoch,
                            ExpectedTreeVersion = TreeVersion,
                            NewTreeVersion = version,
                            NewRoot = changes.NewRoot,
                            AddedNodes = changes.AddedNodes,
                            RemovedPositions = changes.RemovedPositions,
                        }, CancellationToken.None).ConfigureAwait(false);
                        retryDelay = TimeSpan.FromMilliseconds(50);
                        break;
                    }
                    catch (GridException ex) when (ex.Code == GridErrorCode.Conflict)
                    {
                        // Another owner moved the epoch on: this activation must never write again.
                        _fenced(ShardEngine.StaleEpoch(_shardId, _epoch, ex));
                        _queue.Writer.TryComplete();
                        return;
                    }
                    catch (Exception)
                    {
                        // Send the same changes again (the store applied none of them), unless stopping.
                        if (_foldingDone || !await PauseAsync(retryDelay).ConfigureAwait(false)) throw;
                        retryDelay = Longer(retryDelay);
                    }
                }

                await _tree.Lock.WaitAsync().ConfigureAwait(false);
                try
                {
                    _tree.Nodes.AcceptStaged();
                    Volatile.Write(ref _treeVersion, version);
                }
                finally
                {
                    _tree.Lock.Release();
                }
                Interlocked.Add(ref _unfoldedRows, -rows);
                Publish();
            }
        }
        catch (Exception)
        {
            // The last checkpoint failed while stopping: the store still lists the unfolded keys for the next owner.
        }
    }

    /// <summary>Stops taking groups, folds what is queued and stores it (once: a failure leaves it to the next owner), then stops.</summary>
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
