using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Tests.Transport;

/// <summary>Servers, clients, handlers and a raw socket peer for the transport tests. Everything is bounded in time.</summary>
internal static class TransportTestKit
{
    /// <summary>Upper bound for anything a test waits on: generous, only reached when something is broken.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    public static GridServer StartServer(IGridRequestHandler handler, GridServerOptions? options = null) =>
        GridServer.Start(new IPEndPoint(IPAddress.Loopback, 0), handler, options ?? new GridServerOptions { Name = "test-silo" });

    public static Task<GridConnection> ConnectAsync(GridServer server, GridConnectionOptions? options = null) =>
        GridConnection.ConnectAsync(server.LocalEndPoint, options ?? new GridConnectionOptions { PeerName = "test-client" }).WaitAsync(Bound);

    /// <summary>Polls <paramref name="condition"/> until it holds or <see cref="Bound"/> passes (then fails the test).</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"Timed out waiting until {what}.");
            await Task.Delay(5);
        }
    }

    public static byte[] Hello(ushort version = GridProtocol.Version, string magic = "RGRD", string name = "raw", int maxFrame = GridProtocol.DefaultMaxFrameSize)
    {
        var payload = new PooledBufferWriter();
        var w = new GridWriter(payload);
        w.WriteRaw(System.Text.Encoding.ASCII.GetBytes(magic));
        w.WriteUInt16(version);
        w.WriteByte((byte)GridPeerRole.Client);
        w.WriteString(name);
        w.WriteVarUInt32((uint)maxFrame);
        w.Commit();
        return Frame(GridFrameType.Hello, 0, payload.WrittenSpan);
    }

    public static byte[] Frame(GridFrameType type, ulong id, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[GridProtocol.HeaderSize + payload.Length];
        GridFrameCodec.WriteHeader(bytes, type, GridFrameFlags.None, id, payload.Length);
        payload.CopyTo(bytes.AsSpan(GridProtocol.HeaderSize));
        return bytes;
    }

    public static byte[] Request(ulong id, uint deadlineMs, ReadOnlySpan<byte> body)
    {
        var payload = new PooledBufferWriter();
        var w = new GridWriter(payload);
        w.WriteVarUInt32(deadlineMs);
        w.WriteRaw(body);
        w.Commit();
        return Frame(GridFrameType.Request, id, payload.WrittenSpan);
    }

    public static GridException ReadError(ReadOnlySpan<byte> payload)
    {
        var r = new GridReader(payload);
        return GridErrorPayload.Read(ref r);
    }
}

/// <summary>A handler made of a delegate.</summary>
internal sealed class DelegateHandler(Func<ReadOnlyMemory<byte>, GridRequestContext, CancellationToken, ValueTask> handle) : IGridRequestHandler
{
    public ValueTask HandleAsync(ReadOnlyMemory<byte> payload, GridRequestContext context, CancellationToken cancellationToken) =>
        handle(payload, context, cancellationToken);

    /// <summary>Answers with the request body.</summary>
    public static DelegateHandler Echo { get; } = new((payload, context, _) =>
    {
        context.Response.Write(payload.Span);
        return ValueTask.CompletedTask;
    });
}

/// <summary>A peer that speaks raw bytes: for misbehaving clients and fake servers.</summary>
internal sealed class RawPeer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly List<byte> _received = [];

    public RawPeer(Socket socket) => _socket = socket;

    public static async Task<RawPeer> ConnectAsync(EndPoint endPoint)
    {
        var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(endPoint).WaitAsync(TransportTestKit.Bound);
        return new RawPeer(s);
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int n = await _socket.SendAsync(bytes, SocketFlags.None);
            bytes = bytes[n..];
        }
    }

    /// <summary>Sends, tolerating a reset by a server that has already closed on us.</summary>
    public async Task<bool> TrySendAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await SendAsync(bytes).WaitAsync(TransportTestKit.Bound);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void ShutdownSend()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // Already reset by the peer.
        }
    }

    /// <summary>Next whole frame, or null at EOF (or reset). Fails the test after <see cref="TransportTestKit.Bound"/>.</summary>
    public async Task<(GridFrameHeader Header, byte[] Payload)?> ReadFrameAsync(int maxFrame = GridProtocol.DefaultMaxFrameSize)
    {
        using var cts = new CancellationTokenSource(TransportTestKit.Bound);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var seq = new ReadOnlySequence<byte>(_received.ToArray());
            if (GridFrameCodec.TryReadFrame(ref seq, maxFrame, out var header, out var payload))
            {
                var p = payload.ToArray();
                _received.RemoveRange(0, (int)(_received.Count - seq.Length));
                return (header, p);
            }
            int n;
            try
            {
                n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                return null;
            }
            catch (OperationCanceledException)
            {
                Assert.Fail("The peer neither sent a frame nor closed the connection in time.");
                throw;
            }
            if (n == 0)
            {
                Assert.True(_received.Count == 0, $"The connection closed in the middle of a frame ({_received.Count} bytes left).");
                return null;
            }
            _received.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }

    /// <summary>Reads frames until EOF; fails the test if the peer keeps the connection open past the bound.</summary>
    public async Task<List<(GridFrameHeader Header, byte[] Payload)>> ReadUntilClosedAsync()
    {
        var frames = new List<(GridFrameHeader, byte[])>();
        while (await ReadFrameAsync() is { } f) frames.Add(f);
        return frames;
    }

    /// <summary>Expects exactly: one connection-level Error frame with <paramref name="code"/>, then EOF.</summary>
    public async Task<GridException> ExpectErrorThenCloseAsync(GridErrorCode code)
    {
        var frames = await ReadUntilClosedAsync();
        var errors = frames.Where(f => f.Header.Type == GridFrameType.Error).ToList();
        Assert.True(errors.Count == 1, $"Expected one Error frame, got: {string.Join(", ", frames.Select(f => f.Header.Type))}");
        Assert.Equal(0UL, errors[0].Header.CorrelationId);
        var error = TransportTestKit.ReadError(errors[0].Payload);
        Assert.Equal(code, error.Code);
        return error;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A listening socket whose connections the test drives by hand (a fake silo).</summary>
internal sealed class RawListener : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public RawListener()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
    }

    public EndPoint EndPoint => _listener.LocalEndPoint!;

    public async Task<RawPeer> AcceptAsync() => new(await _listener.AcceptAsync().WaitAsync(TransportTestKit.Bound));

    public static byte[] HelloAck(ushort version = GridProtocol.Version, string name = "fake-silo")
    {
        var hello = TransportTestKit.Hello(version, name: name);
        hello[4] = (byte)GridFrameType.HelloAck;
        hello[GridProtocol.HeaderSize + 6] = (byte)GridPeerRole.Silo;
        return hello;
    }

    public void Dispose() => _listener.Dispose();
}

internal static class BinaryTestExtensions
{
    public static ulong ReadId(this ReadOnlyMemory<byte> payload) => BinaryPrimitives.ReadUInt64LittleEndian(payload.Span);
}
