using Rustorium.Grid.Testing;
using System.Text;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Storage;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Grains.Tests;

/// <summary>The shard engine on real SQLite files: the write path, the proof path and their guarantees.</summary>
public sealed class ShardEngineTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rgrid-engine-" + Guid.NewGuid().ToString("N"));
    private SqliteShardStore _store = null!;
    private long _shard;

    // Two shards split at 0xf0: the engine under test owns ["", f0), every ASCII key.
    private static readonly KeyRange[] Layout = [new KeyRange([], [0xf0]), new KeyRange([0xf0], null)];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _store = await OpenStoreAsync();
        var shards = await _store.InitializeAsync(Layout, default);
        _shard = shards[0].ShardId;
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<SqliteShardStore> OpenStoreAsync() =>
        SqliteShardStore.OpenAsync(new SqliteShardStoreOptions { DataDirectory = _dir }, default);

    private Task<ShardEngine> OpenEngineAsync(ShardEngineOptions? options = null) =>
        ShardEngine.OpenAsync(_store, _shard, options ?? new ShardEngineOptions(), default);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>The root a fresh tree gets from exactly the shard's stored rows.</summary>
    private async Task<Fr> RecomputedRootAsync()
    {
        var tree = new SparseMerkleTree();
        var changes = new List<SmtChange>();
        byte[] from = [];
        while (true)
        {
            var rows = await _store.ScanAsync(_shard, from, null, 1000, default);
            foreach (var r in rows) changes.Add(SmtChange.Insert(PoseidonBytes.Hash(r.Key), PoseidonBytes.Hash(r.Value)));
            if (rows.Count < 1000) break;
            from = [.. rows[^1].Key, 0];
        }
        tree.ApplyBatch(changes.ToArray());
        return tree.Root;
    }

    [Fact]
    public async Task PutGetDeleteAndVerifiedReads()
    {
        await using var engine = await OpenEngineAsync();
        var w = await engine.PutAsync(B("apple"), B("red"));
        Assert.True(w.Version >= 1);
        Assert.Equal(B("red"), await engine.GetAsync(B("apple")));

        var read = await engine.ReadAsync(B("apple"));
        Assert.Equal(B("red"), read.Value);
        Assert.NotNull(read.Proof);
        read.Proof!.EnsureVerifies(B("apple"), B("red"));
        Assert.False(read.Proof.Verifies(B("apple"), B("green")));

        await engine.DeleteAsync(B("apple"));
        Assert.Null(await engine.GetAsync(B("apple")));
        var absent = await engine.ReadAsync(B("apple"));
        Assert.Null(absent.Value);
        absent.Proof!.EnsureVerifies(B("apple"), null);
    }

    [Fact]
    public async Task BadInputIsATypedErrorAndStoresNothing()
    {
        await using var engine = await OpenEngineAsync(new ShardEngineOptions { Limits = new GridLimits { MaxKeyBytes = 8, MaxValueBytes = 16 } });
        await engine.PutAsync(B("keep"), B("this"));
        long version = engine.Version;

        Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => engine.PutAsync([], B("v")))).Code);
        Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => engine.PutAsync(B("123456789"), B("v")))).Code);
        Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => engine.PutAsync(B("k"), new byte[17]))).Code);
        Assert.Equal(GridErrorCode.NotOwner, (await Assert.ThrowsAsync<GridException>(() => engine.PutAsync([0xf5, 0x01], B("v")))).Code);

        // One bad operation fails the whole batch.
        var batch = new[] { BatchOperation.Put(B("a"), B("1")), BatchOperation.Delete(B("keep")), BatchOperation.Put(B("b"), new byte[17]) };
        Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => engine.BatchAsync(batch))).Code);

        Assert.Equal(version, engine.Version);
        Assert.Equal(B("this"), await engine.GetAsync(B("keep")));
        Assert.Null(await engine.GetAsync(B("a")));
    }

    [Fact]
    public async Task BatchesAreAtomicAndConcurrentWritesAreGroupCommitted()
    {
        await using var engine = await OpenEngineAsync();
        await engine.BatchAsync([BatchOperation.Put(B("x1"), B("a")), BatchOperation.Put(B("x2"), B("b")), BatchOperation.Delete(B("x3"))]);
        Assert.Equal(B("a"), await engine.GetAsync(B("x1")));
        Assert.Equal(B("b"), await engine.GetAsync(B("x2")));

        long before = engine.Version;
        var writes = Enumerable.Range(0, 400).Select(i => engine.PutAsync(B($"k{i:D4}"), B($"v{i}"))).ToArray();
        var results = await Task.WhenAll(writes).WaitAsync(Deadline);
        // Every write got a version that is durable; many writes shared a commit.
        Assert.All(results, r => Assert.InRange(r.Version, before + 1, engine.Version));
        Assert.True(engine.Version - before < 400, $"400 concurrent writes took {engine.Version - before} commits: no grouping happened");
        for (int i = 0; i < 400; i += 37) Assert.Equal(B($"v{i}"), await engine.GetAsync(B($"k{i:D4}")));
    }

    [Fact]
    public async Task WriteWithProofProvesItsOwnVersionEvenUnderConcurrentWritesToTheSameKey()
    {
        await using var engine = await OpenEngineAsync();
        var tasks = Enumerable.Range(0, 50).Select(i => engine.WriteWithProofAsync(B("hot"), B($"value {i}"))).ToArray();
        var results = await Task.WhenAll(tasks).WaitAsync(Deadline);
        for (int i = 0; i < results.Length; i++)
        {
            var r = results[i];
            // Proven at the tree version of the fold that holds the write, never past a later write of the key.
            Assert.True(r.Proof.Version >= r.Write.Version, $"proof of v{r.Proof.Version} for a write at v{r.Write.Version}");
            r.Proof.EnsureVerifies(B("hot"), B($"value {i}"));
        }
    }

    [Fact]
    public async Task PublishedRootEqualsATreeRecomputedFromTheRows()
    {
        await using var engine = await OpenEngineAsync();
        var rng = new Random(7);
        for (int round = 0; round < 5; round++)
        {
            var ops = new List<Task>();
            for (int i = 0; i < 200; i++)
            {
                var key = B($"key-{rng.Next(300)}");
                ops.Add(rng.Next(4) == 0 ? engine.DeleteAsync(key) : engine.PutAsync(key, B($"value-{rng.Next()}")));
            }
            await Task.WhenAll(ops).WaitAsync(Deadline);
        }
        await engine.WaitForTreeAsync().WaitAsync(Deadline);
        Assert.Equal(await RecomputedRootAsync(), engine.Root);
        var state = await _store.GetShardAsync(_shard, default);
        Assert.Equal(engine.Root, state.Root);
        Assert.Equal(engine.Version, state.Version);
        Assert.Equal(state.Version, state.TreeVersion);
        Assert.Equal(engine.Version, engine.TreeVersion);
        Assert.Equal(state.KeyCount, engine.KeyCount);
    }

    [Fact]
    public async Task ReopeningKeepsDataRootAndMovesTheEpochOn()
    {
        long epoch;
        Fr root;
        await using (var engine = await OpenEngineAsync())
        {
            for (int i = 0; i < 50; i++) await engine.PutAsync(B($"r{i}"), B($"{i}"));
            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            epoch = engine.Epoch;
            root = engine.Root;
        }
        await _store.DisposeAsync();
        _store = await OpenStoreAsync();
        await using var again = await OpenEngineAsync();
        Assert.Equal(epoch + 1, again.Epoch);
        Assert.Equal(root, again.Root);
        Assert.Equal(B("7"), await again.GetAsync(B("r7")));
        (await again.ReadAsync(B("r7"))).Proof!.EnsureVerifies(B("r7"), B("7"));
    }

    [Fact]
    public async Task AnOwnerThatLostItsEpochCanNoLongerWrite()
    {
        await using var old = await OpenEngineAsync();
        await old.PutAsync(B("before"), B("1"));
        await _store.ClaimAsync(_shard, default); // another owner takes over
        long version = (await _store.GetShardAsync(_shard, default)).Version;

        var ex = await Assert.ThrowsAsync<GridException>(() => old.PutAsync(B("late"), B("2")));
        Assert.Equal(GridErrorCode.NotOwner, ex.Code);
        Assert.Equal(GridErrorCode.NotOwner, (await Assert.ThrowsAsync<GridException>(() => old.PutAsync(B("later"), B("3")))).Code);
        Assert.Null((await _store.GetAsync(_shard, B("late"), default)));
        Assert.Equal(version, (await _store.GetShardAsync(_shard, default)).Version);
    }

    [Fact]
    public async Task ADataCommitThatFailsFailsItsWritesStoresNothingAndTheNextGroupCommitsInItsPlace()
    {
        var gated = new GatedStore(_store, gatedVersion: 2);
        await using var engine = await ShardEngine.OpenAsync(gated, _shard, new ShardEngineOptions(), default);
        try
        {
            await engine.PutAsync(B("k1"), B("1"));
            var second = engine.PutAsync(B("k2"), B("2"));
            await gated.Entered.Task.WaitAsync(Deadline); // version 2's data commit is in flight, held at the gate
            var third = engine.PutAsync(B("k3"), B("3")); // queued behind it: one data commit of a shard at a time
            Assert.False(third.IsCompleted);

            gated.Fail(new GridException(GridErrorCode.Unavailable, "disk error (injected)"));
            Assert.Equal(GridErrorCode.Unavailable, (await Assert.ThrowsAsync<GridException>(() => second)).Code);
            Assert.Equal(2, (await third.WaitAsync(Deadline)).Version); // the next group takes the version the failed one never got
            Assert.Null(await _store.GetAsync(_shard, B("k2"), default));

            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            Assert.Equal(await RecomputedRootAsync(), engine.Root);
            Assert.Equal(engine.Root, (await _store.GetShardAsync(_shard, default)).Root);
            var absent = await engine.ReadAsync(B("k2"));
            Assert.Null(absent.Value);
            Assert.True(absent.Proof!.Verifies(B("k2"), null));
            Assert.True((await engine.ReadAsync(B("k3"))).Proof!.Verifies(B("k3"), B("3")));
        }
        finally
        {
            gated.Fail(new GridException(GridErrorCode.Unavailable, "released at the end of the test")); // never leave the engine's close waiting
        }
    }

    [Fact]
    public async Task WritesAreAcknowledgedBeforeTheirFoldProvenWhileTreeCommitsFailAndAFailedTreeCommitIsRetried()
    {
        var trees = new FailingTreeStore(_store) { Failing = true };
        await using var engine = await ShardEngine.OpenAsync(trees, _shard, new ShardEngineOptions(), default);
        // Durable and readable while no tree commit gets through.
        for (int i = 0; i < 20; i++) await engine.PutAsync(B($"t{i}"), B($"{i}")).WaitAsync(Deadline);
        Assert.Equal(B("7"), await engine.GetAsync(B("t7")));
        Assert.Equal(B("7"), (await _store.GetAsync(_shard, B("t7"), default))!.Value);
        await trees.Refused.Task.WaitAsync(Deadline);
        var state = await _store.GetShardAsync(_shard, default);
        Assert.True(state.TreeVersion < state.Version, $"tree v{state.TreeVersion}, data v{state.Version}");
        Assert.Equal(0, engine.TreeVersion);

        // Proofs are of the folded tree, the tree of durable rows: they need no stored tree.
        var read = await engine.ReadAsync(B("t7")).WaitAsync(Deadline);
        Assert.Equal(B("7"), read.Value);
        Assert.True(read.Version >= 20);
        read.Proof!.EnsureVerifies(B("t7"), B("7"));
        Assert.Equal(0, engine.TreeVersion);
        Assert.Equal(0, (await _store.GetShardAsync(_shard, default)).TreeVersion);

        trees.Failing = false; // the folder sends the same tree commit again
        await engine.WaitForTreeAsync().WaitAsync(Deadline);
        Assert.Equal(read.Proof.Root, engine.Root);
        Assert.Equal(await RecomputedRootAsync(), engine.Root);
        Assert.Empty((await _store.ReadUnfoldedAsync(_shard, default)).Rows);
    }

    [Fact]
    public async Task AProofIsNotKeptWaitingForTheFoldInterval()
    {
        // Plain writes wait up to ten seconds to fold together; a write-with-proof or a proof read starts the fold at once.
        await using var engine = await OpenEngineAsync(new ShardEngineOptions { FoldInterval = TimeSpan.FromSeconds(10) });
        await engine.PutAsync(B("first"), B("1")); // the first fold starts at once, the next ones wait out the interval
        await engine.WaitForTreeAsync().WaitAsync(Deadline);
        var quick = TimeSpan.FromSeconds(5);
        await engine.PutAsync(B("plain"), B("2"));
        var proven = await engine.WriteWithProofAsync(B("proven"), B("3")).WaitAsync(quick);
        proven.Proof.EnsureVerifies(B("proven"), B("3"));
        await engine.PutAsync(B("plain"), B("4"));
        var read = await engine.ReadAsync(B("plain")).WaitAsync(quick);
        read.Proof!.EnsureVerifies(B("plain"), B("4"));
    }

    [Fact]
    public async Task AProofReadRightAfterADeleteWakesForTheFoldThatPublishesAsItStartsWaiting()
    {
        // A CI hang of ClientEndToEndTests: a proved read right after a delete found the tree one fold behind, and that fold
        // published between the read's look at the tree version and its wait for the next publication. Nothing was written
        // after the delete, so no later publication came and the read waited out its 30 s deadline. The seam publishes the
        // delete's fold exactly there.
        var engine = await OpenEngineAsync(new ShardEngineOptions { FoldInterval = TimeSpan.Zero });
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await engine.PutAsync(B("gone"), B("1"));
            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            engine.Folder.BeforeFold = async () =>
            {
                holding.TrySetResult();
                await gate.Task;
            };
            await engine.DeleteAsync(B("gone"));
            await holding.Task.WaitAsync(Deadline); // the delete's fold holds: the folded tree is one version behind
            var folded = engine.Folder.NextPublication; // completes when the held fold publishes
            engine.Folder.BeforeWaitingForPublication = async () =>
            {
                engine.Folder.BeforeWaitingForPublication = null;
                gate.TrySetResult();
                await folded;
            };

            var read = await engine.ReadAsync(B("gone")).WaitAsync(Deadline);
            Assert.Null(engine.Folder.BeforeWaitingForPublication); // the read did wait for the fold, at the seam
            Assert.Null(read.Value);
            read.Proof!.EnsureVerifies(B("gone"), null);
        }
        finally
        {
            gate.TrySetResult();
            await engine.DisposeAsync().AsTask().WaitAsync(Deadline);
        }
    }

    [Fact]
    public async Task AWriterWaitingForRoomWakesForTheFoldThatPublishesAsItStartsWaiting()
    {
        // The same lost wake-up on the write side: the writer saw the tree lagging by MaxUnfoldedRows, the fold published
        // before it took the publication to wait for, and it would have waited for good (it is the one that writes next).
        var trees = new HeldTreeStore(_store);
        var engine = await ShardEngine.OpenAsync(trees, _shard, new ShardEngineOptions { FoldInterval = TimeSpan.Zero, MaxUnfoldedRows = 1 }, default);
        try
        {
            trees.Hold();
            var first = await engine.PutAsync(B("a"), B("1"));
            await trees.Held.Task.WaitAsync(Deadline); // its checkpoint holds at the gate: one row not in a stored tree, the limit
            PublishAtTheSeam(engine, trees);

            var second = await engine.PutAsync(B("b"), B("2")).WaitAsync(Deadline);
            Assert.Null(engine.Folder.BeforeWaitingForPublication); // the writer did wait for room, at the seam
            Assert.Equal(first.Version + 1, second.Version);
            (await engine.ReadAsync(B("b")).WaitAsync(Deadline)).Proof!.EnsureVerifies(B("b"), B("2"));
        }
        finally
        {
            await engine.DisposeAsync().AsTask().WaitAsync(Deadline);
        }
    }

    /// <summary>
    /// Arms the folder's seam once: the first waiter to reach it (after its look at the folder's state, before its wait)
    /// opens the gate and lets the held checkpoint publish before it goes on to wait.
    /// </summary>
    private static void PublishAtTheSeam(ShardEngine engine, HeldTreeStore trees)
    {
        var folded = engine.Folder.NextPublication; // completes when the held fold publishes
        engine.Folder.BeforeWaitingForPublication = async () =>
        {
            engine.Folder.BeforeWaitingForPublication = null;
            trees.Release(fail: false);
            await folded;
        };
    }

    [Fact]
    public async Task AWriteWithProofIsAnsweredBeforeItsTreeCommitLandsAndTheNextFoldOverlapsThatCommit()
    {
        // The rows a fold proves are durable before it starts, so its proofs need not wait for the tree's own commit; the
        // next fold is staged on top of the commit in flight. Both commits then land in order, with the roots handed out.
        var trees = new HeldTreeStore(_store);
        await using var engine = await ShardEngine.OpenAsync(trees, _shard, new ShardEngineOptions { TreeCommitInterval = TimeSpan.Zero }, default);
        try
        {
            await engine.PutAsync(B("base"), B("0"));
            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            long committed = engine.TreeVersion;
            int commits = trees.Commits;

            trees.Hold();
            var first = await engine.WriteWithProofAsync(B("a"), B("1")).WaitAsync(Deadline);
            await trees.Held.Task.WaitAsync(Deadline);
            first.Proof.EnsureVerifies(B("a"), B("1"));
            Assert.Equal(first.Write.Version, first.Proof.Version);
            Assert.Equal(committed, engine.TreeVersion); // answered while its tree commit waits at the gate

            var second = await engine.WriteWithProofAsync(B("b"), B("2")).WaitAsync(Deadline);
            second.Proof.EnsureVerifies(B("b"), B("2"));
            Assert.True(second.Proof.Version > first.Proof.Version);
            Assert.Equal(commits + 1, trees.Commits); // staged over the held commit, not sent before it lands

            trees.Release(fail: false);
            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            Assert.Equal(commits + 2, trees.Commits);
            var state = await _store.GetShardAsync(_shard, default);
            Assert.Equal(second.Proof.Version, state.TreeVersion);
            Assert.Equal(second.Proof.Root, state.Root);
            Assert.Equal(await RecomputedRootAsync(), state.Root);
            (await engine.ReadAsync(B("a")).WaitAsync(Deadline)).Proof!.EnsureVerifies(B("a"), B("1"));
        }
        finally
        {
            trees.Release(fail: false); // never leave a commit held: closing the engine waits for it
        }
    }

    [Fact]
    public async Task AFailedTreeCommitIsSentAgainWhileLaterFoldsAreProvenAndTheAnsweredRootsAreTheOnesStored()
    {
        var trees = new HeldTreeStore(_store);
        await using var engine = await ShardEngine.OpenAsync(trees, _shard, new ShardEngineOptions { TreeCommitInterval = TimeSpan.Zero }, default);
        try
        {
            await engine.PutAsync(B("base"), B("0"));
            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            var before = await _store.GetShardAsync(_shard, default);

            trees.Hold();
            var first = await engine.WriteWithProofAsync(B("a"), B("1")).WaitAsync(Deadline);
            await trees.Held.Task.WaitAsync(Deadline);
            var second = await engine.WriteWithProofAsync(B("b"), B("2")).WaitAsync(Deadline);
            var rootOfBoth = await RecomputedRootAsync(); // of the stored rows, both writes in
            trees.Release(fail: true); // the held commit fails and is sent again; the second fold's commit follows it

            await engine.WaitForTreeAsync().WaitAsync(Deadline);
            var state = await _store.GetShardAsync(_shard, default);
            Assert.Equal(before.TreeVersion, (await trees.FailedCommit.Task.WaitAsync(Deadline)).ExpectedTreeVersion);
            Assert.Equal(second.Proof.Version, state.TreeVersion);
            Assert.Equal(second.Proof.Root, state.Root); // the root handed out before any commit landed
            Assert.Equal(rootOfBoth, state.Root);
            Assert.Equal(before.KeyCount + 2, state.KeyCount);
            Assert.Equal(state.KeyCount, engine.KeyCount);
            first.Proof.EnsureVerifies(B("a"), B("1"));
            second.Proof.EnsureVerifies(B("b"), B("2"));
            Assert.Empty((await _store.ReadUnfoldedAsync(_shard, default)).Rows);
        }
        finally
        {
            trees.Release(fail: false); // never leave a commit held: closing the engine waits for it
        }
    }

    [Fact]
    public async Task FoldsBetweenCheckpointsAreProvenAtOnceAndStoredInOneTreeCommit()
    {
        var trees = new HeldTreeStore(_store);
        await using var engine = await ShardEngine.OpenAsync(trees, _shard,
            new ShardEngineOptions { FoldInterval = TimeSpan.Zero, TreeCommitInterval = TimeSpan.FromSeconds(30) }, default);
        await engine.PutAsync(B("base"), B("0"));
        await engine.WaitForTreeAsync().WaitAsync(Deadline); // asks for a checkpoint at once
        var before = await _store.GetShardAsync(_shard, default);
        int commits = trees.Commits;

        var proven = new List<ProvenWriteResult>();
        for (int i = 0; i < 10; i++) proven.Add(await engine.WriteWithProofAsync(B($"k{i}"), B($"v{i}")).WaitAsync(Deadline));
        for (int i = 0; i < 10; i++) proven[i].Proof.EnsureVerifies(B($"k{i}"), B($"v{i}"));
        Assert.Equal(10, proven.Select(p => p.Proof.Version).Distinct().Count()); // ten folds
        Assert.Equal(commits, trees.Commits); // and no tree commit yet
        Assert.Equal(before.TreeVersion, (await _store.GetShardAsync(_shard, default)).TreeVersion);
        Assert.Equal(proven[^1].Proof.Version, engine.FoldedVersion);
        (await engine.ReadAsync(B("k3")).WaitAsync(Deadline)).Proof!.EnsureVerifies(B("k3"), B("v3"));

        await engine.WaitForTreeAsync().WaitAsync(Deadline);
        Assert.Equal(commits + 1, trees.Commits);
        var state = await _store.GetShardAsync(_shard, default);
        Assert.Equal(proven[^1].Proof.Version, state.TreeVersion);
        Assert.Equal(proven[^1].Proof.Root, state.Root);
        Assert.Equal(await RecomputedRootAsync(), state.Root);
        Assert.Equal(before.KeyCount + 10, engine.KeyCount);
    }

    [Fact]
    public async Task AnOwnerThatStopsBeforeItsCheckpointLeavesItsProvenRootsToTheNextOwner()
    {
        var trees = new FailingTreeStore(_store) { Failing = true };
        var proven = new List<ProvenWriteResult>();
        await using (var first = await ShardEngine.OpenAsync(trees, _shard, new ShardEngineOptions { FoldInterval = TimeSpan.Zero }, default))
        {
            for (int i = 0; i < 5; i++) proven.Add(await first.WriteWithProofAsync(B($"k{i}"), B($"v{i}")).WaitAsync(Deadline));
        } // its last checkpoint fails too: the store holds no tree of these writes
        var left = await _store.GetShardAsync(_shard, default);
        Assert.Equal(0, left.TreeVersion);
        Assert.True(left.HasUnfolded);

        await using var next = await OpenEngineAsync();
        await next.WaitForTreeAsync().WaitAsync(Deadline);
        var state = await _store.GetShardAsync(_shard, default);
        Assert.Equal(proven[^1].Proof.Version, state.TreeVersion);
        Assert.Equal(proven[^1].Proof.Root, state.Root); // the root the first owner proved against, never stored by it
        for (int i = 0; i < 5; i++) (await next.ReadAsync(B($"k{i}"))).Proof!.EnsureVerifies(B($"k{i}"), B($"v{i}"));
    }

    /// <summary>
    /// The real store, except that after <see cref="Hold"/> the next tree commit waits until <see cref="Release"/>, which lets
    /// it through or fails it (an injected disk error). Counts the tree commits that reached it.
    /// </summary>
    private sealed class HeldTreeStore(IShardStore inner) : ForwardingShardStore(inner)
    {
        private volatile TaskCompletionSource<bool>? _gate;
        private int _commits;

        public TaskCompletionSource Held { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<ShardTreeCommit> FailedCommit { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Commits => Volatile.Read(ref _commits);

        private volatile TaskCompletionSource<bool>? _holding;

        public void Hold() => _gate = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release(bool fail) => (_holding ?? _gate)?.TrySetResult(fail);

        public override async ValueTask CommitTreeAsync(ShardTreeCommit commit, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _commits);
            if (Interlocked.Exchange(ref _gate, null) is { } gate)
            {
                _holding = gate;
                Held.TrySetResult();
                if (await gate.Task)
                {
                    FailedCommit.TrySetResult(commit);
                    throw new GridException(GridErrorCode.Unavailable, "tree commit refused (injected)");
                }
            }
            await base.CommitTreeAsync(commit, cancellationToken);
        }
    }

    [Fact]
    public async Task ANewOwnerFoldsWhatItsPredecessorCommittedButNeverFolded()
    {
        // Some keys folded for good first.
        await using (var first = await OpenEngineAsync())
        {
            for (int i = 0; i < 30; i++) await first.PutAsync(B($"base-{i}"), B($"v{i}"));
        }
        // Then an owner whose tree commits never land (as if it crashed after its data commits): updates, deletes, inserts.
        var trees = new FailingTreeStore(_store) { Failing = true };
        await using (var crashed = await ShardEngine.OpenAsync(trees, _shard, new ShardEngineOptions(), default))
        {
            for (int i = 0; i < 10; i++) await crashed.PutAsync(B($"base-{i}"), B($"w{i}"));
            for (int i = 10; i < 20; i++) await crashed.DeleteAsync(B($"base-{i}"));
            await crashed.BatchAsync(Enumerable.Range(0, 15).Select(i => BatchOperation.Put(B($"new-{i}"), B($"n{i}"))).ToList());
            await crashed.DeleteAsync(B("new-3"));
        }
        var left = await _store.GetShardAsync(_shard, default);
        Assert.True(left.HasUnfolded);
        var unfolded = await _store.ReadUnfoldedAsync(_shard, default);
        Assert.Equal(10 + 10 + 15, unfolded.Rows.Count); // each key once
        Assert.Null(unfolded.Rows.Single(r => r.Key.AsSpan().SequenceEqual(B("new-3"))).Value);

        await using var next = await OpenEngineAsync();
        await next.WaitForTreeAsync().WaitAsync(Deadline);
        var state = await _store.GetShardAsync(_shard, default);
        Assert.Equal(state.Version, state.TreeVersion);
        Assert.Equal(await RecomputedRootAsync(), state.Root);
        Assert.Equal(state.Root, next.Root);
        Assert.Equal(30 - 10 + 14, state.KeyCount);
        Assert.Equal(state.KeyCount, next.KeyCount);
        Assert.Empty((await _store.ReadUnfoldedAsync(_shard, default)).Rows);
        (await next.ReadAsync(B("base-3"))).Proof!.EnsureVerifies(B("base-3"), B("w3"));
        (await next.ReadAsync(B("base-13"))).Proof!.EnsureVerifies(B("base-13"), null);
        (await next.ReadAsync(B("base-25"))).Proof!.EnsureVerifies(B("base-25"), B("v25"));
        (await next.ReadAsync(B("new-3"))).Proof!.EnsureVerifies(B("new-3"), null);
        (await next.ReadAsync(B("new-4"))).Proof!.EnsureVerifies(B("new-4"), B("n4"));
    }

    /// <summary>The real store, except that tree commits fail (an injected disk error) while <see cref="Failing"/> is set.</summary>
    private sealed class FailingTreeStore(IShardStore inner) : ForwardingShardStore(inner)
    {
        public volatile bool Failing;

        public TaskCompletionSource Refused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ValueTask CommitTreeAsync(ShardTreeCommit commit, CancellationToken cancellationToken)
        {
            if (!Failing) return base.CommitTreeAsync(commit, cancellationToken);
            Refused.TrySetResult();
            throw new GridException(GridErrorCode.Unavailable, "tree commit refused (injected)");
        }
    }

    [Fact]
    public async Task CachedReadsFollowEveryAcknowledgedWriteAndNeverGoBack()
    {
        // A tiny row cache (evictions all the time) and concurrent writers, readers and deleters on a few hot keys.
        await using var engine = await OpenEngineAsync(new ShardEngineOptions { RowCacheBytes = 2_000 });
        var keys = Enumerable.Range(0, 12).Select(i => B($"hot-{i}")).ToArray();
        var lastAcked = new long[keys.Length];
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                int k = random.Next(keys.Length);
                var result = random.Next(5) == 0
                    ? await engine.DeleteAsync(keys[k])
                    : await engine.PutAsync(keys[k], B($"{w}:{random.Next()}"));
                // Read-your-writes: right after the acknowledgement the key reads at that version or later.
                var read = await engine.ReadAsync(keys[k], withProof: false);
                Assert.True(read.Version >= result.Version || read.Value is null, $"read v{read.Version} after write v{result.Version}");
                InterlockedMax(ref lastAcked[k], result.Version);
            }
        })).ToArray();
        var readers = Enumerable.Range(0, 4).Select(r => Task.Run(async () =>
        {
            var random = new Random(100 + r);
            var seen = new long[keys.Length];
            while (!stop.IsCancellationRequested)
            {
                int k = random.Next(keys.Length);
                var read = await engine.ReadAsync(keys[k], withProof: random.Next(2) == 0);
                if (read.Value is not null)
                {
                    Assert.True(read.Version >= seen[k], $"key {k} went back from v{seen[k]} to v{read.Version}");
                    seen[k] = read.Version;
                }
                if (read.Proof is not null) Assert.True(read.Proof.Verifies(keys[k], read.Value));
            }
        })).ToArray();
        await Task.WhenAll(writers.Concat(readers));

        // Finally every key reads exactly as the store holds it, through the cache and with a proof.
        foreach (var key in keys)
        {
            var stored = await _store.GetAsync(_shard, key, default);
            Assert.Equal(stored?.Value, await engine.GetAsync(key));
            var proven = await engine.ReadAsync(key);
            Assert.Equal(stored?.Value, proven.Value);
            Assert.True(proven.Proof!.Verifies(key, proven.Value));
        }

        static void InterlockedMax(ref long target, long value)
        {
            long current;
            while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
        }
    }

    [Fact]
    public async Task AStoreReadThatOverlappedACommitIsNotCached()
    {
        // The cache holds about four rows: the newer entry is evicted before the slow read comes back.
        var slow = new SlowReadStore(_store, B("k"));
        await using var engine = await ShardEngine.OpenAsync(slow, _shard, new ShardEngineOptions { RowCacheBytes = 420 }, default);
        await engine.PutAsync(B("k"), B("old"));
        for (int i = 0; i < 8; i++) await engine.PutAsync(B($"evict-{i}"), B("x")); // pushes "k" out of the cache

        slow.Armed = true;
        var overlapping = engine.GetAsync(B("k"));          // reads "old" from the store, then waits
        await slow.Fetched.Task.WaitAsync(Deadline);
        await engine.PutAsync(B("k"), B("new"));            // committed (and cached) meanwhile
        for (int i = 0; i < 8; i++) await engine.PutAsync(B($"evict-{i}"), B("y")); // the new entry is evicted
        slow.Release.TrySetResult();
        Assert.Equal(B("old"), await overlapping.WaitAsync(Deadline)); // it began before the commit: old is a fair answer

        // But it must not have put the old value back into the cache.
        Assert.Equal(B("new"), await engine.GetAsync(B("k")));
        Assert.Equal(B("new"), (await engine.ReadAsync(B("k"), withProof: false)).Value);
    }

    /// <summary>The real store, except that one armed read of <paramref name="key"/> fetches, then waits before answering.</summary>
    private sealed class SlowReadStore(IShardStore inner, byte[] key) : ForwardingShardStore(inner)
    {
        public volatile bool Armed;

        public TaskCompletionSource Fetched { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask<StoredRow?> GetAsync(long shardId, ReadOnlyMemory<byte> k, CancellationToken cancellationToken)
        {
            var row = await base.GetAsync(shardId, k, cancellationToken);
            if (Armed && k.Span.SequenceEqual(key))
            {
                Armed = false;
                Fetched.TrySetResult();
                await Release.Task;
            }
            return row;
        }
    }

    /// <summary>The real store, except that the first commit of one version waits at a gate and then fails or goes through.</summary>
    private sealed class GatedStore(IShardStore inner, long gatedVersion) : ForwardingShardStore(inner)
    {
        private readonly TaskCompletionSource<Exception?> _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fail(Exception error) => _gate.TrySetResult(error);

        public override async ValueTask CommitAsync(ShardCommit commit, CancellationToken cancellationToken)
        {
            if (commit.NewVersion == gatedVersion && Entered.TrySetResult())
            {
                if (await _gate.Task is { } error) throw error;
            }
            await base.CommitAsync(commit, cancellationToken);
        }
    }

    [Fact]
    public async Task AFailedCommitLeavesTreeAndRowsAsTheyWere()
    {
        await using var engine = await OpenEngineAsync();
        await engine.PutAsync(B("stay"), B("1"));
        await engine.WaitForTreeAsync().WaitAsync(Deadline);
        var root = engine.Root;
        long version = engine.Version;
        await _store.ClaimAsync(_shard, default); // the next commit is refused
        await Assert.ThrowsAsync<GridException>(() => engine.PutAsync(B("gone"), B("2")));
        Assert.Equal(root, engine.Root);
        Assert.Equal(version, engine.Version);
        var state = await _store.GetShardAsync(_shard, default);
        Assert.Equal(root, state.Root);
        Assert.Null(await _store.GetAsync(_shard, B("gone"), default));
    }

    [Fact]
    public async Task ScansAreOrderedPagedAndClippedToTheShard()
    {
        await using var engine = await OpenEngineAsync();
        await engine.BatchAsync(Enumerable.Range(0, 25).Select(i => BatchOperation.Put(B($"s{i:D2}"), B($"{i}"))).ToList());
        var page = await engine.ScanAsync(B("s"), null, 10);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"s{i:D2}"), page.Items.Select(kv => Encoding.UTF8.GetString(kv.Key)));
        Assert.NotNull(page.NextKey);
        var rest = await engine.ScanAsync(page.NextKey!, B("zzz"), 100);
        Assert.Equal(15, rest.Items.Count);
        Assert.Null(rest.NextKey);
        Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => engine.ScanAsync(B("b"), B("a"), 10))).Code);
        Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => engine.ScanAsync(B("a"), null, 0))).Code);
    }

    [Fact]
    public async Task NoneAndAsyncWritesBecomeVisible()
    {
        await using var engine = await OpenEngineAsync();
        var none = await engine.PutAsync(B("n"), B("1"), SyncMode.None);
        Assert.Equal(0, none.Version);
        var async = await engine.PutAsync(B("a"), B("2"), SyncMode.Async);
        Assert.True(async.Version > 0);
        await engine.PutAsync(B("f"), B("3"), SyncMode.Full);
        Assert.Equal(B("1"), await engine.GetAsync(B("n")));
        Assert.Equal(B("2"), await engine.GetAsync(B("a")));
    }
}
