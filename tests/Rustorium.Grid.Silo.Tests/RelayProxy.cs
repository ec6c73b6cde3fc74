using System.Net;
using System.Net.Sockets;
using System.Text;
using Rustorium.Grid.Runtime.Transport;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>Changes the bytes of one answer frame's payload in place.</summary>
internal delegate void RelayTamper(byte[] payload);

/// <summary>
/// Relays client connections to a silo, frame by frame: the silo's answers pass through <c>tamper</c> (which may change their
/// bytes in place) and are held back until <c>holdAnswersFor</c> has passed since the relay started; the silo's endpoint in
/// its answers (the shard map) is replaced by the relay's, so the client's shard calls come through the relay too.
/// </summary>
internal sealed class RelayProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, LoopbackPorts.Take());
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _relays = [];
    private readonly string _target;
    private readonly RelayTamper? _tamper;
    private readonly DateTime _holdUntil;

    public RelayProxy(string target, RelayTamper? tamper = null, TimeSpan holdAnswersFor = default)
    {
        _target = target;
        _tamper = tamper;
        _holdUntil = DateTime.UtcNow + holdAnswersFor;
        _listener.Start();
        Assert.Equal(target.Length, Endpoint.Length); // rewritten in place, so the encoded lengths stay right
        _relays.Add(AcceptAsync());
    }

    public string Endpoint => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Frames relayed from the silo to clients so far (answers, errors, handshakes).</summary>
    public int AnswerFrames => Volatile.Read(ref _answerFrames);

    private int _answerFrames;

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var silo = new TcpClient();
                var parts = _target.Split(':');
                await silo.ConnectAsync(parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), _stop.Token);
                lock (_relays)
                {
                    _relays.Add(client.GetStream().CopyToAsync(silo.GetStream(), _stop.Token).ContinueWith(_ => silo.Client.Shutdown(SocketShutdown.Send), TaskScheduler.Default));
                    _relays.Add(RelayAnswersAsync(silo.GetStream(), client.GetStream()));
                }
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
    }

    // Frame by frame (length-prefixed), so a value is never split across two reads.
    private async Task RelayAnswersAsync(Stream from, Stream to)
    {
        var header = new byte[GridProtocol.HeaderSize];
        try
        {
            while (true)
            {
                await from.ReadExactlyAsync(header, _stop.Token);
                var frame = GridFrameCodec.ReadHeader(header, int.MaxValue);
                var payload = new byte[frame.PayloadLength];
                await from.ReadExactlyAsync(payload, _stop.Token);
                Tamper(payload);
                var hold = _holdUntil - DateTime.UtcNow;
                if (hold > TimeSpan.Zero) await Task.Delay(hold, _stop.Token);
                await to.WriteAsync(header, _stop.Token);
                await to.WriteAsync(payload, _stop.Token);
                Interlocked.Increment(ref _answerFrames);
            }
        }
        catch (Exception)
        {
            to.Close(); // the silo closed, or the test is over
        }
    }

    private void Tamper(byte[] payload)
    {
        var silo = Encoding.ASCII.GetBytes(_target);
        for (int at = payload.AsSpan().IndexOf(silo); at >= 0; at = payload.AsSpan().IndexOf(silo))
            Encoding.ASCII.GetBytes(Endpoint).CopyTo(payload, at);
        _tamper?.Invoke(payload);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Task[] relays;
        lock (_relays) relays = [.. _relays];
        await Task.WhenAll(relays.Select(r => r.ContinueWith(_ => { }, TaskScheduler.Default))).WaitAsync(TimeSpan.FromSeconds(60));
    }
}
