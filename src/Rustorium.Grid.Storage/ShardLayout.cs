namespace Rustorium.Grid.Storage;

/// <summary>Checks that a set of key ranges is a valid shard layout: it covers the whole key space with no gap and no overlap (invariant 4).</summary>
public static class ShardLayout
{
    /// <summary>
    /// Returns <paramref name="ranges"/> sorted by start after checking that the first starts at the beginning of the
    /// key space (empty start), that each ends exactly where the next starts, and that the last is unbounded.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the first gap, overlap or
    /// missing end found (ranges in hex, e.g. <c>[40, 80)</c>).</exception>
    public static IReadOnlyList<KeyRange> Validate(IReadOnlyList<KeyRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        if (ranges.Count == 0) throw GridException.InvalidArgument("A shard layout needs at least one range; the whole key space must be covered.");
        var sorted = new KeyRange[ranges.Count];
        for (int i = 0; i < sorted.Length; i++)
            sorted[i] = ranges[i] ?? throw GridException.InvalidArgument($"Range {i} of the shard layout is null.");
        Array.Sort(sorted, static (a, b) => KeyRange.Compare(a.Start, b.Start));

        if (!sorted[0].Start.IsEmpty)
            throw GridException.InvalidArgument(
                $"The shard layout leaves a gap at the beginning of the key space: the first range is {sorted[0]}, which does not start at the empty key.");
        for (int i = 0; i + 1 < sorted.Length; i++)
        {
            var range = sorted[i];
            var next = sorted[i + 1];
            if (range.IsUnbounded)
                throw GridException.InvalidArgument($"The shard layout has an overlap: {range} is unbounded but {next} starts after it.");
            int c = KeyRange.Compare(range.End, next.Start);
            if (c < 0) throw GridException.InvalidArgument($"The shard layout has a gap between {range} and {next}: no range owns the keys in between.");
            if (c > 0) throw GridException.InvalidArgument($"The shard layout has an overlap: {range} and {next} both own the keys from {next.Start.ToHexLower()}.");
        }
        if (!sorted[^1].IsUnbounded)
            throw GridException.InvalidArgument(
                $"The shard layout leaves a gap at the end of the key space: the last range is {sorted[^1]}, which is not unbounded.");
        return sorted;
    }

    private static string ToHexLower(this ReadOnlySpan<byte> key) => key.IsEmpty ? "\"\"" : Convert.ToHexStringLower(key);
}
