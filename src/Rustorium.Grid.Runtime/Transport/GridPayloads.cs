using System.Buffers;
using System.Text;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>
/// The payload of Hello and HelloAck: <c>magic "RGRD" | u16 LE version | u8 role | string name | varuint32 max frame size</c>,
/// followed by fields later minor versions append (a receiver ignores bytes after the fields it knows).
/// </summary>
/// <param name="Version">Sender's protocol version, <c>major &lt;&lt; 8 | minor</c>.</param>
/// <param name="Role">Sender's role.</param>
/// <param name="Name">Sender's name, at most <see cref="GridProtocol.MaxPeerNameBytes"/> UTF-8 bytes.</param>
/// <param name="MaxFrameSize">The largest frame (length-prefix value) the sender accepts.</param>
public readonly record struct GridHello(ushort Version, GridPeerRole Role, string Name, int MaxFrameSize)
{
    /// <summary>The major version (high byte of <see cref="Version"/>).</summary>
    public byte Major => (byte)(Version >> 8);

    /// <summary>The minor version (low byte of <see cref="Version"/>).</summary>
    public byte Minor => (byte)Version;

    /// <summary>Encodes the payload.</summary>
    public void Write(ref GridWriter writer)
    {
        writer.WriteRaw(GridProtocol.Magic);
        writer.WriteUInt16(Version);
        writer.WriteByte((byte)Role);
        writer.WriteString(Name);
        writer.WriteVarUInt32((uint)MaxFrameSize);
    }

    /// <summary>
    /// Decodes a payload and checks what makes the peer acceptable: the magic, the major version, and a
    /// plausible max frame size.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> with a message that says
    /// what is wrong (wrong magic, other major version, truncated).</exception>
    public static GridHello Read(ref GridReader reader)
    {
        Span<byte> magic = stackalloc byte[4];
        if (reader.Remaining < 4)
            throw GridWireFormat.ProtocolViolation("Hello is too short to hold the magic \"RGRD\"; the peer does not speak the grid protocol.");
        reader.ReadRaw(magic);
        if (!magic.SequenceEqual(GridProtocol.Magic))
            throw GridWireFormat.ProtocolViolation(
                $"Wrong magic 0x{Convert.ToHexString(magic)} (expected \"RGRD\"); the peer does not speak the grid protocol.");
        ushort version = reader.ReadUInt16();
        if (version >> 8 != GridProtocol.MajorVersion)
            throw GridWireFormat.ProtocolViolation(
                $"Protocol version {version >> 8}.{version & 0xFF} is not supported: this peer speaks {GridProtocol.MajorVersion}.x.");
        var role = (GridPeerRole)reader.ReadByte();
        string name = reader.ReadString(GridProtocol.MaxPeerNameBytes);
        uint maxFrame = reader.ReadVarUInt32();
        if (maxFrame < GridProtocol.MinMaxFrameSize || maxFrame > GridProtocol.MaxMaxFrameSize)
            throw GridWireFormat.ProtocolViolation(
                $"Max frame size {maxFrame} is outside {GridProtocol.MinMaxFrameSize}..{GridProtocol.MaxMaxFrameSize}.");
        // Fields appended by later minor versions are ignored.
        return new GridHello(version, role, name, (int)maxFrame);
    }
}

/// <summary>
/// The payload of an Error frame: <c>u16 LE error code | string message | presence u8 [ i64 LE shard id | string endpoint | i64 LE epoch ]</c>,
/// followed by fields later minor versions append (ignored by older receivers).
/// </summary>
public static class GridErrorPayload
{
    /// <summary>Encodes an error; messages longer than <see cref="GridProtocol.MaxErrorMessageBytes"/> UTF-8 bytes are truncated.</summary>
    public static void Write(ref GridWriter writer, GridErrorCode code, string message, OwnerHint? ownerHint)
    {
        writer.WriteUInt16((ushort)code);
        writer.WriteString(Truncate(message, GridProtocol.MaxErrorMessageBytes));
        writer.WritePresence(ownerHint is not null);
        if (ownerHint is not null)
        {
            writer.WriteInt64(ownerHint.ShardId);
            writer.WriteString(Truncate(ownerHint.Endpoint, GridProtocol.MaxEndpointBytes));
            writer.WriteInt64(ownerHint.Epoch);
        }
    }

    /// <summary>Encodes an error into a new pooled buffer (the caller disposes it).</summary>
    public static PooledBufferWriter Encode(GridErrorCode code, string message, OwnerHint? ownerHint)
    {
        var buffer = new PooledBufferWriter(64 + Math.Min(message.Length * 3, GridProtocol.MaxErrorMessageBytes));
        var writer = new GridWriter(buffer);
        Write(ref writer, code, message, ownerHint);
        writer.Commit();
        return buffer;
    }

    /// <summary>
    /// Decodes an error as the <see cref="GridException"/> to raise. A code this peer does not know becomes
    /// <see cref="GridErrorCode.Internal"/> with the number in the message.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> if the payload is malformed.</exception>
    public static GridException Read(ref GridReader reader)
    {
        ushort rawCode = reader.ReadUInt16();
        string message = reader.ReadString(GridProtocol.MaxErrorMessageBytes);
        OwnerHint? hint = null;
        if (reader.ReadPresence())
        {
            long shard = reader.ReadInt64();
            string endpoint = reader.ReadString(GridProtocol.MaxEndpointBytes);
            long epoch = reader.ReadInt64();
            hint = new OwnerHint(shard, endpoint, epoch);
        }
        var code = (GridErrorCode)rawCode;
        if (!Enum.IsDefined(code))
        {
            message = $"Unknown error code {rawCode} from the peer: {message}";
            code = GridErrorCode.Internal;
        }
        return new GridException(code, message) { OwnerHint = hint };
    }

    /// <summary>Cuts <paramref name="text"/> to at most <paramref name="maxBytes"/> UTF-8 bytes at a character boundary.</summary>
    internal static string Truncate(string text, int maxBytes)
    {
        if (text.Length * 3 <= maxBytes || Encoding.UTF8.GetByteCount(text) <= maxBytes) return text;
        int bytes = 0, i = 0;
        while (i < text.Length)
        {
            int step = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            int size = step == 2 ? 4 : text[i] < 0x80 ? 1 : text[i] < 0x800 ? 2 : 3;
            if (bytes + size > maxBytes - 3) break; // leave room for "…"
            bytes += size;
            i += step;
        }
        return string.Concat(text.AsSpan(0, i), "…");
    }
}

/// <summary>
/// The payload of a Request frame: <c>varuint32 deadline in milliseconds (0 = none) | opaque request body (the rest)</c>.
/// The body's encoding belongs to the layer above (grain calls).
/// </summary>
public static class GridRequestPayload
{
    /// <summary>Reads the deadline; the reader is left at the start of the body.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> if the deadline is malformed or above <see cref="GridProtocol.MaxDeadlineMilliseconds"/>.</exception>
    public static uint ReadDeadline(ref GridReader reader)
    {
        uint ms = reader.ReadVarUInt32();
        if (ms > GridProtocol.MaxDeadlineMilliseconds)
            throw GridWireFormat.ProtocolViolation($"Request deadline {ms} ms exceeds the maximum of {GridProtocol.MaxDeadlineMilliseconds} ms.");
        return ms;
    }

    /// <summary>The deadline to put on the wire for a call with this timeout: milliseconds rounded up, 0 for infinite.</summary>
    public static uint DeadlineFor(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan) return 0;
        double ms = Math.Ceiling(timeout.TotalMilliseconds);
        return ms <= 1 ? 1u : ms >= GridProtocol.MaxDeadlineMilliseconds ? GridProtocol.MaxDeadlineMilliseconds : (uint)ms;
    }

    /// <summary>Copies the rest of a request payload (the body) out of a sequence into a rented array.</summary>
    internal static byte[] RentBody(in ReadOnlySequence<byte> body, out int length)
    {
        length = (int)body.Length;
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        body.CopyTo(rented);
        return rented;
    }
}
