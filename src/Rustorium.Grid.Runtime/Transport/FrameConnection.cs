using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>Receives the frames of one connection, one at a time, in order, on the connection's read loop.</summary>
internal interface IFrameSink
{
    /// <summary>
    /// Handles one frame. The payload is valid only until the returned task completes: copy what must outlive it.
    /// Throwing a <see cref="GridErrorCode.ProtocolViolation"/> ends the read loop with that violation.
    /// </summary>
    ValueTask OnFrameAsync(GridFrameHeader header, ReadOnlySequence<byte> payload);
}

/// <summary>How a connection's read loop ended.</summary>
internal enum ReceiveEnd
{
    /// <summary>The peer closed its side at a frame boundary.</summary>
    PeerClosed,

    /// <summary>The owner asked the loop to stop (<see cref="FrameConnection.StopReading"/>).</summary>
    Stopped,

    /// <summary>The peer sent something malformed; <see cref="ReceiveOutcome.Error"/> says what.</summary>
    ProtocolViolation,

    /// <summary>The socket failed or the connection was aborted.</summary>
    Failed,
}

internal readonly record struct ReceiveOutcome(ReceiveEnd Kind, Exception? Error);

/// <summary>
/// One TCP connection carrying frames, shared by the client and the server side.
/// </summary>
/// <remarks>
/// <para>Reading: one loop over a <see cref="PipeReader"/> on the socket's stream hands whole frames to an
/// <see cref="IFrameSink"/>. The header is validated as soon as it is there, so an absurd length never makes
/// the loop wait for (or buffer) the claimed bytes.</para>
/// <para>Writing: any thread may write a frame; frames are copied, under a short lock, into an in-memory pipe that
/// never pauses, and one send loop drains it to the socket. Whatever accumulates while a send is in flight goes
/// out in the next send, so many small frames share one system call (frame batching). Backpressure is by bytes:
/// <see cref="WaitForSendCapacityAsync"/> waits while more than the configured bytes are unsent.</para>
/// <para>Closing: <see cref="CloseAsync"/> flushes what was written, half-closes (FIN), keeps reading until the
/// peer closes too (bounded), then releases the socket, so a final Error frame is not lost to a reset.</para>
/// </remarks>
internal sealed class FrameConnection
{
    private static readonly PipeOptions OutputOptions = new(
        pauseWriterThreshold: 0, // never pause: writers are bounded by WaitForSendCapacityAsync instead
        resumeWriterThreshold: 0,
        minimumSegmentSize: 16 * 1024,
        useSynchronizationContext: false);

    private const int SendGatherBytes = 64 * 1024;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly Pipe _output = new(OutputOptions);
    private readonly object _writeLock = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly long _maxBufferedSendBytes;
    private readonly Task _sendLoop;

    // Guarded by _writeLock.
    private bool _accepting = true;
    private bool _outputCompleted;
    private long _bufferedSendBytes;
    private TaskCompletionSource? _capacityWaiter;
    private Task? _closeTask;

    // Simulated latency (null when not configured).
    private readonly ITransportLatency? _latency;
    private readonly string _localName;
    private readonly Channel<DelayedFrame>? _delayed;
    private readonly Task? _delayPump;
    private long _lastDue;         // guarded by _writeLock
    private int _delayedCount;

    private Task<ReceiveOutcome>? _receiveLoop;
    private volatile bool _stopReading;
    private long _lastReceiveTimestamp;
    private int _aborted;

    public FrameConnection(Socket socket, string localName, ITransportLatency? latency, long maxBufferedSendBytes, int maxIncomingFrameSize)
    {
        _socket = socket;
        _localName = localName;
        _latency = latency;
        _maxBufferedSendBytes = maxBufferedSendBytes;
        MaxIncomingFrameSize = maxIncomingFrameSize;
        RemoteEndPoint = socket.RemoteEndPoint;
        LocalEndPoint = socket.LocalEndPoint;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true));
        _lastReceiveTimestamp = Stopwatch.GetTimestamp();
        if (latency is not null)
        {
            _delayed = Channel.CreateUnbounded<DelayedFrame>(new UnboundedChannelOptions { SingleReader = true });
            _delayPump = Task.Run(DelayPumpAsync);
        }
        _sendLoop = Task.Run(SendLoopAsync);
    }

    public EndPoint? RemoteEndPoint { get; }

    public EndPoint? LocalEndPoint { get; }

    /// <summary>The largest length-prefix value accepted from the peer; may be raised after the handshake.</summary>
    public int MaxIncomingFrameSize { get; set; }

    /// <summary>The peer's name once known (the latency table is keyed by it).</summary>
    public string? RemoteName { get; set; }

    /// <summary>Cancelled when the connection is aborted.</summary>
    public CancellationToken Aborted => _abort.Token;

    /// <summary><see cref="Stopwatch"/> timestamp of the last bytes received.</summary>
    public long LastReceiveTimestamp => Volatile.Read(ref _lastReceiveTimestamp);

    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    // ------------------------------------------------------------------ writing

    /// <summary>
    /// Queues one frame whose payload is <paramref name="head"/> followed by <paramref name="body"/>.
    /// </summary>
    /// <returns>False if the connection no longer accepts frames (closing or aborted).</returns>
    public bool WriteFrame(GridFrameType type, ulong correlationId, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        int payloadLength = head.Length + body.Length;
        if (_latency is not null && RemoteName is { } remote)
        {
            var delay = _latency.GetOneWayDelay(_localName, remote);
            if (delay > TimeSpan.Zero || Volatile.Read(ref _delayedCount) > 0)
                return EnqueueDelayed(type, correlationId, head, body, delay);
        }

        lock (_writeLock)
        {
            if (!_accepting || _outputCompleted) return false;
            var writer = _output.Writer;
            GridFrameCodec.WriteHeader(writer.GetSpan(GridProtocol.HeaderSize), type, GridFrameFlags.None, correlationId, payloadLength);
            writer.Advance(GridProtocol.HeaderSize);
            if (!head.IsEmpty) writer.Write(head);
            if (!body.IsEmpty) writer.Write(body);
            _bufferedSendBytes += GridProtocol.HeaderSize + payloadLength;
            // Completes synchronously (the pipe never pauses); it only wakes the send loop if it is idle.
            _ = writer.FlushAsync();
        }
        return true;
    }

    /// <summary>Waits while more than the configured bytes are queued but not yet sent.</summary>
    public ValueTask WaitForSendCapacityAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _bufferedSendBytes) <= _maxBufferedSendBytes) return default;
        return WaitForSendCapacitySlowAsync(cancellationToken);
    }

    private async ValueTask WaitForSendCapacitySlowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_writeLock)
            {
                if (_bufferedSendBytes <= _maxBufferedSendBytes || !_accepting) return;
                _capacityWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _capacityWaiter.Task;
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void ReleaseSendCapacity(long bytes)
    {
        TaskCompletionSource? waiter = null;
        lock (_writeLock)
        {
            _bufferedSendBytes -= bytes;
            if (_capacityWaiter is not null && _bufferedSendBytes <= _maxBufferedSendBytes)
            {
                waiter = _capacityWaiter;
                _capacityWaiter = null;
            }
        }
        waiter?.TrySetResult();
    }

    private async Task SendLoopAsync()
    {
        var reader = _output.Reader;
        byte[]? gather = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                long length = buffer.Length;
                if (length > 0)
                {
                    if (buffer.IsSingleSegment)
                    {
                        await SendAllAsync(buffer.First).ConfigureAwait(false);
                    }
                    else
                    {
                        gather ??= ArrayPool<byte>.Shared.Rent(SendGatherBytes);
                        await SendGatheredAsync(buffer, gather).ConfigureAwait(false);
                    }
                }
                reader.AdvanceTo(buffer.End);
                if (length > 0) ReleaseSendCapacity(length);
                if (result.IsCompleted) break;
            }
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception)
        {
            // The socket is gone (reset, disposed by Abort): the read loop sees it too and the owner fails what is pending.
            Abort();
        }
        finally
        {
            reader.Complete();
            if (gather is not null) ArrayPool<byte>.Shared.Return(gather);
        }
    }

    /// <summary>Copies small segments into one buffer so a batch of frames leaves in as few sends as possible.</summary>
    private async ValueTask SendGatheredAsync(ReadOnlySequence<byte> buffer, byte[] gather)
    {
        int filled = 0;
        foreach (var segment in buffer)
        {
            var memory = segment;
            if (memory.Length >= SendGatherBytes / 2)
            {
                if (filled > 0) await SendAllAsync(gather.AsMemory(0, filled)).ConfigureAwait(false);
                filled = 0;
                await SendAllAsync(memory).ConfigureAwait(false);
                continue;
            }
            while (!memory.IsEmpty)
            {
                int n = Math.Min(memory.Length, gather.Length - filled);
                memory.Span[..n].CopyTo(gather.AsSpan(filled));
                filled += n;
                memory = memory[n..];
                if (filled == gather.Length)
                {
                    await SendAllAsync(gather).ConfigureAwait(false);
                    filled = 0;
                }
            }
        }
        if (filled > 0) await SendAllAsync(gather.AsMemory(0, filled)).ConfigureAwait(false);
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int sent = await _socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    // ------------------------------------------------------------------ simulated latency

    private readonly record struct DelayedFrame(byte[] Bytes, int Length, long DueTimestamp);

    private bool EnqueueDelayed(GridFrameType type, ulong correlationId, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body, TimeSpan delay)
    {
        int total = GridProtocol.HeaderSize + head.Length + body.Length;
        var bytes = ArrayPool<byte>.Shared.Rent(total);
        GridFrameCodec.WriteHeader(bytes, type, GridFrameFlags.None, correlationId, head.Length + body.Length);
        head.CopyTo(bytes.AsSpan(GridProtocol.HeaderSize));
        body.CopyTo(bytes.AsSpan(GridProtocol.HeaderSize + head.Length));

        lock (_writeLock)
        {
            if (!_accepting || _outputCompleted)
            {
                ArrayPool<byte>.Shared.Return(bytes);
                return false;
            }
            long due = Stopwatch.GetTimestamp() + (long)(Math.Max(0, delay.TotalSeconds) * Stopwatch.Frequency);
            due = Math.Max(due, _lastDue); // never overtake a frame queued earlier
            _lastDue = due;
            Interlocked.Increment(ref _delayedCount);
            _bufferedSendBytes += total;
            _delayed!.Writer.TryWrite(new DelayedFrame(bytes, total, due));
        }
        return true;
    }

    private async Task DelayPumpAsync()
    {
        var reader = _delayed!.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_abort.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    // A timer may fire a little early (its clock ticks in milliseconds): wait again until the frame is due, so a
                    // simulated delay is never shorter than asked.
                    TimeSpan wait;
                    while ((wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), frame.DueTimestamp)) > TimeSpan.Zero)
                        await Task.Delay(wait, _abort.Token).ConfigureAwait(false);
                    lock (_writeLock)
                    {
                        if (!_outputCompleted)
                        {
                            _output.Writer.Write(frame.Bytes.AsSpan(0, frame.Length));
                            _ = _output.Writer.FlushAsync();
                        }
                        else
                        {
                            _bufferedSendBytes -= frame.Length;
                        }
                    }
                    ArrayPool<byte>.Shared.Return(frame.Bytes);
                    Interlocked.Decrement(ref _delayedCount);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Aborted: queued frames are dropped with the connection.
        }
    }

    // ------------------------------------------------------------------ reading

    /// <summary>Starts the read loop; the task completes when it ends (never faults).</summary>
    public Task<ReceiveOutcome> StartReceiving(IFrameSink sink)
    {
        if (_receiveLoop is not null) throw new InvalidOperationException("The read loop is already running.");
        _receiveLoop = ReceiveLoopAsync(sink);
        return _receiveLoop;
    }

    /// <summary>Makes the read loop return <see cref="ReceiveEnd.Stopped"/> after the frame being handled.</summary>
    public void StopReading() => _stopReading = true;

    private async Task<ReceiveOutcome> ReceiveLoopAsync(IFrameSink sink)
    {
        await Task.Yield(); // the caller's start-up code must not run the first read inline
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_abort.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (!buffer.IsEmpty) Volatile.Write(ref _lastReceiveTimestamp, Stopwatch.GetTimestamp());
                try
                {
                    while (!_stopReading && GridFrameCodec.TryReadFrame(ref buffer, MaxIncomingFrameSize, out var header, out var payload))
                    {
                        await sink.OnFrameAsync(header, payload).ConfigureAwait(false);
                    }
                }
                finally
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (_stopReading) return new ReceiveOutcome(ReceiveEnd.Stopped, null);
                if (result.IsCompleted)
                {
                    if (buffer.IsEmpty) return new ReceiveOutcome(ReceiveEnd.PeerClosed, null);
                    return new ReceiveOutcome(ReceiveEnd.ProtocolViolation, GridWireFormat.ProtocolViolation(
                        $"The connection was closed in the middle of a frame ({buffer.Length} byte(s) of an incomplete frame)."));
                }
            }
        }
        catch (GridException ex) when (ex.Code == GridErrorCode.ProtocolViolation)
        {
            return new ReceiveOutcome(ReceiveEnd.ProtocolViolation, ex);
        }
        catch (Exception ex)
        {
            return new ReceiveOutcome(ReceiveEnd.Failed, ex);
        }
    }

    /// <summary>
    /// Reads exactly one frame outside the read loop (the handshake), copying its payload.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> for a malformed frame;
    /// <see cref="GridErrorCode.Unavailable"/> if the peer closes first.</exception>
    public async Task<(GridFrameHeader Header, byte[] Payload)> ReadSingleFrameAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (!buffer.IsEmpty) Volatile.Write(ref _lastReceiveTimestamp, Stopwatch.GetTimestamp());
            if (GridFrameCodec.TryReadFrame(ref buffer, MaxIncomingFrameSize, out var header, out var payload))
            {
                var bytes = payload.ToArray();
                _input.AdvanceTo(buffer.Start);
                return (header, bytes);
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw buffer.IsEmpty
                    ? new GridException(GridErrorCode.Unavailable, $"{RemoteEndPoint} closed the connection during the handshake.")
                    : GridWireFormat.ProtocolViolation($"{RemoteEndPoint} closed the connection in the middle of a frame during the handshake.");
            }
        }
    }

    // ------------------------------------------------------------------ closing

    /// <summary>
    /// Graceful close: no new frames; what was written is sent; FIN; wait (at most <paramref name="timeout"/>)
    /// for the peer to close its side while discarding what it still sends; then release the socket.
    /// Idempotent: later calls return the first call's task.
    /// </summary>
    public Task CloseAsync(TimeSpan timeout)
    {
        lock (_writeLock)
        {
            _closeTask ??= CloseCoreAsync(timeout);
            return _closeTask;
        }
    }

    private async Task CloseCoreAsync(TimeSpan timeout)
    {
        await Task.Yield(); // never run the close inline under the caller's lock
        TaskCompletionSource? waiter;
        lock (_writeLock)
        {
            _accepting = false;
            waiter = _capacityWaiter;
            _capacityWaiter = null;
        }
        waiter?.TrySetResult();
        _delayed?.Writer.TryComplete();

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            if (_delayPump is not null) await _delayPump.WaitAsync(deadline.Token).ConfigureAwait(false);
            CompleteOutput();
            await _sendLoop.WaitAsync(deadline.Token).ConfigureAwait(false);
            if (_receiveLoop is { IsCompleted: false })
            {
                await _receiveLoop.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            else
            {
                // Lingering close: read and discard until the peer's FIN, so unread bytes do not turn our close
                // into a reset that could destroy the frames we just sent.
                while (!IsAborted)
                {
                    var result = await _input.ReadAsync(deadline.Token).ConfigureAwait(false);
                    _input.AdvanceTo(result.Buffer.End);
                    if (result.IsCompleted || result.IsCanceled) break;
                }
            }
        }
        catch (Exception)
        {
            // Deadline passed or the socket failed: fall through to the hard close.
        }
        Abort();
        if (_receiveLoop is not null) await _receiveLoop.ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
    }

    private void CompleteOutput()
    {
        lock (_writeLock)
        {
            _accepting = false;
            if (_outputCompleted) return;
            _outputCompleted = true;
            _output.Writer.Complete();
        }
    }

    /// <summary>Hard close: drops unsent frames and releases the socket at once. Idempotent, never throws.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0) return;
        TaskCompletionSource? waiter;
        lock (_writeLock)
        {
            _accepting = false;
            waiter = _capacityWaiter;
            _capacityWaiter = null;
        }
        waiter?.TrySetResult();
        CompleteOutput();
        _delayed?.Writer.TryComplete();
        try
        {
            _abort.Cancel();
        }
        catch (AggregateException)
        {
            // A registered callback failed; the connection is going away regardless.
        }
        _stream.Dispose();
        _socket.Dispose();
    }
}
