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

    /// <summary>The folded tree (the stored one plus the folds staged since the last checkpoint), for folds and proofs. Touch it only while holding <see cref="Lock"/>.</summary>
    public SparseMerkleTree Tree { get; }

    /// <summary>Excludes tree and node-cache access: folds, taking and accepting staged changes, proofs. Never held across a store write.</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);

    /// <summary>Keys in the folded tree (before a recovery fold: the data's key count, which that fold reaches).</summary>
    public long KeyCount { get; set; }

    /// <summary>The stored root (the last checkpoint).</summary>
    public Fr Root => Nodes.CommittedRoot;

    public void Dispose()
    {
        Nodes.Dispose();
        Lock.Dispose();
    }
}

/// <summary>
/// A write-with-proof's request: prove the key at the tree version of the fold that holds the write (the fold hashes the key
/// with the rest of its batch, eight at a time, rather than the request one by one).
/// </summary>
internal sealed class ProofRequest(byte[] key)
{
    public byte[] Key { get; } = key;
    public TaskCompletionSource<VersionedProof> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
