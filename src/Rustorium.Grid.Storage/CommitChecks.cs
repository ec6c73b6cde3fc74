using System.Buffers;
using Rustorium.Grid.Crypto.Smt;

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
        if (commit.Rows is null || commit.AddedNodes is null || commit.RemovedPositions is null)
            throw Invalid(commit, "Rows, AddedNodes and RemovedPositions must not be null (use empty lists).");
        if (commit.NewRoot is null && (commit.AddedNodes.Count > 0 || commit.RemovedPositions.Count > 0))
            throw Invalid(commit, "A data commit (NewRoot null) carries no tree nodes: the tree's changes go in a tree commit.");
        string what = $"Commit to shard {commit.ShardId}";
        CheckNodes(what, nameof(ShardCommit.AddedNodes), commit.AddedNodes);
        CheckPositions(what, nameof(ShardCommit.RemovedPositions), commit.RemovedPositions);

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
    /// <returns>The new key count (also when the commit claims none: a data commit's count is the store's).</returns>
    public static long CheckKeyCount(ShardCommit commit, long storedKeyCount, long inserted, long deleted)
    {
        long actual = storedKeyCount + inserted - deleted;
        if (commit.NewKeyCount is { } claimed && actual != claimed)
            throw Invalid(commit,
                $"NewKeyCount is {commit.NewKeyCount} but the shard would hold {actual} keys ({storedKeyCount} stored, {inserted} inserted, " +
                $"{deleted} deleted): the writer's tree and the stored rows disagree.");
        return actual;
    }

    /// <summary>A combined commit (tree changes to its new version) needs the stored tree at the commit's expected version.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckCombined(ShardCommit commit, long storedTreeVersion)
    {
        if (commit.NewRoot is not null && storedTreeVersion != commit.ExpectedVersion)
            throw Invalid(commit,
                $"A combined commit (rows and tree) needs the tree at version {commit.ExpectedVersion}, but it is at {storedTreeVersion}: " +
                "fold the unfolded changes first (tree commit), or commit the rows alone.");
    }

    // ---------------------------------------------------------------- tree commits

    /// <summary>What a tree commit is checked against without the stored shard: the version step and the node lists.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckTreeCommit(ShardTreeCommit commit)
    {
        ArgumentNullException.ThrowIfNull(commit);
        string what = $"Tree commit to shard {commit.ShardId}";
        if (commit.ExpectedTreeVersion < 0) throw GridException.InvalidArgument($"{what} refused: ExpectedTreeVersion {commit.ExpectedTreeVersion} is negative.");
        if (commit.NewTreeVersion <= commit.ExpectedTreeVersion)
            throw GridException.InvalidArgument(
                $"{what} refused: NewTreeVersion {commit.NewTreeVersion} must be greater than ExpectedTreeVersion {commit.ExpectedTreeVersion}.");
        if (commit.AddedNodes is null || commit.RemovedPositions is null)
            throw GridException.InvalidArgument($"{what} refused: AddedNodes and RemovedPositions must not be null (use empty lists).");
        CheckNodes(what, nameof(ShardTreeCommit.AddedNodes), commit.AddedNodes);
        CheckPositions(what, nameof(ShardTreeCommit.RemovedPositions), commit.RemovedPositions);
    }

    /// <summary>A tree commit against the stored shard: its epoch and tree version (Conflict), and a new tree version within the data.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> or <see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckTreeCommitAgainst(ShardTreeCommit commit, long epoch, long version, long treeVersion)
    {
        if (epoch != commit.Epoch || treeVersion != commit.ExpectedTreeVersion)
            throw new GridException(GridErrorCode.Conflict,
                $"Tree commit to shard {commit.ShardId} refused: it expects epoch {commit.Epoch} and tree version {commit.ExpectedTreeVersion}, " +
                $"the shard is at epoch {epoch} and tree version {treeVersion}.");
        if (commit.NewTreeVersion > version)
            throw GridException.InvalidArgument(
                $"Tree commit to shard {commit.ShardId} refused: NewTreeVersion {commit.NewTreeVersion} is past the shard's version {version}; " +
                "a tree holds only committed data.");
    }

    // ---------------------------------------------------------------- splits and merges

    /// <summary>What a split is checked against without the stored shard: the version step, non-negative counts, a split key,
    /// node lists of real nodes.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckSplit(ShardSplit split)
    {
        ArgumentNullException.ThrowIfNull(split);
        string what = $"Split of shard {split.ShardId}";
        if (split.SplitKey is null) throw Invalid(what, "SplitKey is null.");
        if (split.NewVersion <= split.ExpectedVersion)
            throw Invalid(what, $"NewVersion {split.NewVersion} must be greater than ExpectedVersion {split.ExpectedVersion}.");
        if (split.ExpectedVersion < 0) throw Invalid(what, $"ExpectedVersion {split.ExpectedVersion} is negative.");
        if (split.LeftKeyCount < 0 || split.RightKeyCount < 0)
            throw Invalid(what, $"Key counts must not be negative (left {split.LeftKeyCount}, right {split.RightKeyCount}).");
        CheckNodes(what, nameof(ShardSplit.LeftNodes), split.LeftNodes);
        CheckNodes(what, nameof(ShardSplit.RightNodes), split.RightNodes);
    }

    /// <summary>The stored shard must be at the split's epoch and version, and the split key strictly inside its range.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/>; <see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckSplitAgainst(ShardSplit split, long storedEpoch, long storedVersion, KeyRange range)
    {
        if (storedEpoch != split.Epoch || storedVersion != split.ExpectedVersion)
            throw Conflict($"Split of shard {split.ShardId}", split.Epoch, split.ExpectedVersion, storedEpoch, storedVersion);
        if (KeyRange.Compare(split.SplitKey, range.Start) <= 0 || (!range.IsUnbounded && KeyRange.Compare(split.SplitKey, range.End) >= 0))
            throw Invalid($"Split of shard {split.ShardId}",
                $"the split key {Hex(split.SplitKey)} is not strictly inside the shard's range {range} (after its start, before its end).");
    }

    /// <summary>The key counts the split claims must be the rows the store finds on each side of the split key.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckSplitCounts(ShardSplit split, long leftRows, long rightRows)
    {
        if (leftRows != split.LeftKeyCount || rightRows != split.RightKeyCount)
            throw Invalid($"Split of shard {split.ShardId}",
                $"the key counts are {split.LeftKeyCount} (left) and {split.RightKeyCount} (right) but the shard holds {leftRows} keys below " +
                $"{Hex(split.SplitKey)} and {rightRows} from it on: the trees and the stored rows disagree.");
    }

    /// <summary>What a merge is checked against without the stored shards: two different ids, the version step, a
    /// non-negative count, a node list of real nodes.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckMerge(ShardMerge merge)
    {
        ArgumentNullException.ThrowIfNull(merge);
        string what = MergeName(merge);
        if (merge.LeftShardId == merge.RightShardId) throw Invalid(what, "a shard cannot be merged with itself.");
        if (merge.NewVersion <= merge.LeftExpectedVersion || merge.NewVersion <= merge.RightExpectedVersion)
            throw Invalid(what,
                $"NewVersion {merge.NewVersion} must be greater than both expected versions ({merge.LeftExpectedVersion}, {merge.RightExpectedVersion}).");
        if (merge.LeftExpectedVersion < 0 || merge.RightExpectedVersion < 0) throw Invalid(what, "An expected version is negative.");
        if (merge.KeyCount < 0) throw Invalid(what, $"KeyCount {merge.KeyCount} is negative.");
        CheckNodes(what, nameof(ShardMerge.Nodes), merge.Nodes);
    }

    /// <summary>Both stored shards must be at the merge's epochs and versions, and the right one must start where the left one ends.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/>; <see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckMergeAgainst(ShardMerge merge, long leftEpoch, long leftVersion, KeyRange leftRange,
        long rightEpoch, long rightVersion, KeyRange rightRange)
    {
        if (leftEpoch != merge.LeftEpoch || leftVersion != merge.LeftExpectedVersion)
            throw Conflict($"{MergeName(merge)}: left shard {merge.LeftShardId}", merge.LeftEpoch, merge.LeftExpectedVersion, leftEpoch, leftVersion);
        if (rightEpoch != merge.RightEpoch || rightVersion != merge.RightExpectedVersion)
            throw Conflict($"{MergeName(merge)}: right shard {merge.RightShardId}", merge.RightEpoch, merge.RightExpectedVersion, rightEpoch, rightVersion);
        if (leftRange.IsUnbounded || KeyRange.Compare(leftRange.End, rightRange.Start) != 0)
            throw Invalid(MergeName(merge),
                $"the shards are not adjacent in this order: the left one is {leftRange} and the right one {rightRange} (the right one must start where the left one ends).");
    }

    /// <summary>The key count the merge claims must be the rows of both shards together.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static void CheckMergeCount(ShardMerge merge, long leftRows, long rightRows)
    {
        if (leftRows + rightRows != merge.KeyCount)
            throw Invalid(MergeName(merge),
                $"KeyCount is {merge.KeyCount} but the shards hold {leftRows} + {rightRows} = {leftRows + rightRows} keys: the tree and the stored rows disagree.");
    }

    /// <summary>Every entry is a node (middle or leaf) with a known position, and no position is given twice.</summary>
    private static void CheckNodes(string what, string list, IReadOnlyList<SmtNodeEntry>? nodes)
    {
        if (nodes is null) throw Invalid(what, $"{list} must not be null (use an empty list for an empty tree).");
        HashSet<SmtPosition>? seen = nodes.Count > 1 ? new(nodes.Count) : null;
        for (int i = 0; i < nodes.Count; i++)
        {
            var kind = nodes[i].Node.Kind;
            if (kind is not (SmtNodeKind.Middle or SmtNodeKind.Leaf))
                throw Invalid(what, $"{list}[{i}] ({nodes[i].Hash}) is not a node (kind {(byte)kind}).");
            if (!nodes[i].Position.IsKnown)
                throw Invalid(what, $"{list}[{i}] ({nodes[i].Hash}) has no position: nodes are stored where they sit in the tree.");
            if (seen is not null && !seen.Add(nodes[i].Position))
                throw Invalid(what, $"{list}[{i}] ({nodes[i].Hash}) is at {nodes[i].Position}, like an earlier entry: a position holds one node.");
        }
    }

    /// <summary>Every position to empty is known.</summary>
    private static void CheckPositions(string what, string list, IReadOnlyList<SmtPosition> positions)
    {
        for (int i = 0; i < positions.Count; i++)
            if (!positions[i].IsKnown) throw Invalid(what, $"{list}[{i}] is SmtPosition.None: name the position to empty.");
    }

    private static string MergeName(ShardMerge merge) => $"Merge of shards {merge.LeftShardId} and {merge.RightShardId}";

    private static GridException Conflict(string what, long expectedEpoch, long expectedVersion, long storedEpoch, long storedVersion) =>
        new(GridErrorCode.Conflict, storedEpoch != expectedEpoch
            ? $"{what} refused: the shard's epoch is {storedEpoch} but the request carries {expectedEpoch} (ownership moved; this writer must stop)."
            : $"{what} refused: the shard is at version {storedVersion} but the request expects {expectedVersion}.");

    private static GridException Invalid(string what, string message) => GridException.InvalidArgument($"{what} refused: {message}");

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
