using Microsoft.Extensions.Logging;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>Settings of a <see cref="GridServer"/>. Checked by <see cref="Validate"/> when the server starts.</summary>
public sealed record GridServerOptions
{
    /// <summary>This silo's name, sent in HelloAck (logs, latency simulation). 1..256 UTF-8 bytes. Default "silo".</summary>
    public string Name { get; init; } = "silo";

    /// <summary>The largest frame (length-prefix value) the server accepts after the handshake. 64 KiB..1 GiB. Default 16 MiB.</summary>
    public int MaxFrameSize { get; init; } = GridProtocol.DefaultMaxFrameSize;

    /// <summary>
    /// Requests of one connection that run at once. When reached, the server stops reading that connection until
    /// one finishes (TCP backpressure); other connections are unaffected. Default 1024.
    /// </summary>
    public int MaxConcurrentRequestsPerConnection { get; init; } = 1024;

    /// <summary>Open connections at most; further ones get an Error frame (<see cref="GridErrorCode.Unavailable"/>) and are closed. Default 10,000.</summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>A connection that has not sent a valid Hello within this time is closed. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A connection with no request in flight that sends nothing (not even a Ping) for this long is closed.
    /// Default 2 min (clients ping every 15 s by default); <see cref="Timeout.InfiniteTimeSpan"/> disables it.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Bytes per connection that may wait unsent before responses wait for the socket. At least 64 KiB. Default 32 MiB.</summary>
    public long MaxBufferedSendBytes { get; init; } = 32L * 1024 * 1024;

    /// <summary>Pending connections the OS queues before <c>accept</c>. Default 512.</summary>
    public int ListenBacklog { get; init; } = 512;

    /// <summary>Simulated one-way delay for frames the server sends, per client name; null (the default) for none.</summary>
    public ITransportLatency? Latency { get; init; }

    /// <summary>
    /// Called when a handler fails with an exception that is not a <see cref="GridException"/> (the client then
    /// gets <see cref="GridErrorCode.Internal"/> with a generic message; the details stay here). Must not throw.
    /// </summary>
    public Action<GridRequestContext, Exception>? HandlerFault { get; init; }

    /// <summary>
    /// Where the server logs: start and stop (Information), misbehaving connections (Warning), handler faults
    /// (Error, with the exception), connection life (Debug). Null (the default) logs nothing.
    /// </summary>
    public ILogger? Logger { get; init; }

    /// <summary>The defaults.</summary>
    public static GridServerOptions Default { get; } = new();

    /// <summary>Checks every setting.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the setting, its allowed range and the value given.</exception>
    public void Validate()
    {
        const string owner = nameof(GridServerOptions);
        TransportOptionChecks.PeerName(owner, nameof(Name), Name);
        TransportOptionChecks.FrameSize(owner, MaxFrameSize);
        if (MaxConcurrentRequestsPerConnection is < 1 or > 1_000_000)
            throw GridException.InvalidArgument($"{owner}.MaxConcurrentRequestsPerConnection must be 1..1000000; got {MaxConcurrentRequestsPerConnection}.");
        if (MaxConnections < 1)
            throw GridException.InvalidArgument($"{owner}.MaxConnections must be at least 1; got {MaxConnections}.");
        TransportOptionChecks.Positive(owner, nameof(HandshakeTimeout), HandshakeTimeout, allowInfinite: false);
        TransportOptionChecks.Positive(owner, nameof(IdleTimeout), IdleTimeout, allowInfinite: true);
        TransportOptionChecks.SendBuffer(owner, MaxBufferedSendBytes);
        if (ListenBacklog < 1)
            throw GridException.InvalidArgument($"{owner}.ListenBacklog must be at least 1; got {ListenBacklog}.");
    }
}
