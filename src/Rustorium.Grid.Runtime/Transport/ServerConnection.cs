using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>The server side of one client connection: handshake, request dispatch, cancellation, deadlines.</summary>
internal sealed class ServerConnection : IFrameSink
{
    internal static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    private readonly GridServer _server;
    private readonly GridServerOptions _options;
    private readonly FrameConnection _frames;
    private readonly ConcurrentDictionary<ulong, InflightRequest> _inflight = new();
    private readonly SemaphoreSlim _slots;
    private volatile GridPeerInfo? _peer;
    private int _closing;

    public ServerConnection(GridServer server, GridServerOptions options, FrameConnection frames)
    {
        _server = server;
        _options = options;
        _frames = frames;
        _slots = new SemaphoreSlim(options.MaxConcurrentRequestsPerConnection, options.MaxConcurrentRequestsPerConnection);
        CreatedTimestamp = Stopwatch.GetTimestamp();
    }

    public long CreatedTimestamp { get; }

    public bool IsOpen => _peer is not null;

    public int InflightCount => _inflight.Count;

    public FrameConnection Frames => _frames;

    /// <summary>The connection's whole life: read loop, then close. Never faults.</summary>
    public async Task RunAsync()
    {
        var outcome = await _frames.StartReceiving(this).ConfigureAwait(false);
        var logger = _server.Logger;
        switch (outcome.Kind)
        {
            case ReceiveEnd.ProtocolViolation:
                // Tell the peer what was wrong, then close; everything it still sends is discarded.
                logger.LogWarning("Closing the connection from {Remote} ({Peer}): protocol violation: {Reason}",
                    _frames.RemoteEndPoint, _peer?.Name ?? "before Hello", outcome.Error!.Message);
                if (TryBeginClose()) WriteError(0, GridErrorCode.ProtocolViolation, outcome.Error.Message, null);
                break;
            case ReceiveEnd.Failed when !_frames.IsAborted:
                logger.LogDebug(outcome.Error, "The connection from {Remote} ({Peer}) failed", _frames.RemoteEndPoint, _peer?.Name);
                break;
            default:
                logger.LogDebug("The connection from {Remote} ({Peer}) ended: {How}", _frames.RemoteEndPoint, _peer?.Name, outcome.Kind);
                break;
        }
        AbandonAll(CancelReason.ConnectionClosed);
        await _frames.CloseAsync(CloseTimeout).ConfigureAwait(false);
        _server.OnConnectionClosed(this);
    }

    /// <summary>Last resort when <see cref="RunAsync"/> itself failed.</summary>
    public void OnFailed(Exception ex)
    {
        _server.Logger.LogError(ex, "The connection from {Remote} failed unexpectedly", _frames.RemoteEndPoint);
        AbandonAll(CancelReason.ConnectionClosed);
        _server.OnConnectionClosed(this);
    }

    /// <summary>True for the first caller only: whoever closes first may send the final Error frame.</summary>
    public bool TryBeginClose() => Interlocked.Exchange(ref _closing, 1) == 0;

    /// <summary>Closes from outside the read loop (idle, handshake timeout, server stop), optionally with a final Error frame.</summary>
    public Task CloseAsync(GridErrorCode? code, string? message, TimeSpan timeout)
    {
        if (code is { } c) WriteError(0, c, message ?? c.ToString(), null);
        return _frames.CloseAsync(timeout);
    }

    /// <summary>Cancels every request in flight for <paramref name="reason"/>.</summary>
    public void AbandonAll(CancelReason reason)
    {
        foreach (var request in _inflight.Values) request.Cancel(reason);
    }

    // ------------------------------------------------------------------ frames

    ValueTask IFrameSink.OnFrameAsync(GridFrameHeader header, ReadOnlySequence<byte> payload)
    {
        var peer = _peer;
        if (peer is null) return new ValueTask(OnHello(header, payload));

        switch (header.Type)
        {
            case GridFrameType.Request:
                return OnRequestAsync(peer, header.CorrelationId, payload);
            case GridFrameType.Cancel:
                if (_inflight.TryGetValue(header.CorrelationId, out var request)) request.Cancel(CancelReason.Peer);
                return default; // unknown ids: the call already finished, the Cancel crossed its response
            case GridFrameType.Ping:
                _frames.WriteFrame(GridFrameType.Pong, header.CorrelationId, default, default);
                return default;
            case GridFrameType.Pong:
                return default;
            case GridFrameType.Error:
                // The client gives up on the connection (it refused our HelloAck or saw garbage): stop and close.
                _frames.StopReading();
                return default;
            case GridFrameType.Hello:
                throw GridWireFormat.ProtocolViolation("Hello was sent twice on one connection.");
            default:
                throw GridWireFormat.ProtocolViolation($"A client must not send {header.Type} frames to a silo.");
        }
    }

    private Task OnHello(GridFrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.Type != GridFrameType.Hello)
            throw GridWireFormat.ProtocolViolation($"The first frame on a connection must be Hello; got {header.Type}.");
        var reader = new GridReader(payload);
        var hello = GridHello.Read(ref reader);

        _frames.RemoteName = hello.Name;
        _frames.MaxIncomingFrameSize = _options.MaxFrameSize;
        using (var ack = new PooledBufferWriter(64))
        {
            var w = new GridWriter(ack);
            new GridHello(GridProtocol.Version, GridPeerRole.Silo, _options.Name, _options.MaxFrameSize).Write(ref w);
            w.Commit();
            _frames.WriteFrame(GridFrameType.HelloAck, 0, ack.WrittenSpan, default);
        }
        _peer = new GridPeerInfo(hello.Name, hello.Role, Math.Min(hello.Version, GridProtocol.Version), hello.MaxFrameSize, _frames.RemoteEndPoint);
        return Task.CompletedTask;
    }

    private ValueTask OnRequestAsync(GridPeerInfo peer, ulong id, ReadOnlySequence<byte> payload)
    {
        if (id == 0) throw GridWireFormat.ProtocolViolation("A Request must carry a non-zero correlation id.");
        var reader = new GridReader(payload);
        uint deadline = GridRequestPayload.ReadDeadline(ref reader);
        var body = payload.Slice(reader.Position);

        if (_server.IsStopping)
        {
            WriteError(id, GridErrorCode.Unavailable, $"The silo {_options.Name} is shutting down; retry on another silo.", null);
            return default;
        }
        if (_inflight.ContainsKey(id))
            throw GridWireFormat.ProtocolViolation($"Correlation id {id} is reused while its first call is still in flight.");

        // At the limit the read loop waits here, which stops reading this socket: TCP pushes back on the client.
        if (!_slots.Wait(0)) return WaitForSlotThenStartAsync(peer, id, deadline, body);
        Start(peer, id, deadline, body);
        return default;
    }

    private async ValueTask WaitForSlotThenStartAsync(GridPeerInfo peer, ulong id, uint deadline, ReadOnlySequence<byte> body)
    {
        await _slots.WaitAsync(_frames.Aborted).ConfigureAwait(false);
        Start(peer, id, deadline, body);
    }

    private void Start(GridPeerInfo peer, ulong id, uint deadline, ReadOnlySequence<byte> body)
    {
        var buffer = GridRequestPayload.RentBody(body, out int length);
        var request = new InflightRequest(this, new GridRequestContext(peer, id, deadline), buffer, length, deadline);
        _inflight[id] = request;
        _server.OnRequestStarted();
        request.ArmDeadline();
        ThreadPool.UnsafeQueueUserWorkItem(request, preferLocal: false);
    }

    internal void WriteError(ulong id, GridErrorCode code, string message, OwnerHint? hint)
    {
        using var payload = GridErrorPayload.Encode(code, message, hint);
        _frames.WriteFrame(GridFrameType.Error, id, payload.WrittenSpan, default);
    }

    // ------------------------------------------------------------------ requests

    internal enum CancelReason
    {
        None = 0,
        Peer = 1,
        Deadline = 2,
        Shutdown = 3,
        ConnectionClosed = 4,
    }

    internal sealed class InflightRequest : IThreadPoolWorkItem
    {
        private readonly ServerConnection _connection;
        private readonly byte[] _body;
        private readonly int _length;
        private readonly uint _deadlineMs;
        private readonly CancellationTokenSource _cts = new();
        private int _reason;
        private int _answered;

        public InflightRequest(ServerConnection connection, GridRequestContext context, byte[] body, int length, uint deadlineMs)
        {
            _connection = connection;
            Context = context;
            _body = body;
            _length = length;
            _deadlineMs = deadlineMs;
        }

        public GridRequestContext Context { get; }

        private ulong Id => Context.CorrelationId;

        public void ArmDeadline()
        {
            if (_deadlineMs == 0) return;
            _cts.Token.UnsafeRegister(static s => ((InflightRequest)s!).OnTokenCancelled(), this);
            _cts.CancelAfter((int)_deadlineMs);
        }

        public void Cancel(CancelReason reason)
        {
            if (Interlocked.CompareExchange(ref _reason, (int)reason, (int)CancelReason.None) != (int)CancelReason.None) return;
            // Asynchronously: the handler's continuations must not run on the connection's read loop.
            _ = CancelAsync();
        }

        private async Task CancelAsync()
        {
            try
            {
                await _cts.CancelAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ObjectDisposedException or AggregateException)
            {
                // Finished meanwhile, or a handler's callback threw: nothing left to cancel.
            }
        }

        private void OnTokenCancelled()
        {
            // Only CancelAfter cancels without a reason: the deadline passed. Answer now; the handler may keep
            // running (its slot stays taken until it returns), but the caller is told at once.
            if (Interlocked.CompareExchange(ref _reason, (int)CancelReason.Deadline, (int)CancelReason.None) == (int)CancelReason.None)
                TryAnswerError(GridErrorCode.Timeout, $"The call's deadline of {_deadlineMs} ms passed before the silo finished it.", null);
        }

        void IThreadPoolWorkItem.Execute() => _ = RunAsync();

        private async Task RunAsync()
        {
            Exception? failure = null;
            try
            {
                await _connection._server.Handler.HandleAsync(_body.AsMemory(0, _length), Context, _cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure = ex;
            }

            try
            {
                await FinishAsync(failure).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                // The connection went away while we waited to send: nobody to answer.
            }
            finally
            {
                _connection._inflight.TryRemove(Id, out _);
                _cts.Dispose();
                Context.ReleaseResponse();
                ArrayPool<byte>.Shared.Return(_body);
                _connection._slots.Release();
                _connection._server.OnRequestFinished();
            }
        }

        private async ValueTask FinishAsync(Exception? failure)
        {
            var reason = (CancelReason)Volatile.Read(ref _reason);
            if (reason is CancelReason.Peer or CancelReason.ConnectionClosed) return; // nobody waits for an answer

            if (failure is null)
            {
                var body = Context.WrittenResponse;
                if ((long)GridProtocol.FrameOverhead + body.Length > Context.Peer.MaxFrameSize)
                {
                    TryAnswerError(GridErrorCode.InvalidArgument,
                        $"The response of {body.Length} bytes exceeds the client's max frame size of {Context.Peer.MaxFrameSize} bytes.", null);
                    return;
                }
                await _connection._frames.WaitForSendCapacityAsync(_connection._frames.Aborted).ConfigureAwait(false);
                if (Interlocked.Exchange(ref _answered, 1) == 0)
                    _connection._frames.WriteFrame(GridFrameType.Response, Id, Context.WrittenResponse, default);
                return;
            }

            if (_cts.IsCancellationRequested && reason == CancelReason.None) reason = CancelReason.Deadline;
            switch (reason)
            {
                case CancelReason.Deadline:
                    TryAnswerError(GridErrorCode.Timeout, $"The call's deadline of {_deadlineMs} ms passed before the silo finished it.", null);
                    return;
                case CancelReason.Shutdown:
                    TryAnswerError(GridErrorCode.Unavailable,
                        $"The silo {_connection._options.Name} is shutting down and abandoned the call; retry on another silo.", null);
                    return;
            }

            if (failure is GridException grid)
            {
                TryAnswerError(grid.Code, grid.Message, grid.OwnerHint);
                return;
            }

            _connection._server.Logger.LogError(failure, "The handler failed on call {CorrelationId} from {Peer} ({Remote})",
                Id, Context.Peer.Name, Context.Peer.RemoteEndPoint);
            try
            {
                _connection._options.HandlerFault?.Invoke(Context, failure);
            }
            catch (Exception)
            {
                // An observer must not take the connection down.
            }
            TryAnswerError(GridErrorCode.Internal,
                $"The silo {_connection._options.Name} failed while handling the call (correlation id {Id}); the details are in the silo's log.", null);
        }

        private void TryAnswerError(GridErrorCode code, string message, OwnerHint? hint)
        {
            if (Interlocked.Exchange(ref _answered, 1) != 0) return;
            _connection.WriteError(Id, code, message, hint);
        }
    }
}
