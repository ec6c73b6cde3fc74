using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Transport;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>The real silo executable: start, health, status, SIGTERM, clean exit, and the store afterwards.</summary>
[Trait("Category", "Cluster")]
public sealed class SiloProcessTests : IDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Key(int i) => [(byte)(i * 37 % 256), .. Encoding.UTF8.GetBytes($"key-{i}")];

    private static byte[] Value(int i) => Encoding.UTF8.GetBytes($"value-{i}");

    [Fact]
    public async Task ServesTheGridAndStatusStopsCleanlyOnSigtermAndTheStoreReopensWithEveryWrite()
    {
        var data = Path.Combine(_dir.Path, "data");
        const int seeded = 20, remote = 40, unsynced = 30;

        // Data written before the process starts (the local path), which the process must serve as stored.
        IReadOnlyList<ShardState> before;
        await using (var local = await LocalShardSilo.StartAsync(data))
        {
            for (int i = 0; i < seeded; i++) await local.Shard(Key(i)).PutAsync(Key(i), Value(i), SyncMode.Full, default);
            await local.DeactivateAllAsync();
            before = await local.Store.ListShardsAsync(default);
        }
        Assert.Equal(seeded, before.Sum(s => s.KeyCount));

        await using (var silo = SiloProcess.Start(data))
        {
            await silo.WaitUntilHealthyAsync(StartDeadline);

            // The status reports the stored state of every shard and activates nothing.
            var status = await ReadStatusAsync(silo);
            Assert.Equal("proc-silo", status.GetProperty("silo").GetString());
            Assert.Equal("test-region", status.GetProperty("region").GetString());
            Assert.Equal($"127.0.0.1:{silo.Port}", status.GetProperty("endpoint").GetString());
            Assert.Equal(data, status.GetProperty("dataDirectory").GetString());
            Assert.True(status.GetProperty("started").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-10));
            var shards = status.GetProperty("shards").EnumerateArray().ToArray();
            Assert.Equal(before.Count, shards.Length);
            for (int i = 0; i < shards.Length; i++)
            {
                var shard = shards[i];
                var stored = before[i];
                Assert.Equal(stored.ShardId, shard.GetProperty("id").GetInt64());
                Assert.Equal(Convert.ToHexStringLower(stored.Range.Start), shard.GetProperty("range").GetProperty("start").GetString());
                var end = shard.GetProperty("range").GetProperty("end");
                if (stored.Range.IsUnbounded) Assert.Equal(JsonValueKind.Null, end.ValueKind);
                else Assert.Equal(Convert.ToHexStringLower(stored.Range.End), end.GetString());
                Assert.Equal(stored.Version, shard.GetProperty("version").GetInt64());
                Assert.Equal(stored.Version, shard.GetProperty("treeVersion").GetInt64());   // the tree commits with the rows
                Assert.Equal(stored.Root.ToString(), shard.GetProperty("root").GetString());
                Assert.Equal(stored.KeyCount, shard.GetProperty("keyCount").GetInt64());
                Assert.Equal(stored.Epoch, shard.GetProperty("epoch").GetInt64());
                Assert.False(shard.GetProperty("active").GetBoolean());
            }
            Assert.Equal("", shards[0].GetProperty("range").GetProperty("start").GetString());
            Assert.Equal(JsonValueKind.Null, shards[^1].GetProperty("range").GetProperty("end").ValueKind);
            // The store's statistics count from this start: nothing written yet.
            var store = status.GetProperty("store");
            Assert.Equal("sqlite", store.GetProperty("provider").GetString());
            Assert.Equal(Path.Combine(data, "shards.db"), store.GetProperty("location").GetString());
            Assert.Equal(0, store.GetProperty("rowsWritten").GetInt64());
            // The process's own use: starting took CPU time and allocations.
            var process = status.GetProperty("process");
            double cpuAtStart = process.GetProperty("cpuSeconds").GetDouble();
            Assert.True(cpuAtStart > 0, process.ToString());
            Assert.True(process.GetProperty("allocatedBytes").GetInt64() > 0, process.ToString());
            Assert.True(process.GetProperty("workingSetBytes").GetInt64() > 0, process.ToString());
            Assert.True(process.GetProperty("processors").GetInt32() >= 1, process.ToString());
            Assert.True(process.GetProperty("gcPauseSeconds").GetDouble() >= 0, process.ToString());

            // The grid protocol: the shard map, then writes and verified reads routed by it.
            await using (var client = await GrainClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, silo.Port),
                             new GridConnectionOptions { PeerName = "silo-process-test" }))
            {
                var map = await client.GetGrain<IClusterGrain>(0).GetShardMapAsync(default);
                Assert.Equal(before.Select(s => s.ShardId), map.Shards.Select(e => e.ShardId));
                Assert.All(map.Shards, e => Assert.Equal($"127.0.0.1:{silo.Port}", e.Endpoint));
                IShardGrain ShardOf(byte[] key) => client.GetGrain<IShardGrain>(map.Locate(key).ShardId);

                var seededRead = await ShardOf(Key(0)).ReadAsync(Key(0), true, default);
                seededRead.Proof!.EnsureVerifies(Key(0), Value(0));
                for (int i = seeded; i < seeded + remote; i++) await ShardOf(Key(i)).PutAsync(Key(i), Value(i), SyncMode.Full, default);
                var proven = await ShardOf(Key(seeded)).WriteWithProofAsync(Key(seeded), Value(seeded), default);
                proven.Proof.EnsureVerifies(Key(seeded), Value(seeded));
                var wrongShard = await Assert.ThrowsAsync<GridException>(() =>
                    client.GetGrain<IShardGrain>(map.Shards[0].ShardId).PutAsync([0xff, 1], [1], SyncMode.Full, default));
                Assert.Equal(GridErrorCode.NotOwner, wrongShard.Code);
                // Acknowledged before they are committed: the shutdown must still commit them.
                for (int i = seeded + remote; i < seeded + remote + unsynced; i++)
                    await ShardOf(Key(i)).PutAsync(Key(i), Value(i), SyncMode.None, default);
            }

            status = await ReadStatusAsync(silo);
            Assert.Contains(status.GetProperty("shards").EnumerateArray(), s => s.GetProperty("active").GetBoolean());
            // Every acknowledged Full write (and the proven one) was committed; the None writes may not be yet.
            store = status.GetProperty("store");
            Assert.InRange(store.GetProperty("rowsWritten").GetInt64(), remote + 1, remote + 1 + unsynced);
            Assert.True(store.GetProperty("dataCommits").GetInt64() >= 1);
            Assert.True(store.GetProperty("dataCommitSeconds").GetDouble() > 0);
            Assert.True(store.GetProperty("syncSeconds").GetDouble() > 0);
            // Serving those calls cost the process CPU time since the first reading.
            Assert.True(status.GetProperty("process").GetProperty("cpuSeconds").GetDouble() > cpuAtStart);

            await silo.TerminateAsync();
            int exit = await silo.WaitForExitAsync(StopDeadline);
            Assert.True(exit == 0, $"exit code {exit}:\n{silo.Output}");
            var output = silo.Output;
            Assert.Contains($"Grid protocol: tcp://127.0.0.1:{silo.Port}", output);
            Assert.Contains($"Status: http://127.0.0.1:{silo.HttpPort}/status", output);
            Assert.Contains($"Data directory: {data}", output);
            Assert.Contains("stopped", output);
        }

        await using (var reopened = await LocalShardSilo.StartAsync(data))
        {
            var after = await reopened.Store.ListShardsAsync(default);
            Assert.Equal(seeded + remote + unsynced, after.Sum(s => s.KeyCount));
            for (int i = 0; i < seeded + remote + unsynced; i++)
            {
                var read = await reopened.Shard(Key(i)).ReadAsync(Key(i), true, default);
                read.Proof!.EnsureVerifies(Key(i), Value(i));
            }
        }
    }

    private static async Task<JsonElement> ReadStatusAsync(SiloProcess silo)
    {
        using var document = JsonDocument.Parse(await silo.Http.GetStringAsync("/status"));
        return document.RootElement.Clone();
    }

    [Fact]
    public async Task APortInUseStopsTheStartWithAMessageAndExitCode2()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;

        await using var silo = SiloProcess.Start(Path.Combine(_dir.Path, "data"), "--port", port.ToString());
        int exit = await silo.WaitForExitAsync(StartDeadline);
        Assert.True(exit == SiloExitCode.InvalidConfiguration, $"exit code {exit}:\n{silo.Output}");
        Assert.Contains($"Silo:Port: port {port} on 127.0.0.1 is already in use", silo.Output);
        Assert.DoesNotContain("   at ", silo.Output);
        Assert.False(File.Exists(Path.Combine(_dir.Path, "data", "shards.db")));   // nothing was created
    }
}
