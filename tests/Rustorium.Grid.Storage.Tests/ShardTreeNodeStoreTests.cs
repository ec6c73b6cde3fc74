using Rustorium.Grid.Crypto;
using System.Diagnostics;
using Rustorium.Grid.Crypto.Smt;
using Xunit.Abstractions;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests;

/// <summary>
/// <see cref="ShardTreeNodeStore"/> over a real provider: a tree driven through it and committed with the shard's rows
/// is the same tree (roots, proofs, stored nodes) as an in-memory one, failures roll back, and a large shard
/// re-activates from its stored root without rebuilding anything. Run against every provider, like the contract.
/// </summary>
public abstract class ShardTreeNodeStoreTests(ITestOutputHelper output)
{
    /// <summary>Same meaning as <see cref="ShardStoreContractTests"/>' method: the same name reopens the same data.</summary>
    protected abstract Task<IShardStore> OpenStoreAsync(string storeName);

    private readonly CancellationToken _ct = Deadline(600);

    private async Task<(IShardStore Store, string Name, long ShardId)> NewShardAsync()
    {
        var name = "tree_" + Guid.NewGuid().ToString("N")[..12];
        var store = await OpenStoreAsync(name);
        var shards = await store.InitializeAsync([KeyRange.All], _ct);
        return (store, name, shards[0].ShardId);
    }

    [Fact]
    public async Task ATreeCommittedThroughTheShardStoreMatchesAnInMemoryTree()
    {
        var (store, name, shardId) = await NewShardAsync();
        var rng = new Random(20240611);
        var pool = Enumerable.Range(0, 120).Select(i => new[] { (byte)(i * 7), (byte)i }).ToArray();
        var recording = new RecordingNodeStore();
        var reference = new SparseMerkleTree(recording);

        using (var writer = await TestShardWriter.OpenAsync(store, shardId, _ct))
        {
            for (int round = 0; round < 40; round++)
            {
                // A round is a group commit: several tree operations staged, then one store commit.
                var ops = new List<Action<IShardChanges>>();
                var present = new HashSet<string>(writer.Committed.Keys);
                int count = rng.Next(1, 7);
                for (int i = 0; i < count; i++)
                {
                    if (rng.Next(5) == 0)
                    {
                        var batch = pool.OrderBy(_ => rng.Next()).Take(rng.Next(2, 20))
                            .Select(k => (k, present.Contains(Hex(k)) && rng.Next(2) == 0 ? null : Value(rng))).ToArray();
                        foreach (var (k, v) in batch)
                        {
                            if (v is null) present.Remove(Hex(k));
                            else present.Add(Hex(k));
                        }
                        ops.Add(w => w.Apply(batch));
                        continue;
                    }
                    var key = pool[rng.Next(pool.Length)];
                    if (present.Contains(Hex(key)) && rng.Next(3) == 0)
                    {
                        present.Remove(Hex(key));
                        ops.Add(w => w.Delete(key));
                    }
                    else
                    {
                        present.Add(Hex(key));
                        var value = Value(rng);
                        ops.Add(w => w.Put(key, value));
                    }
                }
                foreach (var op in ops) op(writer);

                bool sabotage = round % 7 == 6;
                if (sabotage)
                {
                    await Assert.ThrowsAsync<GridException>(() => writer.CommitAsync(_ct, sabotage: true));
                    Assert.False(writer.Nodes.HasStaged);
                }
                else
                {
                    await writer.CommitAsync(_ct);
                    var mirror = new ReferenceTree(reference, writer.FieldOf);
                    foreach (var op in ops) op(mirror);
                }
                Assert.Equal(reference.Root, writer.Tree.Root);
                Assert.Equal(reference.Root, writer.Nodes.CommittedRoot);
                Assert.Equal(reference.Root, (await store.GetShardAsync(shardId, _ct)).Root);
                foreach (var key in pool.Take(12)) Assert.Equal(reference.Prove(writer.FieldOf(key)), writer.Tree.Prove(writer.FieldOf(key)));
            }
        }

        await store.DisposeAsync();
        store = await OpenStoreAsync(name);
        await using var opened = store;
        var state = await store.GetShardAsync(shardId, _ct);
        Assert.Equal(reference.Root, state.Root);
        using var nodes = ShardTreeNodeStore.Open(store, state);
        var reopened = new SparseMerkleTree(nodes);
        foreach (var key in pool)
        {
            var field = Rustorium.Grid.Crypto.Poseidon.PoseidonBytes.Hash(key);
            var proof = reopened.Prove(field);
            Assert.Equal(reference.Prove(field), proof);
            Assert.True(proof.VerifyAgainst(state.Root));
        }

        // The store holds exactly the reference tree's nodes: every live one, none of the dead ones.
        using var reader = store.OpenNodeReader(shardId);
        foreach (var (hash, at) in recording.Current) Assert.True(reader.TryGetNode(hash, at, out _), $"live node {hash} is missing at {at}");
        foreach (var (hash, at) in recording.Ever.Except(recording.Current))
            Assert.False(reader.TryGetNode(hash, at, out _), $"dead node {hash} was left behind at {at}");
        Assert.Equal(state.KeyCount, (await store.ScanAsync(shardId, Array.Empty<byte>(), null, 10_000, _ct)).Count);
    }

    [Fact]
    public async Task DiscardRestoresTheCommittedTree()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var writer = await TestShardWriter.OpenAsync(store, shardId, _ct);
        writer.Put(K("01"), K("aa"));
        writer.Put(K("02"), K("bb"));
        await writer.CommitAsync(_ct);
        var committed = writer.Tree.Root;
        var proof = writer.Tree.Prove(writer.FieldOf(K("02")));

        writer.Put(K("03"), K("cc"));
        writer.Delete(K("02"));
        Assert.True(writer.Nodes.HasStaged);
        Assert.NotEqual(committed, writer.Tree.Root);
        writer.Nodes.DiscardStaged();

        Assert.False(writer.Nodes.HasStaged);
        Assert.Equal(committed, writer.Tree.Root);
        Assert.False(writer.Tree.Contains(writer.FieldOf(K("03"))));
        Assert.Equal(proof, writer.Tree.Prove(writer.FieldOf(K("02"))));
    }

    [Fact]
    public async Task AFailedStoreCommitRollsTheTreeBackAndTheShardStaysUsable()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var writer = await TestShardWriter.OpenAsync(store, shardId, _ct);
        writer.Put(K("01"), K("aa"));
        await writer.CommitAsync(_ct);
        var committed = writer.Tree.Root;

        writer.Put(K("02"), K("bb"));
        var e = await Assert.ThrowsAsync<GridException>(() => writer.CommitAsync(_ct, sabotage: true));
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        Assert.Equal(committed, writer.Tree.Root);
        Assert.Equal(committed, (await store.GetShardAsync(shardId, _ct)).Root);

        writer.Put(K("03"), K("cc"));
        await writer.CommitAsync(_ct);
        var expected = new SparseMerkleTree();
        expected.Insert(writer.FieldOf(K("01")), writer.FieldOf(K("aa")));
        expected.Insert(writer.FieldOf(K("03")), writer.FieldOf(K("cc")));
        Assert.Equal(expected.Root, (await store.GetShardAsync(shardId, _ct)).Root);
    }

    [Fact]
    public async Task TreeChangesStageInANewLayerWhileACommitIsInFlightAndADiscardDropsEveryLayer()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var writer = await TestShardWriter.OpenAsync(store, shardId, _ct);
        Assert.Throws<InvalidOperationException>(() => writer.Nodes.AcceptStaged());

        writer.Put(K("01"), K("aa"));
        var first = writer.Nodes.TakeStaged();
        Assert.Equal(writer.Tree.Root, first.NewRoot);
        Assert.True(first.OldRoot.IsZero);
        Assert.Single(first.AddedNodes);
        Assert.Equal(1, writer.Nodes.PendingCommits);

        // The next group folds on top while the first one's commit is in flight; its changes start from the first's root.
        writer.Tree.Insert(F(5), F(5));
        var second = writer.Nodes.TakeStaged();
        Assert.Equal(first.NewRoot, second.OldRoot);
        Assert.Equal(writer.Tree.Root, second.NewRoot);
        Assert.Equal(2, writer.Nodes.PendingCommits);
        Assert.True(writer.Tree.Contains(writer.FieldOf(K("01")))); // both layers are visible to the tree
        Assert.True(writer.Tree.Contains(F(5)));

        // The committed view sees neither until they are accepted, in order.
        var committed = new SparseMerkleTree(writer.Nodes.Committed);
        Assert.True(committed.Root.IsZero);
        writer.Nodes.AcceptStaged();
        Assert.Equal(first.NewRoot, writer.Nodes.CommittedRoot);
        Assert.True(committed.Contains(writer.FieldOf(K("01"))));
        Assert.False(committed.Contains(F(5)));
        Assert.Throws<InvalidOperationException>(() => writer.Nodes.Committed.Commit(new SmtNodeBatch()));

        // A failed commit of the second layer drops it and anything staged after it: back to the first's root.
        writer.Tree.Insert(F(6), F(6));
        writer.Nodes.DiscardStaged();
        Assert.Equal(first.NewRoot, writer.Tree.Root);
        Assert.Equal(0, writer.Nodes.PendingCommits);
        Assert.False(writer.Nodes.HasStaged);
        Assert.False(writer.Tree.Contains(F(5)));
        Assert.False(writer.Tree.Contains(F(6)));
        writer.Tree.Insert(F(5), F(5)); // and the tree takes changes again
    }

    [Fact]
    public async Task DiscardingTheOpenLayerKeepsTheLayersWhoseCommitsAreInFlight()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var writer = await TestShardWriter.OpenAsync(store, shardId, _ct);

        writer.Put(K("01"), K("aa"));
        var first = writer.Nodes.TakeStaged();
        writer.Tree.Insert(F(5), F(5));
        var second = writer.Nodes.TakeStaged();
        writer.Tree.Insert(F(6), F(6)); // the open layer: a fold that failed half way, say

        writer.Nodes.DiscardOpen();
        Assert.Equal(second.NewRoot, writer.Tree.Root);
        Assert.Equal(2, writer.Nodes.PendingCommits);
        Assert.True(writer.Tree.Contains(F(5)));
        Assert.False(writer.Tree.Contains(F(6)));

        writer.Nodes.AcceptStaged();
        writer.Nodes.AcceptStaged();
        Assert.Equal(second.NewRoot, writer.Nodes.CommittedRoot);
        Assert.Equal(first.NewRoot, second.OldRoot);

        // With nothing taken, it goes back to the committed root.
        writer.Tree.Insert(F(7), F(7));
        writer.Nodes.DiscardOpen();
        Assert.Equal(second.NewRoot, writer.Tree.Root);
        Assert.False(writer.Nodes.HasStaged);
    }

    [Fact]
    public async Task ABatchAgainstAnotherRootIsAConflict()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var nodes = ShardTreeNodeStore.Open(store, await store.GetShardAsync(shardId, _ct));
        var batch = new SmtNodeBatch { OldRoot = F(1), NewRoot = F(2) };
        Assert.Equal(SmtErrorCode.Conflict, Assert.Throws<SmtException>(() => nodes.Commit(batch)).Code);
        Assert.True(nodes.Root.IsZero);
    }

    [Fact]
    public async Task InsertThenDeleteInOneStagingDeletesNothingAndAddsNothingNew()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var writer = await TestShardWriter.OpenAsync(store, shardId, _ct);
        for (int i = 0; i < 16; i++) writer.Put([(byte)i], [(byte)i]);
        await writer.CommitAsync(_ct);
        var root = writer.Tree.Root;

        writer.Put(K("aa"), K("01"));
        writer.Delete(K("aa"));
        var staged = await writer.CommitAsync(_ct);
        Assert.Equal(root, staged.NewRoot);
        Assert.Empty(staged.RemovedPositions);
        // What is left are re-additions of the path the insert had replaced: nodes the store already holds.
        using var reader = store.OpenNodeReader(shardId);
        Assert.All(staged.AddedNodes, e => Assert.True(reader.TryGetNode(e, out _)));
    }

    [Fact]
    public async Task StagedChangesAreNetPerPositionAndComeInTheStoresKeyOrder()
    {
        var (store, _, shardId) = await NewShardAsync();
        await using var opened = store;
        using var writer = await TestShardWriter.OpenAsync(store, shardId, _ct);
        for (int i = 0; i < 200; i++) writer.Put([(byte)i, 1], [(byte)i]);
        await writer.CommitAsync(_ct);

        // Updates only: every changed position already holds a node, so nothing is emptied and each path is replaced in place.
        for (int i = 0; i < 200; i += 10) writer.Put([(byte)i, 1], [0xee]);
        var staged = writer.Nodes.TakeStaged();
        Assert.Empty(staged.RemovedPositions);
        Assert.Equal(staged.AddedNodes.Count, staged.AddedNodes.Select(e => e.Position).Distinct().Count());
        using (var reader = store.OpenNodeReader(shardId))
            Assert.All(staged.AddedNodes, e => Assert.False(reader.TryGetNode(e, out _))); // new nodes, at positions that hold the old ones

        var ordered = staged.InStoreOrder();
        Assert.Equal(staged.AddedNodes.ToHashSet(), ordered.AddedNodes.ToHashSet());
        var keys = ordered.AddedNodes.Select(e => e.Position.ToBytes()).ToList();
        for (int i = 1; i < keys.Count; i++) Assert.True(keys[i - 1].AsSpan().SequenceCompareTo(keys[i]) < 0, $"entry {i} is out of order");
        Assert.Equal((staged.OldRoot, staged.NewRoot), (ordered.OldRoot, ordered.NewRoot));
        writer.Nodes.DiscardStaged();
    }

    /// <summary>
    /// The re-activation the grid depends on: a 100,000-key shard is reopened from disk and proves a key by reading one
    /// path, with no rebuild and no rehash (a 1,000,000-key shard differs by three or four levels).
    /// </summary>
    [Fact]
    [Trait("Category", "Integration")]
    public async Task ALargeShardReactivatesFromItsStoredRootAndProvesAfterAFewReads()
    {
        const int keys = 100_000, commits = 4;
        var (store, name, shardId) = await NewShardAsync();
        var rng = new Random(7);
        var allKeys = new byte[keys][];
        // Keys and values go into the tree as their own numbers (16 and 8 bytes are below p): this test is about the
        // store, and skipping the bytes-to-field hash halves its set-up time.
        static Fr Direct(byte[] b)
        {
            var padded = new byte[Fr.ByteLength];
            b.CopyTo(padded, Fr.ByteLength - b.Length);
            return Fr.FromBytesBigEndian(padded);
        }
        var clock = Stopwatch.StartNew();
        using (var writer = await TestShardWriter.OpenAsync(store, shardId, _ct, Direct))
        {
            for (int c = 0; c < commits; c++)
            {
                var batch = new (byte[], byte[]?)[keys / commits];
                for (int i = 0; i < batch.Length; i++)
                {
                    var key = new byte[16];
                    rng.NextBytes(key);
                    allKeys[c * batch.Length + i] = key;
                    batch[i] = (key, BitConverter.GetBytes((long)(c * batch.Length + i)));
                }
                writer.Apply(batch);
                await writer.CommitAsync(_ct);
            }
        }
        await store.DisposeAsync();
        var built = clock.Elapsed;

        clock.Restart();
        store = await OpenStoreAsync(name);
        await using var opened = store;
        var state = await store.GetShardAsync(shardId, _ct);
        Assert.Equal(keys, state.KeyCount);
        using var nodes = ShardTreeNodeStore.Open(store, state, cacheCapacity: 4096);
        var tree = new SparseMerkleTree(nodes);
        var reopened = clock.Elapsed;

        clock.Restart();
        var proof = tree.Prove(Direct(allKeys[12_345]));
        var proved = clock.Elapsed;
        output.WriteLine($"{keys:N0} keys built and committed in {built.TotalSeconds:F1} s; reopened in {reopened.TotalMilliseconds:F0} ms " +
            $"(integrity check included); first proof in {proved.TotalMilliseconds:F1} ms with {nodes.StoreReads} node reads, depth {proof.Depth}.");
        Assert.True(proof.Exists);
        Assert.Equal(Direct(BitConverter.GetBytes(12_345L)), proof.Value);
        Assert.True(proof.VerifyAgainst(state.Root));
        long firstProofReads = nodes.StoreReads;
        Assert.InRange(firstProofReads, 1, 299);

        // Asking again costs nothing; another key shares the cached top of the tree.
        Assert.Equal(proof, tree.Prove(Direct(allKeys[12_345])));
        Assert.Equal(firstProofReads, nodes.StoreReads);
        var absent = tree.Prove(Direct(K("00112233445566778899aabbccddeeff")));
        Assert.False(absent.Exists);
        Assert.True(absent.VerifyAgainst(state.Root));
        Assert.InRange(nodes.StoreReads, firstProofReads, 2 * firstProofReads);
    }

    private static byte[] Value(Random rng)
    {
        var v = new byte[rng.Next(0, 40)];
        rng.NextBytes(v);
        return v;
    }
}
