using System.Buffers.Binary;
using System.Text;
using Rustorium.Grid.Runtime.Transport;
using static Rustorium.Grid.Runtime.Tests.Transport.TransportTestKit;

namespace Rustorium.Grid.Runtime.Tests.Transport;

/// <summary>
/// Raw sockets that break the protocol get an Error frame (where possible) and a close, while a well-behaved
/// client on the same server keeps being served.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MisbehavingPeerTests : IAsyncLifetime
{
    private GridServer _server = null!;
    private GridConnection _good = null!;

    public async Task InitializeAsync()
    {
        _server = StartServer(DelegateHandler.Echo, new GridServerOptions { Name = "sturdy", HandshakeTimeout = TimeSpan.FromSeconds(2) });
        _good = await ConnectAsync(_server);
    }

    public async Task DisposeAsync()
    {
        await _good.DisposeAsync();
        await _server.DisposeAsync();
    }

    private async Task GoodClientStillWorksAsync()
    {
        var calls = Enumerable.Range(0, 20).Select(i => _good.CallAsync(new[] { (byte)i, (byte)(i * 3) }, TimeSpan.FromSeconds(10))).ToArray();
        var responses = await Task.WhenAll(calls).WaitAsync(Bound);
        for (int i = 0; i < responses.Length; i++) Assert.Equal((byte)(i * 3), responses[i].Payload.Span[1]);
    }

    private async Task<GridException> MisbehaveAsync(Func<RawPeer, Task> act, GridErrorCode expected = GridErrorCode.ProtocolViolation)
    {
        await using var raw = await RawPeer.ConnectAsync(_server.LocalEndPoint);
        await act(raw);
        var error = await raw.ExpectErrorThenCloseAsync(expected);
        await GoodClientStillWorksAsync();
        return error;
    }

    private static async Task HandshakeAsync(RawPeer raw)
    {
        await raw.SendAsync(Hello());
        var ack = await raw.ReadFrameAsync();
        Assert.Equal(GridFrameType.HelloAck, ack!.Value.Header.Type);
    }

    [Fact(Timeout = 60_000)]
    public async Task GarbageInsteadOfHello()
    {
        var e = await MisbehaveAsync(raw => raw.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
        Assert.Contains("exceeds the limit", e.Message); // "GET " read as a length is ~542 MB
    }

    [Fact(Timeout = 60_000)]
    public async Task AbsurdLengthAfterTheHandshakeIsRefusedWithoutWaitingForTheBytes()
    {
        var e = await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            var header = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(header, 0xFFFF_FFF0);
            await raw.SendAsync(header); // only the prefix: the server must not wait for 4 GB
        });
        Assert.Contains("4294967280", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task LengthBelowTheMinimum()
    {
        await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            await raw.SendAsync(new byte[] { 3, 0, 0, 0, 7, 0, 0 });
        });
    }

    [Fact(Timeout = 60_000)]
    public async Task UnknownFrameType()
    {
        var e = await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            var frame = Frame(GridFrameType.Ping, 1, []);
            frame[4] = 99;
            await raw.SendAsync(frame);
        });
        Assert.Contains("99", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task TruncatedFrameThenHalfClose()
    {
        var e = await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            var frame = Request(5, 1000, new byte[100]);
            await raw.SendAsync(frame.AsMemory(0, 40));
            raw.ShutdownSend();
        });
        Assert.Contains("middle of a frame", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task RequestBeforeHello()
    {
        var e = await MisbehaveAsync(raw => raw.SendAsync(Request(1, 1000, [1, 2, 3])));
        Assert.Contains("must be Hello", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task WrongMagic()
    {
        var e = await MisbehaveAsync(raw => raw.SendAsync(Hello(magic: "HTTP")));
        Assert.Contains("magic", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task AnotherMajorVersion()
    {
        var e = await MisbehaveAsync(raw => raw.SendAsync(Hello(version: 0x0203)));
        Assert.Contains("2.3", e.Message);
        Assert.Contains("not supported", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task ALaterMinorVersionWithAppendedHelloFieldsIsAccepted()
    {
        await using var raw = await RawPeer.ConnectAsync(_server.LocalEndPoint);
        var hello = Hello(version: GridProtocol.MajorVersion << 8 | 9).Concat(new byte[] { 0xAA, 0xBB }).ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(hello, (uint)(hello.Length - 4));
        await raw.SendAsync(hello);
        var ack = await raw.ReadFrameAsync();
        Assert.Equal(GridFrameType.HelloAck, ack!.Value.Header.Type);
        await raw.SendAsync(Request(77, 5000, [4, 5, 6]));
        var response = await raw.ReadFrameAsync();
        Assert.Equal(GridFrameType.Response, response!.Value.Header.Type);
        Assert.Equal(77UL, response.Value.Header.CorrelationId);
        Assert.Equal(new byte[] { 4, 5, 6 }, response.Value.Payload);
    }

    [Fact(Timeout = 60_000)]
    public async Task AHelloLargerThanThePreHandshakeLimit()
    {
        await MisbehaveAsync(raw => raw.SendAsync(Frame(GridFrameType.Hello, 0, new byte[GridProtocol.MaxPreHandshakeFrameSize])));
    }

    [Fact(Timeout = 60_000)]
    public async Task HelloTwice()
    {
        await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            await raw.SendAsync(Hello());
        });
    }

    [Fact(Timeout = 60_000)]
    public async Task ResponseFramesFromAClient()
    {
        await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            await raw.SendAsync(Frame(GridFrameType.Response, 3, [1]));
        });
    }

    [Fact(Timeout = 60_000)]
    public async Task MalformedRequestDeadline()
    {
        await MisbehaveAsync(async raw =>
        {
            await HandshakeAsync(raw);
            await raw.SendAsync(Frame(GridFrameType.Request, 3, [0xFF, 0xFF])); // varint runs off the end
        });
    }

    [Fact(Timeout = 60_000)]
    public async Task DuplicateCorrelationIdInFlight()
    {
        // A handler that waits for the second copy to arrive makes the duplicate certain.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = StartServer(new DelegateHandler(async (_, _, ct) => await release.Task.WaitAsync(ct)));
        await using var raw = await RawPeer.ConnectAsync(server.LocalEndPoint);
        await HandshakeAsync(raw);
        await raw.SendAsync(Request(9, 0, [1]));
        await raw.SendAsync(Request(9, 0, [1]));
        var frames = await raw.ReadUntilClosedAsync();
        var error = frames.Single(f => f.Header.Type == GridFrameType.Error);
        Assert.Contains("reused", ReadError(error.Payload).Message);
        release.SetResult();
    }

    [Fact(Timeout = 60_000)]
    public async Task SilenceDuringTheHandshake()
    {
        var e = await MisbehaveAsync(_ => Task.CompletedTask); // connects and says nothing
        Assert.Contains("handshake timeout", e.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task ManyBadConnectionsAtOnce()
    {
        var bad = Enumerable.Range(0, 16).Select(async i =>
        {
            await using var raw = await RawPeer.ConnectAsync(_server.LocalEndPoint);
            await raw.TrySendAsync(i % 2 == 0 ? new byte[] { 0xFF, 0xFF, 0xFF, 0x7F } : Request(1, 1, [1]));
            await raw.ExpectErrorThenCloseAsync(GridErrorCode.ProtocolViolation);
        });
        await Task.WhenAll(bad).WaitAsync(Bound);
        await GoodClientStillWorksAsync();
        await EventuallyAsync(() => _server.ConnectionCount == 1, "only the good connection is left");
    }
}
