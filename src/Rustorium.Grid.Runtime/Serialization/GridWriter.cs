using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using Rustorium.Grid.Crypto;

namespace Rustorium.Grid.Runtime.Serialization;

/// <summary>
/// Writes the grid's binary encoding (docs/protocol.md, "Value encoding") into an <see cref="IBufferWriter{T}"/>.
/// Allocation-free: values go straight into the output's spans.
/// </summary>
/// <remarks>
/// Bytes are buffered in the span last obtained from the output; call <see cref="Commit"/> when done (and before
/// anything else touches the output), otherwise the tail is lost. A <c>ref struct</c>: pass it by <c>ref</c>.
/// </remarks>
public ref struct GridWriter
{
    // Strict: a lone surrogate cannot be encoded as UTF-8, and silently replacing it would change the value.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _buffered;
    private long _committed;

    /// <summary>Starts writing at the output's current position.</summary>
    public GridWriter(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _span = default;
        _buffered = 0;
        _committed = 0;
    }

    /// <summary>Bytes written through this writer so far (committed or not).</summary>
    public readonly long BytesWritten => _committed + _buffered;

    /// <summary>Advances the output past everything written so far. Safe to call more than once.</summary>
    public void Commit()
    {
        if (_buffered > 0)
        {
            _output.Advance(_buffered);
            _committed += _buffered;
            _buffered = 0;
        }
        _span = default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int count)
    {
        if (_span.Length - _buffered < count) Grow(count);
        return _span.Slice(_buffered, count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int count)
    {
        Commit();
        _span = _output.GetSpan(count);
        if (_span.Length < count)
            throw new InvalidOperationException($"The output returned a span of {_span.Length} bytes for a request of {count}.");
    }

    /// <summary>One raw byte.</summary>
    public void WriteByte(byte value)
    {
        Reserve(1)[0] = value;
        _buffered += 1;
    }

    /// <summary>0x00 for false, 0x01 for true.</summary>
    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    /// <summary>2 bytes little-endian.</summary>
    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(Reserve(2), value);
        _buffered += 2;
    }

    /// <summary>4 bytes little-endian.</summary>
    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), value);
        _buffered += 4;
    }

    /// <summary>8 bytes little-endian.</summary>
    public void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(Reserve(8), value);
        _buffered += 8;
    }

    /// <summary>2 bytes little-endian, two's complement.</summary>
    public void WriteInt16(short value) => WriteUInt16((ushort)value);

    /// <summary>4 bytes little-endian, two's complement.</summary>
    public void WriteInt32(int value) => WriteUInt32((uint)value);

    /// <summary>8 bytes little-endian, two's complement.</summary>
    public void WriteInt64(long value) => WriteUInt64((ulong)value);

    /// <summary>Unsigned LEB128 varint, minimal form (1..10 bytes).</summary>
    public void WriteVarUInt64(ulong value)
    {
        var span = Reserve(GridWireFormat.MaxVarUInt64Bytes);
        int i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[i++] = (byte)value;
        _buffered += i;
    }

    /// <summary>Unsigned LEB128 varint, minimal form (1..5 bytes).</summary>
    public void WriteVarUInt32(uint value) => WriteVarUInt64(value);

    /// <summary>Zigzag then varint (small magnitudes of either sign stay short).</summary>
    public void WriteVarInt64(long value) => WriteVarUInt64(GridWireFormat.ZigZagEncode(value));

    /// <summary>Zigzag then varint.</summary>
    public void WriteVarInt32(int value) => WriteVarUInt32(GridWireFormat.ZigZagEncode(value));

    /// <summary>The bytes as they are, with no length prefix (fixed-size fields).</summary>
    public void WriteRaw(ReadOnlySpan<byte> value)
    {
        // Chunked so a large value never needs one large contiguous span from the output.
        while (!value.IsEmpty)
        {
            if (_span.Length - _buffered == 0) Grow(Math.Min(value.Length, 4096));
            int n = Math.Min(value.Length, _span.Length - _buffered);
            value[..n].CopyTo(_span[_buffered..]);
            _buffered += n;
            value = value[n..];
        }
    }

    /// <summary>Length (varint) then the bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteVarUInt32((uint)value.Length);
        WriteRaw(value);
    }

    /// <summary>UTF-8 byte length (varint) then the UTF-8 bytes.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the text holds a lone surrogate (not encodable as UTF-8).</exception>
    public void WriteString(ReadOnlySpan<char> value)
    {
        int count;
        try
        {
            count = StrictUtf8.GetByteCount(value);
        }
        catch (EncoderFallbackException ex)
        {
            throw new GridException(GridErrorCode.InvalidArgument, "The text holds a lone UTF-16 surrogate and cannot be encoded as UTF-8.", ex);
        }

        WriteVarUInt32((uint)count);
        if (count <= 16 * 1024)
        {
            StrictUtf8.GetBytes(value, Reserve(count));
            _buffered += count;
            return;
        }

        byte[] rented = ArrayPool<byte>.Shared.Rent(count);
        try
        {
            int written = StrictUtf8.GetBytes(value, rented);
            WriteRaw(rented.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>A field element: 32 bytes, canonical value, little-endian.</summary>
    public void WriteFr(in Fr value)
    {
        value.WriteLittleEndian(Reserve(GridWireFormat.FrBytes));
        _buffered += GridWireFormat.FrBytes;
    }

    /// <summary>The presence marker of an optional value: 0x00 absent (nothing follows), 0x01 present (the value follows).</summary>
    public void WritePresence(bool present) => WriteByte(present ? (byte)1 : (byte)0);

    /// <summary>Presence marker, then (if not null) length-prefixed bytes.</summary>
    public void WriteOptionalBytes(byte[]? value)
    {
        WritePresence(value is not null);
        if (value is not null) WriteBytes(value);
    }

    /// <summary>Presence marker, then (if not null) a length-prefixed UTF-8 string.</summary>
    public void WriteOptionalString(string? value)
    {
        WritePresence(value is not null);
        if (value is not null) WriteString(value);
    }

    /// <summary>The element count of an array (varint); the elements follow, each in its own encoding.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is negative.</exception>
    public void WriteCount(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        WriteVarUInt32((uint)count);
    }
}
