using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>
/// The client side of one TCP connection to a silo: many concurrent calls multiplexed by correlation id.
/// </summary>
/// <remarks>
/// <para>Thread-safe: any number of callers may use <see cref="CallAsync"/> at once; their Request frames are
/// batched into shared sends and the responses, in whatever order the silo finishes them, are matched back by
/// correlation id.</para>
/// <para>Failure modes of a call: the silo's <see cref="GridException"/> (code, message and
/// <see cref="GridException.OwnerHint"/> preserved); <see cref="GridErrorCode.Timeout"/> when the call's timeout
/// passes (a Cancel frame tells the silo); <see cref="OperationCanceledException"/> when the caller's token fires
/// (also followed by a Cancel frame); <see cref="GridErrorCode.Unavailable"/> when the connection is lost, closed
/// by the silo, declared dead by keepalive, or disposed.</para>
/// </remarks>
public sealed class GridConnection : IAsyncDisposable, IFrameSink
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    private readonly FrameConnection _frames;
    private readonly GridConnectionOptions _options;
    private readonly ConcurrentDictionary<ulong, PendingCall> _pending = new();
    private readonly ConcurrentDictionary<ulong, PingProbe> _pings = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastCorrelationId;
    private GridException? _closeReason;
    private volatile GridException? _remoteError;
    private Task? _receiveTask;
    private Task? _keepAliveTask;
    private int _disposed;

    private GridConnection(FrameConnection frames, GridConnectionOptions options, GridPeerInfo server)
    {
        _frames = frames;
        _options = options;
        Server = server;
    }

    /// <summary>The silo at the other end, as it introduced itself in HelloAck.</summary>
    public GridPeerInfo Server { get; }

    /// <summary>The silo's socket address.</summary>
    public EndPoint? RemoteEndPoint => _frames.RemoteEndPoint;

    /// <summary>True until the connection is lost, closed or disposed.</summary>
    public bool IsConnected => Volatile.Read(ref _closeReason) is null;

    /// <summary>Calls waiting for their response.</summary>
    public int PendingCallCount => _pending.Count;

    /// <summary>Completes (never faults) once the connection has closed, for whatever reason.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Why the connection closed (<see cref="GridErrorCode.Unavailable"/>), or null while it is open.</summary>
    public GridException? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>
    /// Opens a TCP connection to a silo and performs the handshake (Hello → HelloAck).
    /// </summary>
    /// <param name="endPoint">The silo's address (IP or DNS).</param>
    /// <param name="options">Settings; validated first.</param>
    /// <param name="cancellationToken">Abandons the attempt.</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options;
    /// <see cref="GridErrorCode.Unavailable"/> when the silo cannot be reached, closes during the handshake or does
    /// not answer within <see cref="GridConnectionOptions.ConnectTimeout"/>; <see cref="GridErrorCode.ProtocolViolation"/>
    /// when the silo refuses our Hello (e.g. another major version) or answers with something that is not HelloAck;
    /// any other code the silo refuses with.</exception>
    /// <exception cref="OperationCanceledException">The token fired.</exception>
    public static async Task<GridConnection> ConnectAsync(EndPoint endPoint, GridConnectionOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        cancellationToken.ThrowIfCancellationRequested();

        var socket = endPoint is IPEndPoint ip
            ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.NoDelay = true;
        FrameConnection? frames = null;
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(endPoint, attempt.Token).ConfigureAwait(false);
            frames = new FrameConnection(socket, options.PeerName, options.Latency, options.MaxBufferedSendBytes, options.MaxFrameSize);

            using (var hello = new PooledBufferWriter(64))
            {
                var w = new GridWriter(hello);
                new GridHello(GridProtocol.Version, GridPeerRole.Client, options.PeerName, options.MaxFrameSize).Write(ref w);
                w.Commit();
                frames.WriteFrame(GridFrameType.Hello, 0, hello.WrittenSpan, default);
            }

            var (header, payload) = await frames.ReadSingleFrameAsync(attempt.Token).ConfigureAwait(false);
            GridHello ack;
            switch (header.Type)
            {
                case GridFrameType.HelloAck:
                    try
                    {
                        var reader = new GridReader(payload);
                        ack = GridHello.Read(ref reader);
                    }
                    catch (GridException ex) when (ex.Code == GridErrorCode.ProtocolViolation)
                    {
                        SendError(frames, 0, GridErrorCode.ProtocolViolation, ex.Message);
                        throw;
                    }
                    break;
                case GridFrameType.Error:
                {
                    var reader = new GridReader(payload);
                    var refused = GridErrorPayload.Read(ref reader);
                    throw new GridException(refused.Code, $"{endPoint} refused the connection: {refused.Message}") { OwnerHint = refused.OwnerHint };
                }
                default:
                    SendError(frames, 0, GridErrorCode.ProtocolViolation, $"Expected HelloAck, got {header.Type}.");
                    throw GridWireFormat.ProtocolViolation($"{endPoint} answered Hello with {header.Type} instead of HelloAck.");
            }

            var server = new GridPeerInfo(ack.Name, ack.Role, Math.Min(ack.Version, GridProtocol.Version), ack.MaxFrameSize, frames.RemoteEndPoint);
            frames.RemoteName = ack.Name;
            var connection = new GridConnection(frames, options, server);
            connection.Start();
            return connection;
        }
        catch (Exception ex)
        {
            if (frames is not null) await frames.CloseAsync(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            socket.Dispose();
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested) throw;
            throw ex switch
            {
                GridException => ex,
                OperationCanceledException => new GridException(GridErrorCode.Unavailable,
                    $"{endPoint} did not accept the connection and answer the handshake within {options.ConnectTimeout}.", ex),
                SocketException se => new GridException(GridErrorCode.Unavailable,
                    $"Could not connect to {endPoint}: {se.SocketErrorCode} ({se.Message}).", ex),
                IOException or ObjectDisposedException => new GridException(GridErrorCode.Unavailable,
                    $"The connection to {endPoint} failed during the handshake: {ex.Message}", ex),
                _ => ex,
            };
        }
    }

    private void Start()
    {
        _receiveTask = RunAsync();
        if (_options.KeepAliveInterval != Timeout.InfiniteTimeSpan) _keepAliveTask = KeepAliveAsync();
    }

    // ------------------------------------------------------------------ calls

    /// <summary>
    /// Sends a request and waits for its response.
    /// </summary>
    /// <param name="request">The opaque request body (encoded by the layer above). Copied before this method returns.</param>
    /// <param name="timeout">How long to wait for the response; also sent to the silo as the call's deadline.
    /// Positive, at most <see cref="int.MaxValue"/> ms, or <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="cancellationToken">Abandons the call (the silo is told with a Cancel frame).</param>
    /// <returns>The response body; dispose it when done.</returns>
    /// <exception cref="GridException">See the class remarks; <see cref="GridErrorCode.InvalidArgument"/> for a bad
    /// timeout or a request larger than the silo's max frame size.</exception>
    /// <exception cref="OperationCanceledException">The token fired before the response arrived.</exception>
    public Task<GridResponse> CallAsync(ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (timeout != Timeout.InfiniteTimeSpan && (timeout <= TimeSpan.Zero || timeout.TotalMilliseconds > GridProtocol.MaxDeadlineMilliseconds))
            return Task.FromException<GridResponse>(GridException.InvalidArgument(
                $"A call's timeout must be positive and at most {GridProtocol.MaxDeadlineMilliseconds} ms, or infinite; got {timeout}."));
        long frameLength = (long)GridProtocol.FrameOverhead + GridWireFormat.MaxVarUInt32Bytes + request.Length;
        if (frameLength > Server.MaxFrameSize)
            return Task.FromException<GridResponse>(GridException.InvalidArgument(
                $"A request of {request.Length} bytes does not fit in a frame: the silo accepts frames of at most {Server.MaxFrameSize} bytes."));
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<GridResponse>(cancellationToken);
        if (Volatile.Read(ref _closeReason) is { } closed) return Task.FromException<GridResponse>(Copy(closed));

        var capacity = _frames.WaitForSendCapacityAsync(cancellationToken);
        // The slow path awaits before the frame is written: copy, so the caller may reuse its buffer at once.
        if (!capacity.IsCompletedSuccessfully) return CallAfterBackpressureAsync(capacity, request.ToArray(), timeout, cancellationToken);
        return Send(request, timeout, cancellationToken);
    }

    private async Task<GridResponse> CallAfterBackpressureAsync(ValueTask capacity, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        await capacity.ConfigureAwait(false);
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            timeout -= Stopwatch.GetElapsedTime(start);
            if (timeout <= TimeSpan.Zero)
                throw new GridException(GridErrorCode.Timeout, "The call timed out waiting to be sent (the connection's send buffer stayed full).");
        }
        return await Send(request, timeout, cancellationToken).ConfigureAwait(false);
    }

    private Task<GridResponse> Send(ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ulong id = (ulong)Interlocked.Increment(ref _lastCorrelationId);
        var call = new PendingCall(this, id, timeout, cancellationToken);
        _pending[id] = call;
        if (Volatile.Read(ref _closeReason) is { } closed)
        {
            // Lost a race with the shutdown sweep: fail it here.
            if (_pending.TryRemove(id, out _)) call.TrySetException(Copy(closed));
            return call.Task;
        }
        call.Arm();

        Span<byte> deadline = stackalloc byte[GridWireFormat.MaxVarUInt32Bytes];
        int n = WriteVarUInt32(deadline, GridRequestPayload.DeadlineFor(timeout));
        if (!_frames.WriteFrame(GridFrameType.Request, id, deadline[..n], request.Span) && _pending.TryRemove(id, out _))
        {
            call.Disarm();
            call.TrySetException(Copy(Volatile.Read(ref _closeReason)
                ?? new GridException(GridErrorCode.Unavailable, $"The connection to {Server.Name} is closing.")));
        }
        return call.Task;
    }

    private static int WriteVarUInt32(Span<byte> destination, uint value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>
    /// Measures one round trip (Ping → Pong) on this connection: the silo answers from its read loop, so this is
    /// the network and transport latency (including any simulated latency), not a call's.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if the connection closes first.</exception>
    /// <exception cref="OperationCanceledException">The token fired.</exception>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _closeReason) is { } closed) throw Copy(closed);
        ulong id = (ulong)Interlocked.Increment(ref _lastCorrelationId);
        var probe = new PingProbe();
        _pings[id] = probe;
        try
        {
            if (Volatile.Read(ref _closeReason) is { } closedNow) throw Copy(closedNow);
            if (!_frames.WriteFrame(GridFrameType.Ping, id, default, default))
                throw Copy(Volatile.Read(ref _closeReason) ?? new GridException(GridErrorCode.Unavailable, "The connection is closing."));
            return await probe.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _pings.TryRemove(id, out _);
        }
    }

    private sealed class PingProbe : TaskCompletionSource<TimeSpan>
    {
        public readonly long Start = Stopwatch.GetTimestamp();

        public PingProbe() : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
        }
    }

    private sealed class PendingCall : TaskCompletionSource<GridResponse>
    {
        private readonly GridConnection _owner;
        private readonly ulong _id;
        private readonly TimeSpan _timeout;
        private readonly CancellationToken _cancellationToken;
        private Timer? _timer;
        private CancellationTokenRegistration _registration;

        public PendingCall(GridConnection owner, ulong id, TimeSpan timeout, CancellationToken cancellationToken)
            : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
            _owner = owner;
            _id = id;
            _timeout = timeout;
            _cancellationToken = cancellationToken;
        }

        public void Arm()
        {
            if (_timeout != Timeout.InfiniteTimeSpan)
            {
                var timer = new Timer(static s => ((PendingCall)s!).OnTimeout(), this, _timeout, Timeout.InfiniteTimeSpan);
                Volatile.Write(ref _timer, timer);
                if (Task.IsCompleted) timer.Dispose(); // completed before the timer was published
            }
            if (_cancellationToken.CanBeCanceled)
            {
                _registration = _cancellationToken.UnsafeRegister(static s => ((PendingCall)s!).OnCancelled(), this);
                if (Task.IsCompleted) _registration.Unregister(); // failed by a shutdown meanwhile: do not pin the token
            }
        }

        public void Disarm()
        {
            Volatile.Read(ref _timer)?.Dispose();
            _registration.Unregister();
        }

        private void OnTimeout()
        {
            if (!_owner._pending.TryRemove(_id, out _)) return;
            Disarm();
            _owner.SendCancel(_id);
            TrySetException(new GridException(GridErrorCode.Timeout,
                $"The call to {_owner.Server.Name} did not complete within {_timeout.TotalMilliseconds:0.###} ms."));
        }

        private void OnCancelled()
        {
            if (!_owner._pending.TryRemove(_id, out _)) return;
            Disarm();
            _owner.SendCancel(_id);
            TrySetCanceled(_cancellationToken);
        }
    }

    private void SendCancel(ulong id) => _frames.WriteFrame(GridFrameType.Cancel, id, default, default);

    private static void SendError(FrameConnection frames, ulong id, GridErrorCode code, string message)
    {
        using var payload = GridErrorPayload.Encode(code, message, null);
        frames.WriteFrame(GridFrameType.Error, id, payload.WrittenSpan, default);
    }

    private static GridException Copy(GridException e) => new(e.Code, e.Message, e.InnerException) { OwnerHint = e.OwnerHint };

    // ------------------------------------------------------------------ receiving

    ValueTask IFrameSink.OnFrameAsync(GridFrameHeader header, ReadOnlySequence<byte> payload)
    {
        ulong id = header.CorrelationId;
        switch (header.Type)
        {
            case GridFrameType.Response:
                if (_pending.TryRemove(id, out var call))
                {
                    call.Disarm();
                    var response = GridResponse.CopyOf(payload);
                    if (!call.TrySetResult(response)) response.Dispose();
                }
                // else: the call already timed out or was cancelled; the late answer is dropped.
                break;

            case GridFrameType.Error:
            {
                var reader = new GridReader(payload);
                var error = GridErrorPayload.Read(ref reader);
                if (id == 0)
                {
                    _remoteError = error; // connection-level: the silo closes next
                }
                else if (_pending.TryRemove(id, out var failed))
                {
                    failed.Disarm();
                    failed.TrySetException(error);
                }
                break;
            }

            case GridFrameType.Ping:
                _frames.WriteFrame(GridFrameType.Pong, id, default, default);
                break;

            case GridFrameType.Pong:
                if (_pings.TryRemove(id, out var probe)) probe.TrySetResult(Stopwatch.GetElapsedTime(probe.Start));
                break;

            default:
                throw GridWireFormat.ProtocolViolation($"A silo must not send {header.Type} frames to a client.");
        }
        return default;
    }

    private async Task RunAsync()
    {
        var outcome = await _frames.StartReceiving(this).ConfigureAwait(false);
        string who = $"{Server.Name} ({RemoteEndPoint})";
        GridException reason = outcome.Kind switch
        {
            ReceiveEnd.PeerClosed => new GridException(GridErrorCode.Unavailable, _remoteError is { } e
                ? $"The connection to {who} was closed by the silo: {e.Code}: {e.Message}"
                : $"The connection to {who} was closed by the silo.", _remoteError),
            ReceiveEnd.ProtocolViolation => new GridException(GridErrorCode.Unavailable,
                $"The connection to {who} was dropped: the silo sent a malformed frame ({outcome.Error!.Message}).", outcome.Error),
            ReceiveEnd.Stopped => new GridException(GridErrorCode.Unavailable, $"The connection to {who} was closed."),
            _ => new GridException(GridErrorCode.Unavailable,
                $"The connection to {who} was lost: {outcome.Error?.Message ?? "aborted"}", outcome.Error),
        };
        if (outcome.Kind == ReceiveEnd.ProtocolViolation)
            SendError(_frames, 0, GridErrorCode.ProtocolViolation, outcome.Error!.Message);
        if (Shutdown(reason)) _options.Logger?.LogWarning(reason.InnerException, "{Reason}", reason.Message);
        else _options.Logger?.LogDebug("The connection to {Silo} ({Remote}) closed", Server.Name, RemoteEndPoint);
        await _frames.CloseAsync(CloseTimeout).ConfigureAwait(false);
        _completion.TrySetResult();
    }

    private async Task KeepAliveAsync()
    {
        var interval = _options.KeepAliveInterval;
        using var timer = new PeriodicTimer(interval / 2);
        try
        {
            while (await timer.WaitForNextTickAsync(_shutdown.Token).ConfigureAwait(false))
            {
                var idle = Stopwatch.GetElapsedTime(_frames.LastReceiveTimestamp);
                if (idle >= _options.KeepAliveTimeout)
                {
                    var dead = new GridException(GridErrorCode.Unavailable,
                        $"The connection to {Server.Name} ({RemoteEndPoint}) is dead: nothing received for {idle.TotalMilliseconds:0} ms " +
                        $"(keepalive timeout {_options.KeepAliveTimeout.TotalMilliseconds:0} ms).");
                    if (Shutdown(dead)) _options.Logger?.LogWarning("{Reason}", dead.Message);
                    _frames.Abort();
                    return;
                }
                if (idle >= interval / 2)
                    _frames.WriteFrame(GridFrameType.Ping, (ulong)Interlocked.Increment(ref _lastCorrelationId), default, default);
            }
        }
        catch (OperationCanceledException)
        {
            // Shut down.
        }
    }

    /// <summary>Records why the connection closed (first reason wins) and fails every pending call and ping with it.</summary>
    /// <returns>True if this call set the reason.</returns>
    private bool Shutdown(GridException reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null) return false;
        _shutdown.Cancel();
        foreach (var id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out var call))
            {
                call.Disarm();
                call.TrySetException(Copy(reason));
            }
        }
        foreach (var id in _pings.Keys)
        {
            if (_pings.TryRemove(id, out var probe)) probe.TrySetException(Copy(reason));
        }
        return true;
    }

    /// <summary>
    /// Closes the connection cleanly: pending calls fail with <see cref="GridErrorCode.Unavailable"/>, queued
    /// frames are flushed, the TCP connection is shut down in both directions (waiting at most 2 s for the silo).
    /// Idempotent.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _completion.Task.ConfigureAwait(false);
            return;
        }
        Shutdown(new GridException(GridErrorCode.Unavailable, $"The connection to {Server.Name} was closed by its owner."));
        await _frames.CloseAsync(CloseTimeout).ConfigureAwait(false);
        if (_receiveTask is not null) await _receiveTask.ConfigureAwait(false);
        if (_keepAliveTask is not null) await _keepAliveTask.ConfigureAwait(false);
        _completion.TrySetResult();
    }
}
