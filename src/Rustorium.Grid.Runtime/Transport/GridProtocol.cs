namespace Rustorium.Grid.Runtime.Transport;

/// <summary>Constants of the grid's wire protocol; every byte is described in docs/protocol.md.</summary>
public static class GridProtocol
{
    /// <summary>The first four bytes of every Hello/HelloAck payload: ASCII "RGRD".</summary>
    public static ReadOnlySpan<byte> Magic => "RGRD"u8;

    /// <summary>Major version: peers with a different major refuse each other.</summary>
    public const byte MajorVersion = 1;

    /// <summary>Minor version: additions a peer of the same major can ignore (appended payload fields).</summary>
    public const byte MinorVersion = 0;

    /// <summary>The version as carried in Hello: <c>major &lt;&lt; 8 | minor</c> (1.0 = 0x0100).</summary>
    public const ushort Version = (MajorVersion << 8) | MinorVersion;

    /// <summary>Bytes of the length prefix (u32 little-endian) that starts every frame.</summary>
    public const int LengthPrefixSize = 4;

    /// <summary>Bytes after the length prefix that every frame has: type (u8), flags (u8), correlation id (u64).</summary>
    public const int FrameOverhead = 10;

    /// <summary>Bytes of the whole frame header: length prefix + type + flags + correlation id.</summary>
    public const int HeaderSize = LengthPrefixSize + FrameOverhead;

    /// <summary>Default of the largest frame a peer accepts (value of the length prefix): 16 MiB.</summary>
    public const int DefaultMaxFrameSize = 16 * 1024 * 1024;

    /// <summary>
    /// The smallest max frame size a peer may announce: 64 KiB, so that every Error frame (a message of at most
    /// <see cref="MaxErrorMessageBytes"/> and an endpoint of at most <see cref="MaxEndpointBytes"/>) always fits.
    /// </summary>
    public const int MinMaxFrameSize = 64 * 1024;

    /// <summary>The largest configurable max frame size: 1 GiB.</summary>
    public const int MaxMaxFrameSize = 1024 * 1024 * 1024;

    /// <summary>
    /// The largest frame a server accepts before the peer's Hello: Hello is small, and an unauthenticated peer
    /// must not make the server buffer megabytes.
    /// </summary>
    public const int MaxPreHandshakeFrameSize = 4 * 1024;

    /// <summary>Longest peer name in Hello, in UTF-8 bytes.</summary>
    public const int MaxPeerNameBytes = 256;

    /// <summary>Longest error message on the wire, in UTF-8 bytes (senders truncate).</summary>
    public const int MaxErrorMessageBytes = 16 * 1024;

    /// <summary>Longest owner endpoint in an error's owner hint, in UTF-8 bytes.</summary>
    public const int MaxEndpointBytes = 1024;

    /// <summary>Largest request deadline, in milliseconds (about 24.8 days; <see cref="int.MaxValue"/>).</summary>
    public const uint MaxDeadlineMilliseconds = int.MaxValue;
}

/// <summary>What a frame is. Wire values are explicit and append-only: never renumber, never reuse.</summary>
public enum GridFrameType : byte
{
    /// <summary>Client → server, first frame: magic, version, role, name, max frame size.</summary>
    Hello = 1,

    /// <summary>Server → client, answer to an accepted Hello: the same fields for the server.</summary>
    HelloAck = 2,

    /// <summary>A call: deadline (varint ms, 0 = none) then the opaque request body.</summary>
    Request = 3,

    /// <summary>A call's successful answer: the opaque response body.</summary>
    Response = 4,

    /// <summary>A call's failure (correlation id of the call) or a connection-level refusal (correlation id 0).</summary>
    Error = 5,

    /// <summary>The caller gave up on the call with this correlation id.</summary>
    Cancel = 6,

    /// <summary>Keepalive / round-trip probe; answered by <see cref="Pong"/> with the same correlation id.</summary>
    Ping = 7,

    /// <summary>Answer to <see cref="Ping"/>.</summary>
    Pong = 8,
}

/// <summary>Frame flag bits. None are defined in protocol 1.0; receivers ignore bits they do not know.</summary>
[Flags]
public enum GridFrameFlags : byte
{
    /// <summary>No flags.</summary>
    None = 0,
}

/// <summary>What a peer is. Wire values are explicit and append-only.</summary>
public enum GridPeerRole : byte
{
    /// <summary>A client library or tool.</summary>
    Client = 1,

    /// <summary>A silo (server process of the grid).</summary>
    Silo = 2,
}

/// <summary>Who is at the other end of a connection, as it introduced itself in Hello/HelloAck.</summary>
/// <param name="Name">The peer's self-declared name (e.g. "eu-west/silo-1"); not authenticated.</param>
/// <param name="Role">Client or silo.</param>
/// <param name="ProtocolVersion">The version the connection speaks: the lower of the two peers' versions (same major).</param>
/// <param name="MaxFrameSize">The largest frame (length-prefix value) the peer accepts.</param>
/// <param name="RemoteEndPoint">The peer's socket address.</param>
public sealed record GridPeerInfo(string Name, GridPeerRole Role, ushort ProtocolVersion, int MaxFrameSize, System.Net.EndPoint? RemoteEndPoint);
