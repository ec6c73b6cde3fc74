using System.Text;
using Microsoft.Extensions.Logging;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>Settings of a client connection (<see cref="GridConnection"/>). Checked by <see cref="Validate"/> when connecting.</summary>
public sealed record GridConnectionOptions
{
    /// <summary>This client's name, sent in Hello (logs, latency simulation). 1..256 UTF-8 bytes. Default "client".</summary>
    public string PeerName { get; init; } = "client";

    /// <summary>The largest frame (length-prefix value) this side accepts, announced in Hello. 64 KiB..1 GiB. Default 16 MiB.</summary>
    public int MaxFrameSize { get; init; } = GridProtocol.DefaultMaxFrameSize;

    /// <summary>Time allowed for the TCP connect plus the Hello/HelloAck exchange. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often the connection checks liveness: when nothing has been received for half of it, a Ping is sent.
    /// Default 15 s; <see cref="Timeout.InfiniteTimeSpan"/> disables keepalive.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// With keepalive on: after this long without receiving anything the connection is declared dead and every
    /// pending call fails with <see cref="GridErrorCode.Unavailable"/>. Must exceed <see cref="KeepAliveInterval"/>. Default 45 s.
    /// </summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>Bytes that may wait unsent before callers wait for the socket (backpressure). At least 64 KiB. Default 32 MiB.</summary>
    public long MaxBufferedSendBytes { get; init; } = 32L * 1024 * 1024;

    /// <summary>Simulated one-way delay for frames this client sends; null (the default) for none.</summary>
    public ITransportLatency? Latency { get; init; }

    /// <summary>Where the connection logs its loss (Warning) and its close (Debug). Null (the default) logs nothing.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>The defaults.</summary>
    public static GridConnectionOptions Default { get; } = new();

    /// <summary>Checks every setting.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the setting, its allowed range and the value given.</exception>
    public void Validate()
    {
        TransportOptionChecks.PeerName(nameof(GridConnectionOptions), nameof(PeerName), PeerName);
        TransportOptionChecks.FrameSize(nameof(GridConnectionOptions), MaxFrameSize);
        TransportOptionChecks.Positive(nameof(GridConnectionOptions), nameof(ConnectTimeout), ConnectTimeout, allowInfinite: false);
        TransportOptionChecks.Positive(nameof(GridConnectionOptions), nameof(KeepAliveInterval), KeepAliveInterval, allowInfinite: true);
        if (KeepAliveInterval != Timeout.InfiniteTimeSpan)
        {
            TransportOptionChecks.Positive(nameof(GridConnectionOptions), nameof(KeepAliveTimeout), KeepAliveTimeout, allowInfinite: false);
            if (KeepAliveTimeout <= KeepAliveInterval)
                throw GridException.InvalidArgument(
                    $"GridConnectionOptions.KeepAliveTimeout ({KeepAliveTimeout}) must exceed KeepAliveInterval ({KeepAliveInterval}).");
        }
        TransportOptionChecks.SendBuffer(nameof(GridConnectionOptions), MaxBufferedSendBytes);
    }
}

/// <summary>Checks shared by the client and server options, with messages that name the option.</summary>
internal static class TransportOptionChecks
{
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(int.MaxValue);

    public static void PeerName(string owner, string option, string? name)
    {
        if (string.IsNullOrEmpty(name))
            throw GridException.InvalidArgument($"{owner}.{option} must not be empty.");
        int bytes;
        try
        {
            bytes = new UTF8Encoding(false, true).GetByteCount(name);
        }
        catch (EncoderFallbackException)
        {
            throw GridException.InvalidArgument($"{owner}.{option} holds a lone UTF-16 surrogate.");
        }
        if (bytes > GridProtocol.MaxPeerNameBytes)
            throw GridException.InvalidArgument($"{owner}.{option} must be at most {GridProtocol.MaxPeerNameBytes} UTF-8 bytes; got {bytes}.");
    }

    public static void FrameSize(string owner, int value)
    {
        if (value < GridProtocol.MinMaxFrameSize || value > GridProtocol.MaxMaxFrameSize)
            throw GridException.InvalidArgument(
                $"{owner}.MaxFrameSize must be between {GridProtocol.MinMaxFrameSize} (64 KiB) and {GridProtocol.MaxMaxFrameSize} (1 GiB) bytes; got {value}.");
    }

    public static void Positive(string owner, string option, TimeSpan value, bool allowInfinite)
    {
        if (allowInfinite && value == Timeout.InfiniteTimeSpan) return;
        if (value <= TimeSpan.Zero || value > MaxTimer)
            throw GridException.InvalidArgument(
                $"{owner}.{option} must be positive and at most {MaxTimer}{(allowInfinite ? " (or Timeout.InfiniteTimeSpan to disable)" : "")}; got {value}.");
    }

    public static void SendBuffer(string owner, long value)
    {
        if (value < 64 * 1024)
            throw GridException.InvalidArgument($"{owner}.MaxBufferedSendBytes must be at least 65536 bytes; got {value}.");
    }
}
