using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// Folds the groups of all the shards of a silo into their trees together (<see cref="SparseMerkleTree.ApplyBatches"/>):
/// each shard's fold may be small (few writes since its last one), and hashed alone it would leave most of Poseidon's eight
/// AVX-512 lanes empty; hashed in shared rounds with the other shards' groups, the lanes fill. One silo-wide instance.
/// </summary>
/// <remarks>
/// Batching is natural, as in a group commit: while one fold runs, the groups that arrive wait and go together into the
/// next. At most <see cref="MaxConcurrentFolds"/> folds run at once (default: half the processors, at least one), so
/// hashing still spreads over the cores when there is much to do. A caller must own its tree exclusively (hold its lock)
/// until its fold completes; each tree is in at most one pending fold.
/// </remarks>
public sealed class TreeFoldBatcher
{
    private readonly object _gate = new();
    private List<Request> _pending = new();
    private int _running;

    /// <summary>A batcher running up to <paramref name="maxConcurrentFolds"/> folds at once (default: half the processors, at least one).</summary>
    public TreeFoldBatcher(int? maxConcurrentFolds = null)
    {
        MaxConcurrentFolds = maxConcurrentFolds ?? Math.Max(1, Environment.ProcessorCount / 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentFolds, 1);
    }

    /// <summary>Most folds that run at once.</summary>
    public int MaxConcurrentFolds { get; }

    /// <summary>Applies <paramref name="changes"/> to <paramref name="tree"/> as <see cref="SparseMerkleTree.ApplyBatch"/> would, hashing together with other shards' pending folds.</summary>
    /// <returns>Completes when the tree holds the changes; faults with the exception <see cref="SparseMerkleTree.ApplyBatch"/> would have thrown.</returns>
    public Task ApplyAsync(SparseMerkleTree tree, SmtChange[] changes)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ArgumentNullException.ThrowIfNull(changes);
        var request = new Request(tree, changes);
        bool start = false;
        lock (_gate)
        {
            _pending.Add(request);
            if (_running < MaxConcurrentFolds)
            {
                _running++;
                start = true;
            }
        }
        if (start) _ = Task.Run(Drain);
        return request.Done.Task;
    }

    private void Drain()
    {
        while (true)
        {
            List<Request> batch;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _running--;
                    return;
                }
                batch = _pending;
                _pending = new List<Request>();
            }
            Exception?[] errors;
            try
            {
                errors = SparseMerkleTree.ApplyBatches(batch.Select(r => r.Tree).ToList(), batch.Select(r => r.Changes).ToList());
            }
            catch (Exception e)
            {
                errors = Enumerable.Repeat<Exception?>(e, batch.Count).ToArray();
            }
            for (int i = 0; i < batch.Count; i++)
            {
                if (errors[i] is { } error) batch[i].Done.TrySetException(error);
                else batch[i].Done.TrySetResult();
            }
        }
    }

    private sealed class Request(SparseMerkleTree tree, SmtChange[] changes)
    {
        public SparseMerkleTree Tree { get; } = tree;
        public SmtChange[] Changes { get; } = changes;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
