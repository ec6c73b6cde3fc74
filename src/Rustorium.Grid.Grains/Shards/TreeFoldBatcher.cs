using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// Folds the groups of all the shards of a silo into their trees together (<see cref="SparseMerkleTree.ApplyBatches"/>):
/// each shard's fold may be small (few writes since its last one), and hashed alone it would leave most of Poseidon's eight
/// AVX-512 lanes empty; hashed in shared rounds with the other shards' groups, the lanes fill. One silo-wide instance.
/// </summary>
/// <remarks>
/// Batched as a group commit is (<see cref="RequestBatcher{TRequest}"/>); several folds may run at once, so hashing still
/// spreads over the cores when there is much to do. A caller must own its tree exclusively (hold its lock) until its fold
/// completes; each tree is in at most one pending fold.
/// </remarks>
public sealed class TreeFoldBatcher : RequestBatcher<TreeFoldBatcher.Request>
{
    /// <summary>A batcher running up to <paramref name="maxConcurrentFolds"/> folds at once (default: half the processors, at least one).</summary>
    public TreeFoldBatcher(int? maxConcurrentFolds = null) : base(maxConcurrentFolds)
    {
    }

    /// <summary>Applies <paramref name="changes"/> to <paramref name="tree"/> as <see cref="SparseMerkleTree.ApplyBatch"/> would, hashing together with other shards' pending folds.</summary>
    /// <returns>Completes when the tree holds the changes; faults with the exception <see cref="SparseMerkleTree.ApplyBatch"/> would have thrown.</returns>
    public Task ApplyAsync(SparseMerkleTree tree, SmtChange[] changes)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ArgumentNullException.ThrowIfNull(changes);
        var request = new Request(tree, changes);
        Submit(request);
        return request.Done.Task;
    }

    /// <inheritdoc />
    protected override void RunBatch(List<Request> batch)
    {
        var errors = SparseMerkleTree.ApplyBatches(batch.Select(r => r.Tree).ToList(), batch.Select(r => r.Changes).ToList());
        for (int i = 0; i < batch.Count; i++)
        {
            if (errors[i] is { } error) batch[i].Done.TrySetException(error);
            else batch[i].Done.TrySetResult();
        }
    }

    /// <inheritdoc />
    protected override void FailBatch(List<Request> batch, Exception error)
    {
        foreach (var r in batch) r.Done.TrySetException(error);
    }

    /// <summary>One shard's fold.</summary>
    public sealed class Request(SparseMerkleTree tree, SmtChange[] changes)
    {
        internal SparseMerkleTree Tree { get; } = tree;
        internal SmtChange[] Changes { get; } = changes;
        internal TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
