namespace Rustorium.Grid.Silo;

/// <summary>The layout a new store starts with: the key space split evenly on the first key byte.</summary>
public static class InitialShardLayout
{
    /// <summary>
    /// <paramref name="count"/> ranges: the i-th starts at the single byte ⌊256·i/count⌋ (the first at the empty key, so
    /// keys beginning with 00 and the empty prefix land in it) and the last is unbounded. 8 gives [, 20), [20, 40), …
    /// [e0, ∞). Keys are spread evenly when their first byte is (hashed or random keys); text keys crowd into a few
    /// shards until shards split.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not 1..256.</exception>
    public static IReadOnlyList<KeyRange> SplitOnFirstByte(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, GridSiloOptions.MaxInitialShards);
        var ranges = new KeyRange[count];
        byte[] start = [];
        for (int i = 0; i < count; i++)
        {
            byte[]? end = i + 1 < count ? [(byte)(256 * (i + 1) / count)] : null;
            ranges[i] = new KeyRange(start, end);
            start = end ?? [];
        }
        return ranges;
    }
}
