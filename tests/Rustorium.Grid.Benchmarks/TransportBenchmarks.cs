using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// Round trips on one loopback TCP connection: <see cref="GridCalls"/> runs <see cref="Callers"/> concurrent callers
/// through <see cref="GridConnection.CallAsync"/> against a <see cref="GridServer"/> that echoes the request body;
/// the baseline, <see cref="RawTcpEcho"/>, sends the same bytes through a bare socket echo in the same run: with
/// N callers it keeps N messages in flight (one write of N messages, read N back), the best case for raw TCP
/// with no framing, no correlation ids, no tasks. Results are per call (OperationsPerInvoke): calls/s = 1 / Mean,
/// and the Ratio column is the transport's cost relative to raw TCP.
/// Run: <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- --filter '*TransportBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
public class TransportBenchmarks
{
    private const int CallsPerInvoke = 6400; // divisible by every Callers value

    private GridServer _server = null!;
    private GridConnection _connection = null!;
    private Socket _echoListener = null!;
    private Socket _rawClient = null!;
    private Task _echoLoop = Task.CompletedTask;
    private byte[] _payload = [];
    private byte[] _rawBatch = [];
    private byte[] _rawReceive = [];

    /// <summary>Concurrent callers sharing the one connection.</summary>
    [Params(1, 16, 64)]
    public int Callers { get; set; }

    /// <summary>Request body size (the echo makes the response the same size).</summary>
    [Params(64, 1024)]
    public int PayloadBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[PayloadBytes];
        new Random(7).NextBytes(_payload);

        _server = GridServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new EchoHandler(), new GridServerOptions { Name = "bench-silo" });
        _connection = GridConnection.ConnectAsync(_server.LocalEndPoint, new GridConnectionOptions { PeerName = "bench" }).GetAwaiter().GetResult();

        _echoListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _echoListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _echoListener.Listen(1);
        _rawClient = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = _echoListener.AcceptAsync();
        _rawClient.Connect(_echoListener.LocalEndPoint!);
        var serverSide = accept.GetAwaiter().GetResult();
        serverSide.NoDelay = true;
        _echoLoop = Task.Run(() => EchoAsync(serverSide));

        _rawBatch = new byte[Callers * PayloadBytes];
        for (int i = 0; i < Callers; i++) _payload.CopyTo(_rawBatch, i * PayloadBytes);
        _rawReceive = new byte[_rawBatch.Length];
    }

    private static async Task EchoAsync(Socket socket)
    {
        var buffer = new byte[256 * 1024];
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0) break;
                var data = buffer.AsMemory(0, n);
                while (!data.IsEmpty) data = data[await socket.SendAsync(data, SocketFlags.None)..];
            }
        }
        catch (SocketException)
        {
            // Benchmark over.
        }
        finally
        {
            socket.Dispose();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _connection.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _server.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _rawClient.Shutdown(SocketShutdown.Both);
        _rawClient.Dispose();
        _echoLoop.GetAwaiter().GetResult();
        _echoListener.Dispose();
    }

    /// <summary>Raw TCP echo of the same bytes, <see cref="Callers"/> messages in flight.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = CallsPerInvoke)]
    public async Task RawTcpEcho()
    {
        for (int round = 0; round < CallsPerInvoke / Callers; round++)
        {
            ReadOnlyMemory<byte> send = _rawBatch;
            while (!send.IsEmpty) send = send[await _rawClient.SendAsync(send, SocketFlags.None)..];
            int received = 0;
            while (received < _rawReceive.Length)
            {
                int n = await _rawClient.ReceiveAsync(_rawReceive.AsMemory(received), SocketFlags.None);
                if (n == 0) throw new InvalidOperationException("The echo server closed.");
                received += n;
            }
        }
    }

    /// <summary>The grid transport: <see cref="Callers"/> concurrent callers on one connection.</summary>
    [Benchmark(OperationsPerInvoke = CallsPerInvoke)]
    public async Task GridCalls()
    {
        var callers = new Task[Callers];
        for (int c = 0; c < callers.Length; c++) callers[c] = CallerAsync(CallsPerInvoke / Callers);
        await Task.WhenAll(callers);
    }

    private async Task CallerAsync(int calls)
    {
        for (int i = 0; i < calls; i++)
        {
            using var response = await _connection.CallAsync(_payload, TimeSpan.FromSeconds(30));
            if (response.Length != PayloadBytes) throw new InvalidOperationException("Wrong echo length.");
        }
    }

    private sealed class EchoHandler : IGridRequestHandler
    {
        public ValueTask HandleAsync(ReadOnlyMemory<byte> payload, GridRequestContext context, CancellationToken cancellationToken)
        {
            var span = context.Response.GetSpan(payload.Length);
            payload.Span.CopyTo(span);
            context.Response.Advance(payload.Length);
            return ValueTask.CompletedTask;
        }
    }
}
