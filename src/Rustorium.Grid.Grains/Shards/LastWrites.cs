using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>Coalesces consecutive writes of a shard: what a data commit stores and what a fold applies to the tree.</summary>
internal static class LastWrites
{
    /// <summary>The last write of each key among <paramref name="writes"/> (taken in order), in the order keys first appear.</summary>
    public static List<RowWrite> Of(IEnumerable<IReadOnlyList<RowWrite>> writes)
    {
        var at = new Dictionary<byte[], int>(ByteArrayComparer.Instance);
        var rows = new List<RowWrite>();
        foreach (var list in writes)
        {
            foreach (var row in list)
            {
                if (at.TryGetValue(row.Key, out int i)) rows[i] = row;
                else
                {
                    at[row.Key] = rows.Count;
                    rows.Add(row);
                }
            }
        }
        return rows;
    }
}
