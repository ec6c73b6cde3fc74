using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>
/// The <see cref="ISmtNodeStore"/> contract, run against every implementation: derive, return a fresh empty
/// store from <see cref="CreateStore"/>, and (for persistent stores) a second handle on the same data from
/// <see cref="Reopen"/>.
/// </summary>
public abstract class SmtNodeStoreTestsBase
{
    /// <summary>A new, empty store.</summary>
    protected abstract ISmtNodeStore CreateStore();

    /// <summary>The same data seen through a new handle (a persistent store reopens its database); by default the same object.</summary>
    protected virtual ISmtNodeStore Reopen(ISmtNodeStore store) => store;

    private static readonly SmtNode LeafA = SmtNode.Leaf(F(1), F(11));
    private static readonly SmtNode LeafB = SmtNode.Leaf(F(2), F(22));

    [Fact]
    public void NewStoreIsEmpty()
    {
        var store = CreateStore();
        Assert.True(store.Root.IsZero);
        Assert.False(store.TryGetNode(LeafA.Hash(), out _));
    }

    [Fact]
    public void CommitAddsRemovesAndMovesTheRoot()
    {
        var store = CreateStore();
        var a = LeafA.Hash();
        var b = LeafB.Hash();
        var middle = SmtNode.Middle(b, a);
        var m = middle.Hash();

        var batch = new SmtNodeBatch();
        batch.Add(a, LeafA);
        batch.Add(b, LeafB);
        batch.Add(m, middle);
        batch.NewRoot = m;
        store.Commit(batch);

        store = Reopen(store);
        Assert.Equal(m, store.Root);
        Assert.True(store.TryGetNode(m, out var got));
        Assert.Equal(middle, got);
        Assert.Equal(SmtNodeKind.Middle, got.Kind);
        Assert.Equal(b, got.Left);
        Assert.Equal(a, got.Right);
        Assert.True(store.TryGetNode(a, out got));
        Assert.Equal(LeafA, got);
        Assert.Equal(F(1), got.Key);
        Assert.Equal(F(11), got.Value);

        batch.Clear();
        batch.OldRoot = m;
        batch.Remove(m);
        batch.Remove(b);
        batch.NewRoot = a;
        store.Commit(batch);

        store = Reopen(store);
        Assert.Equal(a, store.Root);
        Assert.False(store.TryGetNode(m, out _));
        Assert.False(store.TryGetNode(b, out _));
        Assert.True(store.TryGetNode(a, out _));
    }

    [Fact]
    public void CommitAgainstAStaleRootIsAConflictAndChangesNothing()
    {
        var store = CreateStore();
        var a = LeafA.Hash();
        var batch = new SmtNodeBatch();
        batch.Add(a, LeafA);
        batch.NewRoot = a;
        store.Commit(batch);

        var stale = new SmtNodeBatch { OldRoot = Fr.Zero, NewRoot = LeafB.Hash() };
        stale.Add(LeafB.Hash(), LeafB);
        stale.Remove(a);
        Assert.Equal(SmtErrorCode.Conflict, Assert.Throws<SmtException>(() => store.Commit(stale)).Code);

        store = Reopen(store);
        Assert.Equal(a, store.Root);
        Assert.True(store.TryGetNode(a, out _));
        Assert.False(store.TryGetNode(LeafB.Hash(), out _));
    }

    [Fact]
    public void RemovingAnAbsentHashAndAddingAPresentNodeAreHarmless()
    {
        var store = CreateStore();
        var a = LeafA.Hash();
        var batch = new SmtNodeBatch();
        batch.Add(a, LeafA);
        batch.NewRoot = a;
        store.Commit(batch);

        batch.Clear();
        batch.OldRoot = a;
        batch.Remove(LeafB.Hash()); // not stored
        batch.Remove(Fr.Zero);      // the empty subtree: ignored by the batch
        batch.Add(a, LeafA);        // already stored, same content
        batch.NewRoot = a;
        Assert.Equal(1, batch.RemovedCount);
        store.Commit(batch);

        store = Reopen(store);
        Assert.Equal(a, store.Root);
        Assert.True(store.TryGetNode(a, out var got));
        Assert.Equal(LeafA, got);
    }

    [Fact]
    public void TheBatchIsNotKeptByTheStore()
    {
        var store = CreateStore();
        var a = LeafA.Hash();
        var batch = new SmtNodeBatch();
        batch.Add(a, LeafA);
        batch.NewRoot = a;
        store.Commit(batch);
        batch.Clear();
        batch.Add(LeafB.Hash(), LeafB); // reusing the batch must not leak into the store
        batch.NewRoot = Fr.One;

        store = Reopen(store);
        Assert.Equal(a, store.Root);
        Assert.False(store.TryGetNode(LeafB.Hash(), out _));
    }

    [Fact]
    public void ATreeOverTheStoreStoresExactlyItsNodesAndContinuesWhenReopened()
    {
        var store = CreateStore();
        var tree = new SparseMerkleTree(store);
        for (ulong k = 0; k < 24; k++) tree.Insert(F(k * 5), F(k));
        for (ulong k = 0; k < 24; k += 4) tree.Delete(F(k * 5));
        tree.ApplyBatch([SmtChange.Update(F(5), F(500)), SmtChange.Insert(F(1000), F(1)), SmtChange.Delete(F(10))]);

        // Every node reachable from the root is stored under its own hash.
        int leaves = 0;
        void Walk(Fr hash)
        {
            if (hash.IsZero) return;
            Assert.True(store.TryGetNode(hash, out var node), $"node {hash} is missing");
            Assert.Equal(hash, node.Hash());
            if (node.IsLeaf)
            {
                leaves++;
                return;
            }
            Walk(node.Left);
            Walk(node.Right);
        }
        Walk(store.Root);
        Assert.Equal(24 - 6 + 1 - 1, leaves);

        var reopened = new SparseMerkleTree(Reopen(store));
        Assert.Equal(tree.Root, reopened.Root);
        Assert.True(reopened.TryGet(F(5), out var v) && v == F(500));
        reopened.Insert(F(2000), F(2));
        tree = new SparseMerkleTree(Reopen(reopened.Store));
        Assert.True(tree.Contains(F(2000)));
        Assert.True(tree.Prove(F(1000)).Verify());
    }
}

/// <summary>The contract for <see cref="InMemorySmtNodeStore"/>, plus its node count.</summary>
public sealed class InMemorySmtNodeStoreTests : SmtNodeStoreTestsBase
{
    protected override ISmtNodeStore CreateStore() => new InMemorySmtNodeStore();

    [Fact]
    public void NodeCountFollowsTheTree()
    {
        var store = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(store);
        Assert.Equal(0, store.NodeCount);
        tree.Insert(F(1), F(1));
        Assert.Equal(1, store.NodeCount);
        tree.Insert(F(3), F(3)); // 1 and 3 split at bit 1: middles at levels 1 and 0
        Assert.Equal(2 + 2, store.NodeCount);
        tree.Delete(F(1));
        Assert.Equal(1, store.NodeCount);
        tree.Delete(F(3));
        Assert.Equal(0, store.NodeCount);
    }
}
