using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>
/// The silo side of the transport: accepts TCP connections, performs the handshake, and dispatches Request
/// frames to an <see cref="IGridRequestHandler"/>, concurrently, answering each with a Response or an Error.
/// </summary>
/// <remarks>
/// A connection that misbehaves (garbage, truncated or oversized frames, unknown frame types, requests before
/// Hello, silence during the handshake) gets an Error frame (<see cref="GridErrorCode.ProtocolViolation"/>) where
/// possible and is closed; every other connection keeps being served.
/// </remarks>
public sealed class GridServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly GridServerOptions _options;
    private readonly ConcurrentDictionary<ServerConnection, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _acceptLoop;
    private readonly Task _sweepLoop;
    private readonly object _stopLock = new();
    private Task? _stopTask;
    private long _inflight;
    private volatile bool _isStopping;

    private GridServer(Socket listener, IGridRequestHandler handler, GridServerOptions options)
    {
        _listener = listener;
        Handler = handler;
        _options = options;
        Logger = options.Logger ?? NullLogger.Instance;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        Logger.LogInformation("Grid transport of {Silo} listening on {EndPoint}", options.Name, LocalEndPoint);
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _sweepLoop = Task.Run(SweepLoopAsync);
    }

    /// <summary>
    /// Binds <paramref name="endPoint"/> and starts accepting connections.
    /// </summary>
    /// <param name="endPoint">Address to listen on; port 0 picks a free port (see <see cref="LocalEndPoint"/>).
    /// <see cref="IPAddress.IPv6Any"/> listens on IPv4 too.</param>
    /// <param name="handler">Handles every request.</param>
    /// <param name="options">Settings; validated first.</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options;
    /// <see cref="GridErrorCode.Unavailable"/> if the address cannot be bound (in use, not local, no permission).</exception>
    public static GridServer Start(IPEndPoint endPoint, IGridRequestHandler handler, GridServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
                listener.DualMode = true;
            listener.Bind(endPoint);
            listener.Listen(options.ListenBacklog);
        }
        catch (SocketException ex)
        {
            listener.Dispose();
            throw new GridException(GridErrorCode.Unavailable, $"Cannot listen on {endPoint}: {ex.SocketErrorCode} ({ex.Message}).", ex);
        }
        return new GridServer(listener, handler, options);
    }

    /// <summary>The address the server listens on (with the actual port when started with port 0).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Open connections (including ones still in the handshake).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Requests whose handler has not returned yet, over all connections.</summary>
    public long InflightRequestCount => Interlocked.Read(ref _inflight);

    /// <summary>True once <see cref="StopAsync"/> has been called.</summary>
    public bool IsStopping => _isStopping;

    internal IGridRequestHandler Handler { get; }

    internal ILogger Logger { get; }

    // ------------------------------------------------------------------ accepting

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (SocketException) when (!_stopping.IsCancellationRequested)
            {
                // Transient (a connection reset before accept, or out of descriptors): keep serving.
                try
                {
                    await Task.Delay(10, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            catch (Exception)
            {
                return; // stopped: the listener is disposed or the token fired
            }

            try
            {
                socket.NoDelay = true;
                var frames = new FrameConnection(socket, _options.Name, _options.Latency, _options.MaxBufferedSendBytes,
                    GridProtocol.MaxPreHandshakeFrameSize);
                var connection = new ServerConnection(this, _options, frames);
                if (_connections.Count >= _options.MaxConnections || _isStopping)
                {
                    Logger.LogWarning("Refused a connection from {Remote}: {Reason}", frames.RemoteEndPoint,
                        _isStopping ? "stopping" : $"the limit of {_options.MaxConnections} connections is reached");
                    _ = connection.CloseAsync(GridErrorCode.Unavailable,
                        _isStopping ? $"The silo {_options.Name} is shutting down." : $"The silo {_options.Name} has reached its limit of {_options.MaxConnections} connections.",
                        ServerConnection.CloseTimeout);
                    continue;
                }
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _connections[connection] = done.Task;
                _ = RunConnectionAsync(connection, done);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                socket.Dispose(); // reset before we could set it up
            }
        }
    }

    private static async Task RunConnectionAsync(ServerConnection connection, TaskCompletionSource done)
    {
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // A bug in the connection's bookkeeping must not go unobserved, nor take the server down.
            connection.Frames.Abort();
            connection.OnFailed(ex);
        }
        finally
        {
            done.TrySetResult();
        }
    }

    internal void OnConnectionClosed(ServerConnection connection) => _connections.TryRemove(connection, out _);

    internal void OnRequestStarted() => Interlocked.Increment(ref _inflight);

    internal void OnRequestFinished()
    {
        if (Interlocked.Decrement(ref _inflight) == 0 && _isStopping) _drained.TrySetResult();
    }

    /// <summary>Closes connections that never said Hello in time, and idle ones.</summary>
    private async Task SweepLoopAsync()
    {
        var shortest = _options.IdleTimeout == Timeout.InfiniteTimeSpan
            ? _options.HandshakeTimeout
            : TimeSpan.FromTicks(Math.Min(_options.HandshakeTimeout.Ticks, _options.IdleTimeout.Ticks));
        var period = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(1).Ticks));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                foreach (var connection in _connections.Keys)
                {
                    if (!connection.IsOpen)
                    {
                        if (Stopwatch.GetElapsedTime(connection.CreatedTimestamp) >= _options.HandshakeTimeout && connection.TryBeginClose())
                        {
                            Logger.LogWarning("Closing the connection from {Remote}: no Hello within {Timeout}", connection.Frames.RemoteEndPoint, _options.HandshakeTimeout);
                            _ = connection.CloseAsync(GridErrorCode.ProtocolViolation,
                                $"No Hello within the handshake timeout of {_options.HandshakeTimeout.TotalMilliseconds:0} ms.", ServerConnection.CloseTimeout);
                        }
                    }
                    else if (_options.IdleTimeout != Timeout.InfiniteTimeSpan && connection.InflightCount == 0
                             && Stopwatch.GetElapsedTime(connection.Frames.LastReceiveTimestamp) >= _options.IdleTimeout
                             && connection.TryBeginClose())
                    {
                        Logger.LogDebug("Closing the idle connection from {Remote}", connection.Frames.RemoteEndPoint);
                        _ = connection.CloseAsync(GridErrorCode.Unavailable,
                            $"Closing the connection after {_options.IdleTimeout.TotalMilliseconds:0} ms without traffic.", ServerConnection.CloseTimeout);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    // ------------------------------------------------------------------ stopping

    /// <summary>
    /// Stops the server: stops accepting, answers new requests with <see cref="GridErrorCode.Unavailable"/>, lets
    /// requests in flight finish for up to <paramref name="drainTimeout"/>, then cancels the rest (their callers get
    /// <see cref="GridErrorCode.Unavailable"/>) and closes every connection. Idempotent: later calls wait for the first.
    /// </summary>
    /// <param name="drainTimeout">How long in-flight requests may keep running; <see cref="TimeSpan.Zero"/> abandons them at once.</param>
    /// <param name="cancellationToken">When it fires, the stop stops being graceful: draining ends at once and connections are closed without waiting for the clients (as with IHostedService.StopAsync). The method still completes the stop; it does not throw.</param>
    public Task StopAsync(TimeSpan drainTimeout, CancellationToken cancellationToken = default)
    {
        if (drainTimeout < TimeSpan.Zero && drainTimeout != Timeout.InfiniteTimeSpan)
            throw GridException.InvalidArgument($"The drain timeout must not be negative; got {drainTimeout}.");
        lock (_stopLock)
        {
            _stopTask ??= StopCoreAsync(drainTimeout, cancellationToken);
            return _stopTask;
        }
    }

    private async Task StopCoreAsync(TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        await Task.Yield();
        Logger.LogInformation("Grid transport of {Silo} stopping: {Inflight} request(s) in flight, drain time {Drain}",
            _options.Name, Interlocked.Read(ref _inflight), drainTimeout);
        _isStopping = true;
        _stopping.Cancel();
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        await _sweepLoop.ConfigureAwait(false);

        if (Interlocked.Read(ref _inflight) == 0) _drained.TrySetResult();
        if (drainTimeout != TimeSpan.Zero)
        {
            try
            {
                await _drained.Task.WaitAsync(drainTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                // Out of patience: abandon what is left.
            }
        }

        var connections = _connections.Keys.ToArray();
        foreach (var connection in connections) connection.AbandonAll(ServerConnection.CancelReason.Shutdown);

        var closeTimeout = cancellationToken.IsCancellationRequested ? TimeSpan.Zero : ServerConnection.CloseTimeout;
        if (closeTimeout > TimeSpan.Zero && Interlocked.Read(ref _inflight) > 0)
        {
            // Give abandoned handlers a moment to observe their token and answer Unavailable before the close.
            try
            {
                await _drained.Task.WaitAsync(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                // Those that did not are cut off by the close; their callers see Unavailable all the same.
            }
        }

        await Task.WhenAll(connections.Select(c => c.CloseAsync(null, null, closeTimeout))).ConfigureAwait(false);
        await Task.WhenAll(_connections.Values.ToArray()).ConfigureAwait(false);
        Logger.LogInformation("Grid transport of {Silo} stopped", _options.Name);
    }

    /// <summary>Stops at once (<see cref="StopAsync"/> with no drain time).</summary>
    public async ValueTask DisposeAsync() => await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
}
