using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>A sparse Merkle tree built from rows: its root, key count and every node (to store as a shard's whole tree).</summary>
/// <param name="Root">The root.</param>
/// <param name="KeyCount">Leaves.</param>
/// <param name="Nodes">Every node of the tree.</param>
public sealed record BuiltTree(Fr Root, long KeyCount, IReadOnlyList<SmtNodeEntry> Nodes);

/// <summary>
/// Builds shard trees from stored rows, for splits and merges (docs/sharding.md): the rows are read in pages, their keys
/// and values hashed in batches, and the tree built with level-batched inserts (each inner node hashed once).
/// </summary>
public static class ShardTreeBuilder
{
    private const int PageSize = 8192;

    /// <summary>Reads every row of <paramref name="shardId"/> in key order.</summary>
    public static async Task<List<StoredRow>> ReadAllRowsAsync(IShardStore store, long shardId, CancellationToken cancellationToken)
    {
        var rows = new List<StoredRow>();
        byte[] from = [];
        while (true)
        {
            var page = await store.ScanAsync(shardId, from, null, PageSize, cancellationToken).ConfigureAwait(false);
            rows.AddRange(page);
            if (page.Count < PageSize) return rows;
            var last = page[^1].Key;
            from = new byte[last.Length + 1];
            last.CopyTo(from, 0);
        }
    }

    /// <summary>The tree of exactly <paramref name="rows"/> (keys distinct).</summary>
    public static BuiltTree Build(IReadOnlyList<StoredRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var store = new InMemorySmtNodeStore(2 * rows.Count + 256);
        var tree = new SparseMerkleTree(store);
        var keys = new byte[PageSize][];
        var values = new byte[PageSize][];
        var keyHashes = new Fr[PageSize];
        var valueHashes = new Fr[PageSize];
        var changes = new SmtChange[PageSize];
        for (int start = 0; start < rows.Count; start += PageSize)
        {
            int n = Math.Min(PageSize, rows.Count - start);
            for (int i = 0; i < n; i++)
            {
                keys[i] = rows[start + i].Key;
                values[i] = rows[start + i].Value;
            }
            PoseidonBytes.HashMany(new ArraySegment<byte[]>(keys, 0, n), keyHashes);
            PoseidonBytes.HashMany(new ArraySegment<byte[]>(values, 0, n), valueHashes);
            for (int i = 0; i < n; i++) changes[i] = SmtChange.Insert(keyHashes[i], valueHashes[i]);
            tree.ApplyBatch(changes.AsSpan(0, n));
        }
        return new BuiltTree(tree.Root, rows.Count, tree.EnumerateNodes().ToList()); // with their positions
    }
}
