using System.Buffers;

namespace Rustorium.Grid.Storage;

/// <summary>
/// The checks every provider applies to a <see cref="ShardCommit"/>, so that SQLite and PostgreSQL refuse exactly the same
/// commits with exactly the same codes.
/// </summary>
internal static class CommitChecks
{
    /// <summary>
    /// Checks what can be checked without the stored shard: NewVersion after ExpectedVersion, non-negative epoch and key
    /// count, no null key, node lists present. Then returns the rows sorted by key in a pooled array (return it with
    /// <see cref="ReturnRows"/>), having refused a key that appears twice.
    /// </summary>
    /// <remarks>Sorted rows make the range check two comparisons (first and last key) and let the B-tree take the
    /// inserts in order.</remarks>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static RowWrite[] CheckAndSortRows(ShardCommit commit, out int count)
    {
        ArgumentNullException.ThrowIfNull(commit);
        if (commit.NewVersion <= commit.ExpectedVersion)
            throw Invalid(commit, $"NewVersion {commit.NewVersion} must be greater than ExpectedVersion {commit.ExpectedVersion}.");
        if (commit.ExpectedVersion < 0) throw Invalid(commit, $"ExpectedVersion {commit.ExpectedVersion} is negative.");
        if (commit.NewKeyCount < 0) throw Invalid(commit, $"NewKeyCount {commit.NewKeyCount} is negative.");
        if (commit.Rows is null || commit.AddedNodes is null || commit.RemovedNodes is null)
            throw Invalid(commit, "Rows, AddedNodes and RemovedNodes must not be null (use empty lists).");

        var rows = commit.Rows;
        count = rows.Count;
        var sorted = ArrayPool<RowWrite>.Shared.Rent(Math.Max(count, 1));
        try
        {
            bool inOrder = true;
            for (int i = 0; i < count; i++)
            {
                var row = rows[i];
                if (row.Key is null) throw Invalid(commit, $"Row {i} has a null key.");
                if (i > 0 && inOrder && KeyRange.Compare(sorted[i - 1].Key, row.Key) >= 0) inOrder = false;
                sorted[i] = row;
            }
            if (!inOrder) Array.Sort(sorted, 0, count, RowKeyComparer.Instance);
            for (int i = 1; i < count; i++)
            {
                if (KeyRange.Compare(sorted[i - 1].Key, sorted[i].Key) == 0)
                    throw Invalid(commit, $"Key {Hex(sorted[i].Key)} appears more than once; a commit writes each key at most once.");
            }
            return sorted;
        }
        catch
        {
            ReturnRows(sorted);
            throw;
        }
    }

    /// <summary>Refuses rows outside the shard's range; <paramref name="sorted"/> is the output of <see cref="CheckAndSortRows"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the key and the range.</exception>
    public static void CheckInRange(ShardCommit commit, KeyRange range, ReadOnlySpan<RowWrite> sorted)
    {
        if (sorted.IsEmpty) return;
        if (!range.Contains(sorted[0].Key)) throw OutOfRange(commit, range, sorted[0].Key);
        if (!range.Contains(sorted[^1].Key)) throw OutOfRange(commit, range, sorted[^1].Key);
    }

    /// <summary>The stored key count plus the commit's effect must be the key count the commit claims.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>: the writer's view of the shard (its tree) and the rows disagree.</exception>
    public static void CheckKeyCount(ShardCommit commit, long storedKeyCount, long inserted, long deleted)
    {
        long actual = storedKeyCount + inserted - deleted;
        if (actual != commit.NewKeyCount)
            throw Invalid(commit,
                $"NewKeyCount is {commit.NewKeyCount} but the shard would hold {actual} keys ({storedKeyCount} stored, {inserted} inserted, " +
                $"{deleted} deleted): the writer's tree and the stored rows disagree.");
    }

    public static void ReturnRows(RowWrite[] sorted) => ArrayPool<RowWrite>.Shared.Return(sorted, clearArray: true);

    public static GridException Conflict(ShardCommit commit, long storedEpoch, long storedVersion) =>
        new(GridErrorCode.Conflict, storedEpoch != commit.Epoch
            ? $"Commit to shard {commit.ShardId} refused: the shard's epoch is {storedEpoch} but the commit carries {commit.Epoch} " +
              "(ownership moved; this writer must stop)."
            : $"Commit to shard {commit.ShardId} refused: the shard is at version {storedVersion} but the commit expects {commit.ExpectedVersion}.");

    public static GridException UnknownShard(long shardId) =>
        new(GridErrorCode.UnknownShard, $"Shard {shardId} is not in this store.");

    private static GridException OutOfRange(ShardCommit commit, KeyRange range, byte[] key) =>
        Invalid(commit, $"Key {Hex(key)} is outside the shard's range {range}.");

    private static GridException Invalid(ShardCommit commit, string message) =>
        GridException.InvalidArgument($"Commit to shard {commit.ShardId} refused: {message}");

    private static string Hex(byte[] key) => key.Length == 0 ? "\"\"" : Convert.ToHexStringLower(key);

    private sealed class RowKeyComparer : IComparer<RowWrite>
    {
        public static readonly RowKeyComparer Instance = new();

        public int Compare(RowWrite x, RowWrite y) => KeyRange.Compare(x.Key, y.Key);
    }
}
