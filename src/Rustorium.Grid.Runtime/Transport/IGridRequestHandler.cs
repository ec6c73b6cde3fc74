using System.Buffers;
using System.Diagnostics;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>
/// What a <see cref="GridServer"/> calls for every Request frame. The grain layer implements it: it decodes the
/// target grain, method and arguments from the payload and writes the encoded result to
/// <see cref="GridRequestContext.Response"/>.
/// </summary>
public interface IGridRequestHandler
{
    /// <summary>
    /// Handles one request. Runs concurrently with the connection's other requests (up to
    /// <see cref="GridServerOptions.MaxConcurrentRequestsPerConnection"/>).
    /// </summary>
    /// <param name="payload">The opaque request body; valid only until the returned task completes.</param>
    /// <param name="context">Who is calling, the deadline, and the buffer for the response body.</param>
    /// <param name="cancellationToken">Fires when the caller cancels (Cancel frame), the deadline passes, the
    /// connection drops, or the server stops without waiting any longer.</param>
    /// <returns>Completion: success sends whatever was written to <see cref="GridRequestContext.Response"/>; a
    /// <see cref="GridException"/> is sent with its code, message and owner hint; any other exception is sent
    /// as <see cref="GridErrorCode.Internal"/> with a generic message (details go to
    /// <see cref="GridServerOptions.HandlerFault"/>, never onto the wire).</returns>
    ValueTask HandleAsync(ReadOnlyMemory<byte> payload, GridRequestContext context, CancellationToken cancellationToken);
}

/// <summary>One request as the handler sees it: the caller, the deadline and the response buffer.</summary>
public sealed class GridRequestContext
{
    private PooledBufferWriter? _response;

    internal GridRequestContext(GridPeerInfo peer, ulong correlationId, uint deadlineMilliseconds)
    {
        Peer = peer;
        CorrelationId = correlationId;
        ReceivedTimestamp = Stopwatch.GetTimestamp();
        Timeout = deadlineMilliseconds == 0 ? null : TimeSpan.FromMilliseconds(deadlineMilliseconds);
    }

    /// <summary>The connection's peer (name and role from its Hello, socket address).</summary>
    public GridPeerInfo Peer { get; }

    /// <summary>The call's correlation id on its connection.</summary>
    public ulong CorrelationId { get; }

    /// <summary>The time the caller allowed, counted from when the request was read; null if it set no deadline.</summary>
    public TimeSpan? Timeout { get; }

    /// <summary><see cref="Stopwatch"/> timestamp of when the request was read.</summary>
    public long ReceivedTimestamp { get; }

    /// <summary>Time left before the deadline (zero once passed); null if there is no deadline.</summary>
    public TimeSpan? RemainingTime => Timeout is { } t
        ? TimeSpan.FromTicks(Math.Max(0, (t - Stopwatch.GetElapsedTime(ReceivedTimestamp)).Ticks))
        : null;

    /// <summary>Where the handler writes the response body (e.g. through a <see cref="GridWriter"/>). Empty if never written.</summary>
    public IBufferWriter<byte> Response => _response ??= new PooledBufferWriter();

    internal ReadOnlySpan<byte> WrittenResponse => _response is null ? default : _response.WrittenSpan;

    internal void ReleaseResponse()
    {
        _response?.Dispose();
        _response = null;
    }
}
