using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>A decoded frame header (docs/protocol.md, "Frames").</summary>
/// <param name="Length">Value of the length prefix: bytes that follow it (10 + payload length).</param>
/// <param name="Type">The frame type.</param>
/// <param name="Flags">Flag bits (none defined in 1.0).</param>
/// <param name="CorrelationId">The call this frame belongs to (0 for connection-level frames).</param>
public readonly record struct GridFrameHeader(int Length, GridFrameType Type, GridFrameFlags Flags, ulong CorrelationId)
{
    /// <summary>Bytes of payload after the header.</summary>
    public int PayloadLength => Length - GridProtocol.FrameOverhead;
}

/// <summary>
/// Encodes and decodes frame headers: <c>u32 LE length | u8 type | u8 flags | u64 LE correlation id | payload</c>.
/// The decoder checks the header as soon as its 14 bytes are there, so an absurd length or an unknown type
/// fails before any payload is awaited or buffered.
/// </summary>
public static class GridFrameCodec
{
    /// <summary>Writes a 14-byte header for a payload of <paramref name="payloadLength"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteHeader(Span<byte> destination, GridFrameType type, GridFrameFlags flags, ulong correlationId, int payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, GridProtocol.HeaderSize);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)(GridProtocol.FrameOverhead + payloadLength));
        destination[4] = (byte)type;
        destination[5] = (byte)flags;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[6..], correlationId);
    }

    /// <summary>True for the frame types protocol 1.0 defines.</summary>
    public static bool IsKnownType(GridFrameType type) => type is >= GridFrameType.Hello and <= GridFrameType.Pong;

    /// <summary>
    /// Decodes and validates a header from exactly <see cref="GridProtocol.HeaderSize"/> bytes.
    /// </summary>
    /// <param name="header">The 14 header bytes.</param>
    /// <param name="maxFrameSize">The largest length-prefix value accepted.</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/>: length below 10 or above
    /// <paramref name="maxFrameSize"/>, or an unknown frame type.</exception>
    public static GridFrameHeader ReadHeader(ReadOnlySpan<byte> header, int maxFrameSize)
    {
        if (header.Length < GridProtocol.HeaderSize)
            throw GridWireFormat.ProtocolViolation($"A frame header is {GridProtocol.HeaderSize} bytes; got {header.Length}.");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        CheckLength(length, maxFrameSize);
        var type = (GridFrameType)header[4];
        if (!IsKnownType(type))
            throw GridWireFormat.ProtocolViolation($"Unknown frame type {header[4]}.");
        return new GridFrameHeader((int)length, type, (GridFrameFlags)header[5], BinaryPrimitives.ReadUInt64LittleEndian(header[6..]));
    }

    private static void CheckLength(uint length, int maxFrameSize)
    {
        if (length < GridProtocol.FrameOverhead)
            throw GridWireFormat.ProtocolViolation(
                $"Frame length {length} is below the minimum of {GridProtocol.FrameOverhead} (type, flags and correlation id).");
        if (length > (uint)maxFrameSize)
            throw GridWireFormat.ProtocolViolation($"Frame length {length} exceeds the limit of {maxFrameSize} bytes.");
    }

    /// <summary>
    /// Takes one whole frame off the front of <paramref name="buffer"/>, if it is all there.
    /// </summary>
    /// <param name="buffer">Received bytes; on success, advanced past the frame.</param>
    /// <param name="maxFrameSize">The largest length-prefix value accepted.</param>
    /// <param name="header">The frame's header.</param>
    /// <param name="payload">The frame's payload, a slice of <paramref name="buffer"/>.</param>
    /// <returns>False if more bytes are needed (the buffer is then unchanged).</returns>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> as soon as the header is
    /// invalid (see <see cref="ReadHeader"/>), even if the payload has not arrived.</exception>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameSize, out GridFrameHeader header, out ReadOnlySequence<byte> payload)
    {
        header = default;
        payload = default;
        if (buffer.Length < GridProtocol.LengthPrefixSize) return false;

        // The length alone can already be refused: a peer that sends an absurd prefix and then stalls is cut off
        // at once rather than at its next 10 bytes.
        if (buffer.Length < GridProtocol.HeaderSize)
        {
            Span<byte> prefix = stackalloc byte[GridProtocol.LengthPrefixSize];
            buffer.Slice(0, GridProtocol.LengthPrefixSize).CopyTo(prefix);
            CheckLength(BinaryPrimitives.ReadUInt32LittleEndian(prefix), maxFrameSize);
            return false;
        }

        if (buffer.FirstSpan.Length >= GridProtocol.HeaderSize)
        {
            header = ReadHeader(buffer.FirstSpan, maxFrameSize);
        }
        else
        {
            Span<byte> tmp = stackalloc byte[GridProtocol.HeaderSize];
            buffer.Slice(0, GridProtocol.HeaderSize).CopyTo(tmp);
            header = ReadHeader(tmp, maxFrameSize);
        }

        long total = GridProtocol.LengthPrefixSize + (long)header.Length;
        if (buffer.Length < total) return false;
        payload = buffer.Slice(GridProtocol.HeaderSize, header.PayloadLength);
        buffer = buffer.Slice(total);
        return true;
    }
}
