using FsCheck;
using FsCheck.Fluent;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>
/// Node positions: their encoding, and the positions a tree reports with its changes. A tree over a
/// <see cref="StrictPositionedSmtNodeStore"/> must leave every node exactly where a walk of the same tree kept by hash
/// finds it, after single operations, batches and multi-tree batches, with leaves pushed down and pulled up.
/// </summary>
public sealed class SmtPositionTests
{
    [Fact]
    public void EncodingRoundTripsAndNamesTheBitsInPathOrder()
    {
        var rng = new Random(7);
        foreach (int level in new[] { 0, 1, 7, 8, 9, 63, 64, 65, 200, SparseMerkleTree.MaxDepth })
        {
            var key = RandomKey(rng);
            var at = SmtPosition.Of(key, level);
            var bytes = at.ToBytes();
            Assert.Equal((level + 7) / 8 + 1, bytes.Length);
            Assert.Equal(level, bytes[^1]);
            Assert.Equal(at, SmtPosition.Decode(bytes));
            for (int i = 0; i < level; i++)
            {
                Assert.Equal(key.Bit(i), at.Bit(i));
                Assert.Equal(key.Bit(i), (bytes[i / 8] & (0x80 >> (i % 8))) != 0);
            }
        }
        Assert.Equal([0], SmtPosition.Root.ToBytes());
        // Key 6 = bits 0,1,1 from the root down: right of the root's left child is "01", then "011".
        Assert.Equal([0b0110_0000, 3], SmtPosition.Of(F(6), 3).ToBytes());
        Assert.Equal("level 3: 011", SmtPosition.Of(F(6), 3).ToString());
    }

    [Fact]
    public void ChildrenExtendThePathByOneBit()
    {
        var at = SmtPosition.Root;
        var key = F(0b1011);
        for (int level = 0; level < 4; level++)
        {
            Assert.Equal(SmtPosition.Of(key, level), at);
            at = at.Child(key.Bit(level));
        }
        Assert.Equal(SmtPosition.Of(key, 4), at);
        Assert.NotEqual(SmtPosition.Of(key, 4), SmtPosition.Of(F(0b0011), 4));
        Assert.Equal(SmtPosition.Of(F(0b1011), 3), SmtPosition.Of(F(0b0011), 3));
        Assert.Throws<InvalidOperationException>(() => SmtPosition.Of(key, SparseMerkleTree.MaxDepth).Child(false));
        Assert.Throws<InvalidOperationException>(() => SmtPosition.None.Child(true));
        Assert.False(default(SmtPosition).IsKnown);
        Assert.Throws<ArgumentOutOfRangeException>(() => SmtPosition.Of(key, SparseMerkleTree.MaxDepth + 1));
    }

    [Theory]
    [InlineData(new byte[0])]            // no level byte
    [InlineData(new byte[] { 255 })]     // level above the deepest
    [InlineData(new byte[] { 0, 0 })]    // level 0 has no path bytes
    [InlineData(new byte[] { 0x80, 9 })] // level 9 needs two path bytes
    [InlineData(new byte[] { 0x10, 3 })] // bit 3 set at level 3
    [InlineData(new byte[] { 0xFF, 0x80, 8 })] // a path byte too many
    public void DecodingRefusesWhatEncodingNeverWrites(byte[] encoded)
    {
        Assert.Throws<FormatException>(() => SmtPosition.Decode(encoded));
    }

    [Fact]
    public void AnInsertThatSplitsALeafMovesItDown()
    {
        var store = new RecordingPositions();
        var tree = new SparseMerkleTree(store);
        tree.Insert(F(1), F(10)); // bits 1,0,…: the only leaf, at the root
        Assert.Equal(SmtPosition.Root, Assert.Single(store.Last.Added).Position);

        tree.Insert(F(3), F(30)); // bits 1,1: shares bit 0 with key 1, so both go to level 2
        var batch = store.Last;
        var move = Assert.Single(batch.Moved);
        Assert.Equal(LeafHash(1, 10), move.Hash);
        Assert.Equal(SmtPosition.Root, move.From);
        Assert.Equal(SmtPosition.Of(F(1), 2), move.To);
        Assert.Equal(
            new[] { SmtPosition.Of(F(3), 2), SmtPosition.Of(F(3), 1), SmtPosition.Root },
            batch.Added.Select(e => e.Position).ToArray());
        Assert.Empty(batch.Removed); // the old root was the moved leaf itself
    }

    [Fact]
    public void ADeleteThatLeavesOneLeafBelowAMiddleNodeMovesItUp()
    {
        var store = new RecordingPositions();
        var tree = new SparseMerkleTree(store);
        tree.Insert(F(1), F(10));
        tree.Insert(F(3), F(30));
        tree.Insert(F(0), F(5)); // bit 0 = 0: the root's left child
        tree.Delete(F(3));
        var batch = store.Last;
        var move = Assert.Single(batch.Moved);
        Assert.Equal(LeafHash(1, 10), move.Hash);
        Assert.Equal(SmtPosition.Of(F(1), 2), move.From);
        Assert.Equal(SmtPosition.Of(F(1), 1), move.To);
        Assert.Equal(
            new[] { SmtPosition.Of(F(3), 2), SmtPosition.Of(F(3), 1), SmtPosition.Root },
            batch.RemovedPositions.ToArray());
        Assert.Equal(SmtPosition.Root, Assert.Single(batch.Added).Position);
    }

    [Fact]
    public void SingleOperationsLeaveEveryNodeWhereAWalkFindsIt()
    {
        Prop.ForAll(Changes(40).ToArbitrary(), changes =>
        {
            var positioned = new StrictPositionedSmtNodeStore();
            var tree = new SparseMerkleTree(positioned);
            var reference = new SparseMerkleTree();
            foreach (var c in changes)
            {
                Exception? expected = Record.Exception(() => ApplyOne(reference, c));
                Exception? got = Record.Exception(() => ApplyOne(tree, c));
                Assert.Equal((expected as SmtException)?.Code, (got as SmtException)?.Code);
                Assert.Equal(reference.Root, tree.Root);
            }
            AssertSameLayout(reference, positioned);
            return true;
        }).Check(Runs(50));
    }

    [Fact]
    public void BatchesLeaveEveryNodeWhereAWalkFindsIt()
    {
        Prop.ForAll(Gen.ArrayOf(Changes(30), 4).ToArbitrary(), rounds =>
        {
            var positioned = new StrictPositionedSmtNodeStore();
            var tree = new SparseMerkleTree(positioned);
            var reference = new SparseMerkleTree();
            var model = new Dictionary<Fr, Fr>();
            foreach (var round in rounds)
            {
                var batch = MakeValidBatch(round, model);
                reference.ApplyBatch(batch);
                tree.ApplyBatch(batch);
                Assert.Equal(reference.Root, tree.Root);
                AssertSameLayout(reference, positioned);
            }
            return true;
        }).Check(Runs(40));
    }

    [Fact]
    public void MultiTreeBatchesLeaveEveryNodeWhereAWalkFindsIt()
    {
        Prop.ForAll(Gen.ArrayOf(Changes(20), 3).ToArbitrary(), lists =>
        {
            var stores = lists.Select(_ => new StrictPositionedSmtNodeStore()).ToArray();
            var trees = stores.Select(s => new SparseMerkleTree(s)).ToArray();
            var references = lists.Select(_ => new SparseMerkleTree()).ToArray();
            for (int round = 0; round < 2; round++)
            {
                var batches = lists.Select((list, i) => MakeValidBatch(list.Skip(round * 10).Take(10), ModelOf(references[i]))).ToArray();
                for (int i = 0; i < trees.Length; i++) references[i].ApplyBatch(batches[i]);
                var errors = SparseMerkleTree.ApplyBatches(trees, batches);
                Assert.All(errors, Assert.Null);
                for (int i = 0; i < trees.Length; i++)
                {
                    Assert.Equal(references[i].Root, trees[i].Root);
                    AssertSameLayout(references[i], stores[i]);
                }
            }
            return true;
        }).Check(Runs(20));
    }

    [Fact]
    public void AFailedBatchChangesNoPosition()
    {
        var positioned = new StrictPositionedSmtNodeStore();
        var tree = new SparseMerkleTree(positioned);
        tree.ApplyBatch([SmtChange.Insert(F(1), F(1)), SmtChange.Insert(F(2), F(2)), SmtChange.Insert(F(6), F(3))]);
        var before = positioned.Nodes.ToDictionary(p => p.Key, p => p.Value);
        Assert.Throws<SmtException>(() => tree.ApplyBatch([SmtChange.Insert(F(14), F(4)), SmtChange.Update(F(99), F(5))]));
        Assert.Equal(before, positioned.Nodes);
    }

    [Fact]
    public void EnumerateNodesWalksEveryNodeOnceParentsFirst()
    {
        var tree = Build(Enumerable.Range(0, 300).Select(i => KeyValuePair.Create(F((ulong)(i * 37 % 1024)), F((ulong)i))));
        var nodes = tree.EnumerateNodes().ToList();
        Assert.Equal(((InMemorySmtNodeStore)tree.Store).NodeCount, nodes.Count);
        Assert.Equal(SmtPosition.Root, nodes[0].Position);
        Assert.Equal(tree.Root, nodes[0].Hash);
        Assert.Equal(300, nodes.Count(n => n.Node.IsLeaf));
        var seen = new HashSet<SmtPosition>();
        foreach (var n in nodes)
        {
            Assert.True(seen.Add(n.Position));
            Assert.Equal(n.Node.Hash(), n.Hash);
            if (n.Position.Level > 0)
            {
                // The parent came first.
                Assert.Contains(nodes.Take(nodes.IndexOf(n)), p => p.Node.IsMiddle && (p.Node.Left == n.Hash || p.Node.Right == n.Hash));
            }
        }
        Assert.Empty(new SparseMerkleTree().EnumerateNodes());
    }

    /// <summary>The positioned store holds exactly the reference tree's nodes, each at the position a walk gives it.</summary>
    private static void AssertSameLayout(SparseMerkleTree reference, StrictPositionedSmtNodeStore positioned)
    {
        var expected = reference.EnumerateNodes().ToDictionary(e => e.Position, e => e.Hash);
        Assert.Equal(expected.Count, positioned.Nodes.Count);
        foreach (var (at, hash) in expected)
        {
            Assert.True(positioned.Nodes.TryGetValue(at, out var entry), $"Nothing at {at}; the reference tree has {hash} there.");
            Assert.Equal(hash, entry.Hash);
        }
    }

    private static Dictionary<Fr, Fr> ModelOf(SparseMerkleTree tree) =>
        tree.EnumerateNodes().Where(e => e.Node.IsLeaf).ToDictionary(e => e.Node.Key, e => e.Node.Value);

    private static Fr RandomKey(Random rng)
    {
        var bytes = new byte[32];
        rng.NextBytes(bytes);
        bytes[31] &= 0x1F; // below 2^253 < p
        return Fr.FromBytesLittleEndian(bytes);
    }

    /// <summary>A hash-keyed store that keeps a copy of the last batch it committed.</summary>
    private sealed class RecordingPositions : ISmtNodeStore
    {
        private readonly InMemorySmtNodeStore _inner = new();

        public RecordedBatch Last { get; private set; } = new([], [], [], []);

        public Fr Root => _inner.Root;

        public bool TryGetNode(in Fr hash, out SmtNode node) => _inner.TryGetNode(hash, out node);

        public void Commit(SmtNodeBatch batch)
        {
            Last = new RecordedBatch(batch.Added.ToArray(), batch.Removed.ToArray(), batch.RemovedPositions.ToArray(), batch.Moved.ToArray());
            _inner.Commit(batch);
        }
    }

    private sealed record RecordedBatch(SmtNodeEntry[] Added, Fr[] Removed, SmtPosition[] RemovedPositions, SmtNodeMove[] Moved);
}
