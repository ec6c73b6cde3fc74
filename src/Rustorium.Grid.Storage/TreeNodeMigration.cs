using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>
/// The data half of the migration that keys tree nodes by position (SQLite schema 4, PostgreSQL schema 7): a shard's
/// tree stored by hash is walked from its root, which gives every node its position, and each node is handed on to be
/// stored at it. Only the nodes reachable from the root are copied (a hash-keyed table could not hold others, but a
/// walk makes sure).
/// </summary>
internal static class TreeNodeMigration
{
    /// <summary>
    /// Walks the tree with root <paramref name="root"/> whose nodes <paramref name="read"/> finds by hash, and passes every
    /// node with its position to <paramref name="store"/>, parents first; returns how many.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> when the walk finds a node missing or misplaced.</exception>
    public static long Copy(Fr root, Func<Fr, SmtNode?> read, Action<SmtNodeEntry> store, string what)
    {
        if (root.IsZero) return 0;
        var tree = new SparseMerkleTree(new HashReader(root, read));
        long count = 0;
        try
        {
            foreach (var entry in tree.EnumerateNodes())
            {
                store(entry);
                count++;
            }
        }
        catch (SmtException e)
        {
            throw new GridException(GridErrorCode.Corrupted, $"{what}: the stored tree cannot be walked from its root {root} ({e.Message}); nothing was migrated.");
        }
        return count;
    }

    /// <summary>The migration's progress lines: one per shard copied, then the total with the time it took.</summary>
    public sealed class Report(Action<string>? progress, string where, int shards)
    {
        private readonly long _start = System.Diagnostics.Stopwatch.GetTimestamp();
        private int _done;
        private long _nodes;

        public void ShardDone(long shardId, long nodes)
        {
            _done++;
            _nodes += nodes;
            progress?.Invoke($"Migrating tree nodes to positions in {where}: shard {shardId} done ({nodes:N0} nodes), {_done} of {shards} shards.");
        }

        public void Done() => progress?.Invoke(
            $"Migrated tree nodes to positions in {where}: {_nodes:N0} nodes of {shards} shards in " +
            $"{System.Diagnostics.Stopwatch.GetElapsedTime(_start).TotalSeconds:F1} s.");
    }

    private sealed class HashReader(Fr root, Func<Fr, SmtNode?> read) : ISmtNodeStore
    {
        public Fr Root => root;

        public bool TryGetNode(in Fr hash, out SmtNode node)
        {
            var found = read(hash);
            node = found ?? default;
            return found is not null;
        }

        public void Commit(SmtNodeBatch batch) => throw new InvalidOperationException("A tree being migrated is only read.");
    }
}
