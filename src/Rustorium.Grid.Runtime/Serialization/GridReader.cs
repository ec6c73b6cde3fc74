using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;
using Rustorium.Grid.Crypto;

namespace Rustorium.Grid.Runtime.Serialization;

/// <summary>
/// Reads the grid's binary encoding (docs/protocol.md, "Value encoding") from a span or a (multi-segment)
/// sequence. Every read is bounds-checked; lengths and counts are checked against their limit and against the
/// bytes that remain <em>before</em> anything is allocated.
/// </summary>
/// <remarks>
/// Failure mode, for every method: truncated, non-canonical or invalid input throws <see cref="GridException"/>
/// with <see cref="GridErrorCode.ProtocolViolation"/> and a message naming the field and the offset; never
/// <see cref="IndexOutOfRangeException"/> or <see cref="OutOfMemoryException"/>. A <c>ref struct</c>: pass it by <c>ref</c>.
/// </remarks>
public ref struct GridReader
{
    private ReadOnlySpan<byte> _span;          // current segment
    private int _index;                        // position inside _span
    private readonly ReadOnlySequence<byte> _sequence;
    private SequencePosition _next;            // where the segment after _span starts
    private readonly bool _multiSegment;
    private long _consumedBeforeSpan;
    private readonly long _length;

    /// <summary>Reads from a contiguous span.</summary>
    public GridReader(ReadOnlySpan<byte> input)
    {
        _span = input;
        _index = 0;
        _sequence = default;
        _next = default;
        _multiSegment = false;
        _consumedBeforeSpan = 0;
        _length = input.Length;
    }

    /// <summary>Reads from a sequence; values may straddle segment boundaries.</summary>
    public GridReader(ReadOnlySequence<byte> input)
    {
        _sequence = input;
        _length = input.Length;
        _index = 0;
        _consumedBeforeSpan = 0;
        if (input.IsSingleSegment)
        {
            _span = input.FirstSpan;
            _next = default;
            _multiSegment = false;
        }
        else
        {
            _next = input.Start;
            input.TryGet(ref _next, out var first, advance: true);
            _span = first.Span;
            _multiSegment = true;
        }
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly long Position => _consumedBeforeSpan + _index;

    /// <summary>Bytes left.</summary>
    public readonly long Remaining => _length - Position;

    /// <summary>True when every byte has been consumed.</summary>
    public readonly bool End => Remaining == 0;

    /// <summary>Requires that nothing is left: trailing bytes are a protocol violation.</summary>
    public readonly void ExpectEnd()
    {
        if (Remaining != 0)
            throw GridWireFormat.ProtocolViolation($"{Remaining} unexpected trailing byte(s) at offset {Position}.");
    }

    // ------------------------------------------------------------------ segment plumbing

    private bool MoveToNextSegment()
    {
        if (!_multiSegment) return false;
        while (_sequence.TryGet(ref _next, out var memory, advance: true))
        {
            if (memory.IsEmpty) continue;
            _consumedBeforeSpan += _span.Length;
            _span = memory.Span;
            _index = 0;
            return true;
        }
        return false;
    }

    private readonly GridException Truncated(long needed, string what) =>
        GridWireFormat.ProtocolViolation(
            $"Truncated input: {what} needs {needed} byte(s) at offset {Position}, but only {Remaining} remain.");

    /// <summary>Ensures <paramref name="count"/> bytes remain, else throws a truncation error naming <paramref name="what"/>.</summary>
    private readonly void Need(long count, string what)
    {
        if (Remaining < count) throw Truncated(count, what);
    }

    /// <summary>Copies exactly destination.Length bytes (already checked to remain) and advances.</summary>
    private void CopyUnchecked(scoped Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            if (_index == _span.Length && !MoveToNextSegment())
                throw Truncated(destination.Length, "a value"); // unreachable after Need(); defensive
            int n = Math.Min(destination.Length, _span.Length - _index);
            _span.Slice(_index, n).CopyTo(destination);
            _index += n;
            destination = destination[n..];
        }
    }

    // ------------------------------------------------------------------ fixed width

    /// <summary>One raw byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte ReadByte()
    {
        if (_index < _span.Length) return _span[_index++];
        return ReadByteSlow("a byte");
    }

    private byte ReadByteSlow(string what)
    {
        Need(1, what);
        while (_index == _span.Length)
        {
            if (!MoveToNextSegment()) throw Truncated(1, what); // unreachable after Need(); defensive
        }
        return _span[_index++];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte ReadByte(string what)
    {
        if (_index < _span.Length) return _span[_index++];
        return ReadByteSlow(what);
    }

    /// <summary>0x00 → false, 0x01 → true; any other byte is a protocol violation.</summary>
    public bool ReadBool()
    {
        byte b = ReadByte("a bool");
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw GridWireFormat.ProtocolViolation($"Invalid bool 0x{b:x2} at offset {Position - 1}: must be 0x00 or 0x01."),
        };
    }

    /// <summary>2 bytes little-endian.</summary>
    public ushort ReadUInt16() => ReadFixed<ushort>("a u16");

    /// <summary>4 bytes little-endian.</summary>
    public uint ReadUInt32() => ReadFixed<uint>("a u32");

    /// <summary>8 bytes little-endian.</summary>
    public ulong ReadUInt64() => ReadFixed<ulong>("a u64");

    /// <summary>A fixed-width little-endian unsigned integer: straight from the current segment when it holds all of it, else gathered.</summary>
    private T ReadFixed<T>(string what) where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T>
    {
        int size = Unsafe.SizeOf<T>();
        if (_span.Length - _index >= size)
        {
            var v = T.ReadLittleEndian(_span.Slice(_index, size), isUnsigned: true);
            _index += size;
            return v;
        }
        Span<byte> tmp = stackalloc byte[8];
        Need(size, what);
        CopyUnchecked(tmp[..size]);
        return T.ReadLittleEndian(tmp[..size], isUnsigned: true);
    }

    /// <summary>2 bytes little-endian, two's complement.</summary>
    public short ReadInt16() => (short)ReadUInt16();

    /// <summary>4 bytes little-endian, two's complement.</summary>
    public int ReadInt32() => (int)ReadUInt32();

    /// <summary>8 bytes little-endian, two's complement.</summary>
    public long ReadInt64() => (long)ReadUInt64();

    // ------------------------------------------------------------------ varints

    /// <summary>Unsigned LEB128, at most 10 bytes, minimal form only (no redundant trailing 0x80/0x00 groups).</summary>
    public ulong ReadVarUInt64()
    {
        ulong result = 0;
        for (int i = 0, shift = 0; i < GridWireFormat.MaxVarUInt64Bytes; i++, shift += 7)
        {
            byte b = ReadByte("a varint");
            if (i == GridWireFormat.MaxVarUInt64Bytes - 1 && b > 1)
                throw GridWireFormat.ProtocolViolation($"Varint ending at offset {Position - 1} overflows 64 bits.");
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                    throw GridWireFormat.ProtocolViolation($"Non-minimal varint ending at offset {Position - 1}.");
                return result;
            }
        }
        throw GridWireFormat.ProtocolViolation($"Varint ending at offset {Position - 1} overflows 64 bits.");
    }

    /// <summary>Unsigned LEB128, at most 5 bytes, value below 2^32, minimal form only.</summary>
    public uint ReadVarUInt32()
    {
        uint result = 0;
        for (int i = 0, shift = 0; i < GridWireFormat.MaxVarUInt32Bytes; i++, shift += 7)
        {
            byte b = ReadByte("a varint");
            if (i == GridWireFormat.MaxVarUInt32Bytes - 1 && b > 0x0F)
                throw GridWireFormat.ProtocolViolation($"Varint ending at offset {Position - 1} overflows 32 bits.");
            result |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                    throw GridWireFormat.ProtocolViolation($"Non-minimal varint ending at offset {Position - 1}.");
                return result;
            }
        }
        throw GridWireFormat.ProtocolViolation($"Varint ending at offset {Position - 1} overflows 32 bits.");
    }

    /// <summary>Zigzag varint, 64-bit.</summary>
    public long ReadVarInt64() => GridWireFormat.ZigZagDecode(ReadVarUInt64());

    /// <summary>Zigzag varint, 32-bit.</summary>
    public int ReadVarInt32() => GridWireFormat.ZigZagDecode(ReadVarUInt32());

    // ------------------------------------------------------------------ lengths, bytes, strings

    /// <summary>
    /// A length prefix, checked against <paramref name="maxLength"/> and against the bytes that remain, so the
    /// caller can allocate <c>length</c> bytes safely.
    /// </summary>
    public int ReadLength(int maxLength, string what = "a byte string")
    {
        long start = Position;
        uint length = ReadVarUInt32();
        if (length > (uint)maxLength)
            throw GridWireFormat.ProtocolViolation($"Length {length} of {what} at offset {start} exceeds the limit of {maxLength} bytes.");
        Need(length, what);
        return (int)length;
    }

    /// <summary>Length-prefixed bytes, at most <paramref name="maxLength"/>; a new array.</summary>
    public byte[] ReadBytes(int maxLength)
    {
        int length = ReadLength(maxLength);
        if (length == 0) return [];
        var result = GC.AllocateUninitializedArray<byte>(length);
        CopyUnchecked(result);
        return result;
    }

    /// <summary>
    /// Length-prefixed bytes, at most <paramref name="maxLength"/>, without copying when they lie in one
    /// segment of the input (the span then points into the input); straddling bytes are copied into a new array.
    /// </summary>
    public ReadOnlySpan<byte> ReadBytesSpan(int maxLength)
    {
        int length = ReadLength(maxLength);
        if (_span.Length - _index >= length)
        {
            var s = _span.Slice(_index, length);
            _index += length;
            return s;
        }
        var copy = GC.AllocateUninitializedArray<byte>(length);
        CopyUnchecked(copy);
        return copy;
    }

    /// <summary>Exactly destination.Length raw bytes (a fixed-size field, no length prefix).</summary>
    public void ReadRaw(scoped Span<byte> destination)
    {
        Need(destination.Length, "a fixed-size field");
        CopyUnchecked(destination);
    }

    /// <summary>Skips <paramref name="count"/> bytes.</summary>
    public void Skip(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Need(count, "skipped bytes");
        while (count > 0)
        {
            if (_index == _span.Length && !MoveToNextSegment()) throw Truncated(count, "skipped bytes");
            int n = (int)Math.Min(count, _span.Length - _index);
            _index += n;
            count -= n;
        }
    }

    /// <summary>Length-prefixed UTF-8 text of at most <paramref name="maxBytes"/> bytes; invalid UTF-8 is a protocol violation.</summary>
    public string ReadString(int maxBytes)
    {
        long start = Position;
        int length = ReadLength(maxBytes, "a string");
        if (length == 0) return string.Empty;

        if (_span.Length - _index >= length)
        {
            var direct = _span.Slice(_index, length);
            if (!Utf8.IsValid(direct))
                throw GridWireFormat.ProtocolViolation($"The string at offset {start} is not valid UTF-8.");
            _index += length;
            return Encoding.UTF8.GetString(direct);
        }

        // Straddles segments: gather it first (ReadLength has checked that the bytes are there).
        byte[]? rented = null;
        Span<byte> scratch = length <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            var bytes = scratch[..length];
            CopyUnchecked(bytes);
            if (!Utf8.IsValid(bytes))
                throw GridWireFormat.ProtocolViolation($"The string at offset {start} is not valid UTF-8.");
            return Encoding.UTF8.GetString(bytes);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>A field element: 32 bytes little-endian, which must be canonical (&lt; p).</summary>
    public Fr ReadFr()
    {
        long start = Position;
        Span<byte> bytes = stackalloc byte[GridWireFormat.FrBytes];
        Need(GridWireFormat.FrBytes, "a field element");
        CopyUnchecked(bytes);
        if (!Fr.TryFromBytesLittleEndian(bytes, out var value))
            throw GridWireFormat.ProtocolViolation($"The field element at offset {start} is not canonical (not below the BN254 scalar modulus).");
        return value;
    }

    // ------------------------------------------------------------------ optionals and arrays

    /// <summary>The presence marker of an optional value: 0x00 → absent, 0x01 → present; anything else is a violation.</summary>
    public bool ReadPresence()
    {
        byte b = ReadByte("a presence marker");
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw GridWireFormat.ProtocolViolation($"Invalid presence marker 0x{b:x2} at offset {Position - 1}: must be 0x00 or 0x01."),
        };
    }

    /// <summary>Presence marker, then (if present) length-prefixed bytes.</summary>
    public byte[]? ReadOptionalBytes(int maxLength) => ReadPresence() ? ReadBytes(maxLength) : null;

    /// <summary>Presence marker, then (if present) a length-prefixed UTF-8 string.</summary>
    public string? ReadOptionalString(int maxBytes) => ReadPresence() ? ReadString(maxBytes) : null;

    /// <summary>
    /// An array's element count, at most <paramref name="maxCount"/>, and small enough that
    /// <c>count × minElementBytes</c> bytes remain, so a hostile count cannot make the caller pre-allocate.
    /// </summary>
    /// <param name="maxCount">The schema's limit for this array.</param>
    /// <param name="minElementBytes">The fewest bytes one element can encode to (1 for most; 32 for <see cref="Fr"/>); 0 disables the remaining-bytes check.</param>
    public int ReadCount(int maxCount, int minElementBytes = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minElementBytes);
        long start = Position;
        uint count = ReadVarUInt32();
        if (count > (uint)maxCount)
            throw GridWireFormat.ProtocolViolation($"Element count {count} at offset {start} exceeds the limit of {maxCount}.");
        if ((long)count * minElementBytes > Remaining)
            throw GridWireFormat.ProtocolViolation(
                $"Element count {count} at offset {start} needs at least {(long)count * minElementBytes} bytes, but only {Remaining} remain.");
        return (int)count;
    }
}
