namespace Rustorium.Grid;

/// <summary>
/// A contiguous range of keys [Start, End) in unsigned lexicographic byte order. An empty
/// <see cref="Start"/> is the beginning of the key space; a null <see cref="End"/> is its end (unbounded).
/// </summary>
/// <remarks>Immutable: the byte arrays are copied in and never handed out.</remarks>
public sealed class KeyRange : IEquatable<KeyRange>
{
    private readonly byte[] _start;
    private readonly byte[]? _end;

    /// <summary>The whole key space.</summary>
    public static KeyRange All { get; } = new(ReadOnlySpan<byte>.Empty, null);

    /// <summary>Creates [start, end); <paramref name="end"/> null means unbounded.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if end ≤ start.</exception>
    public KeyRange(ReadOnlySpan<byte> start, byte[]? end)
    {
        if (end is not null && Compare(end, start) <= 0)
            throw GridException.InvalidArgument($"Key range end {Format(end)} must be after start {Format(start)}.");
        _start = start.ToArray();
        _end = end is null ? null : (byte[])end.Clone();
    }

    /// <summary>Inclusive lower bound.</summary>
    public ReadOnlySpan<byte> Start => _start;

    /// <summary>True if the range extends to the end of the key space.</summary>
    public bool IsUnbounded => _end is null;

    /// <summary>Exclusive upper bound; empty when <see cref="IsUnbounded"/>.</summary>
    public ReadOnlySpan<byte> End => _end;

    /// <summary>True if <paramref name="key"/> is in [Start, End).</summary>
    public bool Contains(ReadOnlySpan<byte> key) =>
        Compare(key, _start) >= 0 && (_end is null || Compare(key, _end) < 0);

    /// <summary>Unsigned lexicographic comparison (a proper prefix sorts first).</summary>
    public static int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.SequenceCompareTo(b);

    /// <summary>Hex, with "∞" for an unbounded end, e.g. [40, 80) or [c0, ∞).</summary>
    public override string ToString() => $"[{Format(_start)}, {(_end is null ? "∞" : Format(_end))})";

    private static string Format(ReadOnlySpan<byte> key) => key.IsEmpty ? "\"\"" : Convert.ToHexStringLower(key);

    /// <inheritdoc />
    public bool Equals(KeyRange? other) =>
        other is not null && _start.AsSpan().SequenceEqual(other._start)
        && (_end is null ? other._end is null : other._end is not null && _end.AsSpan().SequenceEqual(other._end));

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as KeyRange);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(_start);
        h.Add(_end is null);
        if (_end is not null) h.AddBytes(_end);
        return h.ToHashCode();
    }
}
