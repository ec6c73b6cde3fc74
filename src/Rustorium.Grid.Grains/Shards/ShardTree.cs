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
        KeyCount = state.KeyCount;
    }

    /// <summary>The node store (staging until the shard's commit).</summary>
    public ShardTreeNodeStore Nodes { get; }

    /// <summary>The tree. Touch it only while holding <see cref="Lock"/>.</summary>
    public SparseMerkleTree Tree { get; }

    /// <summary>Orders group commits and proofs: a proof never sees a tree change that is not committed.</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);

    /// <summary>Keys in the committed tree.</summary>
    public long KeyCount { get; set; }

    /// <summary>The committed root.</summary>
    public Fr Root => Nodes.CommittedRoot;

    public void Dispose()
    {
        Nodes.Dispose();
        Lock.Dispose();
    }
}

/// <summary>A write-with-proof's request: prove <see cref="KeyHash"/> at the version of the group that holds the write.</summary>
internal sealed class ProofRequest(Fr keyHash)
{
    public Fr KeyHash { get; } = keyHash;
    public TaskCompletionSource<SmtProof> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
