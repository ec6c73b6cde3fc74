using System.Numerics;
using System.Runtime.CompilerServices;

namespace Rustorium.Grid.Runtime.Serialization;

/// <summary>
/// Shared rules of the grid's binary encoding (see docs/protocol.md, "Value encoding"): varint sizes, zigzag,
/// the limits every reader applies, and the one exception type a malformed input produces.
/// </summary>
public static class GridWireFormat
{
    /// <summary>Most bytes a 64-bit varint takes (LEB128: 7 bits per byte).</summary>
    public const int MaxVarUInt64Bytes = 10;

    /// <summary>Most bytes a 32-bit varint takes.</summary>
    public const int MaxVarUInt32Bytes = 5;

    /// <summary>Bytes of a field element on the wire: canonical (&lt; p), little-endian.</summary>
    public const int FrBytes = 32;

    /// <summary>Encoded size of <paramref name="value"/> as an unsigned varint, in bytes (1..10).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int VarUInt64Size(ulong value) => Math.Max(1, (70 - BitOperations.LeadingZeroCount(value)) / 7);

    /// <summary>Encoded size of <paramref name="value"/> as an unsigned varint, in bytes (1..5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int VarUInt32Size(uint value) => VarUInt64Size(value);

    /// <summary>Maps a signed value to an unsigned one so that small magnitudes stay small: 0→0, -1→1, 1→2, -2→3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ZigZagEncode(long value) => (ulong)((value << 1) ^ (value >> 63));

    /// <summary>Inverse of <see cref="ZigZagEncode(long)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ZigZagDecode(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);

    /// <summary>32-bit zigzag.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint ZigZagEncode(int value) => (uint)((value << 1) ^ (value >> 31));

    /// <summary>Inverse of <see cref="ZigZagEncode(int)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ZigZagDecode(uint value) => (int)(value >> 1) ^ -(int)(value & 1);

    /// <summary>The error every malformed or truncated input produces: <see cref="GridErrorCode.ProtocolViolation"/>.</summary>
    public static GridException ProtocolViolation(string message) => new(GridErrorCode.ProtocolViolation, message);
}
