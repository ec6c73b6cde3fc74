using System.Net;
using System.Net.Sockets;
using System.Text;
using Rustorium.Grid.Client;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>
/// Garbage on the wire against the real silo process (the transport's own tests cover each malformation in-process):
/// raw sockets send random bytes, absurd lengths, truncated frames, unknown frame types and garbage grain-call bodies
/// after a valid handshake, while a well-behaved client keeps writing. Every bad peer gets an error or a closed
/// connection, every write of the good client is acknowledged and readable with a proof, and the silo stays healthy.
/// </summary>
public sealed class WireAbuseProcessTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rgrid-wire-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task BadPeersAreRefusedWhileAGoodClientKeepsBeingServed()
    {
        await using var silo = SiloProcess.Start(_dir);
        await silo.WaitUntilHealthyAsync(TimeSpan.FromSeconds(60));
        var endpoint = new IPEndPoint(IPAddress.Loopback, silo.Port);
        await using var client = await GridClient.ConnectAsync([$"127.0.0.1:{silo.Port}"]);

        using var stop = new CancellationTokenSource();
        var acknowledged = new List<(byte[] Key, byte[] Value)>();
        var writer = Task.Run(async () =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                var key = Encoding.UTF8.GetBytes($"good-{i:D6}");
                var value = Encoding.UTF8.GetBytes($"value-{i}");
                await client.PutAsync(key, value);
                lock (acknowledged) acknowledged.Add((key, value));
            }
        });

        var random = new Random(20261121);
        var abuses = new List<Func<Socket, Task>>
        {
            s => SendAsync(s, RandomBytes(random, 1 + random.Next(4096))),
            s => SendAsync(s, Encoding.ASCII.GetBytes("GET /status HTTP/1.1\r\nHost: silo\r\n\r\n")),
            async s => { await SendAsync(s, Hello()); await SendAsync(s, new byte[] { 0xF0, 0xFF, 0xFF, 0xFF }); },          // absurd length, no bytes
            async s => { await SendAsync(s, Hello()); await SendAsync(s, Frame((GridFrameType)99, 1, [1, 2, 3])); }, // unknown type
            async s => { await SendAsync(s, Hello()); var f = Request(3, RandomBytes(random, 200)); await SendAsync(s, f.AsMemory(0, 50)); s.Shutdown(SocketShutdown.Send); },
            async s => { await SendAsync(s, Hello()); for (ulong id = 1; id <= 20; id++) await SendAsync(s, Request(id, RandomBytes(random, random.Next(1, 300)))); },
            async s => { await SendAsync(s, Hello()); await SendAsync(s, RandomBytes(random, 2000)); },
        };
        int answeredOrClosed = 0;
        for (int round = 0; round < 6; round++)
        {
            foreach (var abuse in abuses)
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(endpoint);
                await abuse(socket);
                // The silo answers (an error frame, or error responses to garbage calls) and/or closes; it never hangs us.
                if (await DrainUntilClosedOrQuietAsync(socket, TimeSpan.FromSeconds(10))) answeredOrClosed++;
            }
        }
        // A call to an unknown grain type with a well-formed request is an error response on an open connection; every
        // other abuse is a protocol violation, answered with an error frame and a close.
        Assert.Equal(abuses.Count * 6, answeredOrClosed);

        stop.Cancel();
        await writer;
        Assert.True(acknowledged.Count > 0, "the good client wrote nothing");
        foreach (var (key, value) in acknowledged)
        {
            var read = await client.ReadAsync(key); // verifies the proof
            Assert.Equal(value, read.Value);
        }
        var health = await silo.Http.GetStringAsync("/health");
        Assert.Equal("ok", health);
        Assert.False(silo.HasExited);
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static async Task SendAsync(Socket socket, ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await socket.SendAsync(bytes);
        }
        catch (SocketException)
        {
            // The silo may close on the first bad byte; the rest of the garbage has nowhere to go.
        }
    }

    /// <summary>Reads until the silo closes the connection (true) or at least one byte came and then 1 s passed quietly (true); false at the deadline with nothing.</summary>
    private static async Task<bool> DrainUntilClosedOrQuietAsync(Socket socket, TimeSpan deadline)
    {
        var buffer = new byte[8192];
        bool received = false;
        using var timeout = new CancellationTokenSource(deadline);
        while (true)
        {
            using var quiet = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
            if (received) quiet.CancelAfter(TimeSpan.FromSeconds(1));
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, quiet.Token);
            }
            catch (OperationCanceledException)
            {
                return received;
            }
            catch (SocketException)
            {
                return true; // reset by the silo
            }
            if (n == 0) return true;
            received = true;
        }
    }

    private static byte[] Hello()
    {
        using var payload = new PooledBufferWriter();
        var w = new GridWriter(payload);
        w.WriteRaw("RGRD"u8);
        w.WriteUInt16(GridProtocol.Version);
        w.WriteByte((byte)GridPeerRole.Client);
        w.WriteString("abuser");
        w.WriteVarUInt32((uint)GridProtocol.DefaultMaxFrameSize);
        w.Commit();
        return Frame(GridFrameType.Hello, 0, payload.WrittenSpan);
    }

    private static byte[] Request(ulong id, ReadOnlySpan<byte> body)
    {
        using var payload = new PooledBufferWriter();
        var w = new GridWriter(payload);
        w.WriteVarUInt32(5000);
        w.WriteRaw(body);
        w.Commit();
        return Frame(GridFrameType.Request, id, payload.WrittenSpan);
    }

    private static byte[] Frame(GridFrameType type, ulong id, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[GridProtocol.HeaderSize + payload.Length];
        GridFrameCodec.WriteHeader(bytes, type, GridFrameFlags.None, id, payload.Length);
        payload.CopyTo(bytes.AsSpan(GridProtocol.HeaderSize));
        return bytes;
    }
}
