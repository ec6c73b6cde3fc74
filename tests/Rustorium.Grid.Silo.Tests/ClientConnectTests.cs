using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Rustorium.Grid.Client;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>Connecting to a silo that accepts the connection but answers slowly (just started, busy cores) or never (paused).</summary>
public sealed class ClientConnectTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ASiloThatAnswersTheShardMapLaterThanOneRefreshTimeoutIsAskedAgainWithMorePatience()
    {
        using var dir = new TempDirectory("rgrid-connect-");
        using var stop = new CancellationTokenSource();
        var errors = new StringWriter();
        var (run, endpoint) = await ClientProofVerificationTests.StartSiloAsync(dir.Path, stop.Token, errors);
        try
        {
            // Its answers are held back for 1.5 s: more than the 0.3 s a silo is given per refresh, less than the call timeout.
            await using var slow = new RelayProxy(endpoint, holdAnswersFor: TimeSpan.FromSeconds(1.5));
            var options = new GridClientOptions { MapRefreshTimeout = TimeSpan.FromSeconds(0.3), CallTimeout = TimeSpan.FromSeconds(30) };
            await using var client = await GridClient.ConnectAsync([slow.Endpoint], options).WaitAsync(Deadline);
            Assert.NotEmpty(client.ShardMap.Shards);
            await client.PutAsync("after a slow start"u8.ToArray(), [1, 2, 3]);
            Assert.Equal([1, 2, 3], await client.GetAsync("after a slow start"u8.ToArray()));
        }
        finally
        {
            stop.Cancel();
            await run.WaitAsync(Deadline);
        }
    }

    [Fact]
    public async Task ASiloThatNeverAnswersFailsTheConnectWithUnavailableOnceTheCallTimeoutIsSpent()
    {
        // Accepts connections and never says a word, as a paused (SIGSTOPped) silo's kernel does.
        var listener = new TcpListener(IPAddress.Loopback, LoopbackPorts.Take());
        listener.Start();
        var accepted = new List<TcpClient>();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true) accepted.Add(await listener.AcceptTcpClientAsync());
            }
            catch (Exception)
            {
                // stopped
            }
        });
        try
        {
            var options = new GridClientOptions { MapRefreshTimeout = TimeSpan.FromSeconds(0.25), CallTimeout = TimeSpan.FromSeconds(2) };
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<GridException>(() => GridClient.ConnectAsync([$"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}"], options)).WaitAsync(Deadline);
            Assert.Equal(GridErrorCode.Unavailable, error.Code);
            Assert.Contains("did not answer the shard map", error.Message);
            Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.5), $"Gave up after {clock.Elapsed.TotalSeconds:0.00} s, before the 2 s call timeout.");
        }
        finally
        {
            listener.Stop();
            await accepting.WaitAsync(Deadline);
            foreach (var c in accepted) c.Dispose();
        }
    }
}
