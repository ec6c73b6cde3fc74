namespace Rustorium.Grid;

/// <summary>
/// Size limits enforced at the boundary (client, silo and store alike). Anything over a limit is refused
/// with <see cref="GridErrorCode.InvalidArgument"/> and nothing is stored.
/// </summary>
public sealed record GridLimits
{
    /// <summary>Longest key, in bytes. Default 1 KiB. Keys must also be non-empty.</summary>
    public int MaxKeyBytes { get; init; } = 1024;

    /// <summary>Largest value, in bytes. Default 1 MiB. Empty values are allowed.</summary>
    public int MaxValueBytes { get; init; } = 1024 * 1024;

    /// <summary>Most operations in one atomic batch. Default 10,000.</summary>
    public int MaxBatchOperations { get; init; } = 10_000;

    /// <summary>Most rows one scan page returns. Default 10,000.</summary>
    public int MaxScanLimit { get; init; } = 10_000;

    /// <summary>The defaults.</summary>
    public static GridLimits Default { get; } = new();

    /// <summary>Checks the limits themselves are sane.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the bad limit.</exception>
    public void Validate()
    {
        if (MaxKeyBytes is < 1 or > 64 * 1024) throw GridException.InvalidArgument($"MaxKeyBytes must be 1..65536; got {MaxKeyBytes}.");
        if (MaxValueBytes is < 0 or > 64 * 1024 * 1024) throw GridException.InvalidArgument($"MaxValueBytes must be 0..67108864; got {MaxValueBytes}.");
        if (MaxBatchOperations < 1) throw GridException.InvalidArgument($"MaxBatchOperations must be at least 1; got {MaxBatchOperations}.");
        if (MaxScanLimit < 1) throw GridException.InvalidArgument($"MaxScanLimit must be at least 1; got {MaxScanLimit}.");
    }

    /// <summary>Refuses an empty or oversized key.</summary>
    public void CheckKey(ReadOnlySpan<byte> key)
    {
        if (key.IsEmpty) throw GridException.InvalidArgument("Keys must not be empty.");
        if (key.Length > MaxKeyBytes) throw GridException.InvalidArgument($"Key of {key.Length} bytes exceeds the limit of {MaxKeyBytes} bytes.");
    }

    /// <summary>Refuses an oversized value.</summary>
    public void CheckValue(ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxValueBytes) throw GridException.InvalidArgument($"Value of {value.Length} bytes exceeds the limit of {MaxValueBytes} bytes.");
    }
}
