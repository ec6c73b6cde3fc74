using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// A shard's sparse Merkle tree over its store (nodes load lazily through <see cref="ShardTreeNodeStore"/>, so a
/// shard with millions of keys re-activates without rehashing), with the lock that orders tree changes and proofs.
/// </summary>
internal sealed class ShardTree : IDisposable
{
    public ShardTree(IShardStore store, ShardState state)
    {
        Nodes = ShardTreeNodeStore.Open(store, state);
        Tree = new SparseMerkleTree(Nodes);
        CommittedTree = new SparseMerkleTree(Nodes.Committed);
        KeyCount = state.KeyCount;
    }

    /// <summary>The node store (staging until the shard's commit).</summary>
    public ShardTreeNodeStore Nodes { get; }

    /// <summary>The tree with every staged group folded in. Touch it only while holding <see cref="Lock"/>.</summary>
    public SparseMerkleTree Tree { get; }

    /// <summary>The committed tree alone (root <see cref="Root"/>), for proofs. Touch it only while holding <see cref="Lock"/>.</summary>
    public SparseMerkleTree CommittedTree { get; }

    /// <summary>Excludes tree and node-cache access: folds, taking and accepting staged changes, proofs. Never held across I/O.</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);

    /// <summary>
    /// Held from taking a group's staged changes until its store commit is accepted or discarded: a reader holding it sees
    /// the store's rows and the committed tree at the same version. Taken before <see cref="Lock"/>, never after it.
    /// </summary>
    public SemaphoreSlim CommitLock { get; } = new(1, 1);

    /// <summary>Keys in the committed tree.</summary>
    public long KeyCount { get; set; }

    /// <summary>The committed root.</summary>
    public Fr Root => Nodes.CommittedRoot;

    public void Dispose()
    {
        Nodes.Dispose();
        Lock.Dispose();
        CommitLock.Dispose();
    }
}

/// <summary>A write-with-proof's request: prove <see cref="KeyHash"/> at the version of the group that holds the write.</summary>
internal sealed class ProofRequest(Fr keyHash)
{
    public Fr KeyHash { get; } = keyHash;
    public TaskCompletionSource<SmtProof> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
