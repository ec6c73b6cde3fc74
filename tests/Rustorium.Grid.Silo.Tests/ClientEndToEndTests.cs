using System.Collections.Concurrent;
using System.Text;
using Rustorium.Grid.Client;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage.Sqlite;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>The client library against the real silo process over TCP: routing, verification, restarts and a crash.</summary>
[Trait("Category", "Cluster")]
public sealed class ClientEndToEndTests : IDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new("rgrid-client-");

    public void Dispose() => _dir.Dispose();

    private string Data => Path.Combine(_dir.Path, "data");

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task<GridClient> ConnectAsync(int port) =>
        await GridClient.ConnectAsync([$"127.0.0.1:{port}"], new GridClientOptions { CallTimeout = TimeSpan.FromSeconds(60) });

    [Fact]
    public async Task VerifiedReadsWritesBatchesAndScansAcrossShards()
    {
        await using var silo = SiloProcess.Start(Data);
        await silo.WaitUntilHealthyAsync(StartDeadline);
        await using var grid = await ConnectAsync(silo.Port);
        Assert.True(grid.ShardMap.Shards.Length >= 2);

        // Keys whose first bytes land in different shards.
        var keys = Enumerable.Range(0, 64).Select(i => new byte[] { (byte)(i * 4), (byte)'k', (byte)i }).ToArray();
        foreach (var k in keys) await grid.PutAsync(k, [.. k, 0xEE]);
        foreach (var k in keys.Take(10)) Assert.Equal([.. k, 0xEE], await grid.GetAsync(k));

        var read = await grid.ReadAsync(keys[5]);
        Assert.NotNull(read.Proof);
        Assert.True(read.Proof!.Verifies(keys[5], read.Value));
        Assert.False(read.Proof.Verifies(keys[5], [1, 2, 3]));

        var proven = await grid.WriteWithProofAsync(B("proved"), B("value"));
        Assert.Equal(proven.Write.Version, proven.Proof.Version);

        await grid.DeleteAsync(keys[0]);
        Assert.Null(await grid.GetAsync(keys[0]));

        var scanned = new List<KeyValue>();
        await foreach (var kv in grid.ScanAsync([], null)) scanned.Add(kv);
        Assert.Equal(keys.Length - 1 + 1, scanned.Count);
        Assert.True(scanned.Zip(scanned.Skip(1)).All(p => KeyRange.Compare(p.First.Key, p.Second.Key) < 0), "scan is not in key order");

        // A batch inside one shard is atomic; one spanning shards or holding a bad value is refused whole.
        await grid.BatchAsync([BatchOperation.Put([0x01, 1], B("a")), BatchOperation.Put([0x01, 2], B("b"))]);
        Assert.Equal(B("b"), await grid.GetAsync([0x01, 2]));
        var spanning = await Assert.ThrowsAsync<GridException>(() => grid.BatchAsync([BatchOperation.Put([0x01, 3], B("x")), BatchOperation.Put([0xf0, 3], B("y"))]));
        Assert.Equal(GridErrorCode.InvalidArgument, spanning.Code);
        var oversized = await Assert.ThrowsAsync<GridException>(() => grid.PutAsync(B("big"), new byte[GridLimits.Default.MaxValueBytes + 1]));
        Assert.Equal(GridErrorCode.InvalidArgument, oversized.Code);
        Assert.Null(await grid.GetAsync([0x01, 3]));
    }

    [Fact]
    public async Task TheClientReconnectsAfterTheSiloRestarts()
    {
        int port = LoopbackPorts.Take(), http = LoopbackPorts.Take();
        var silo = SiloProcess.StartOn(Data, port, http);
        await silo.WaitUntilHealthyAsync(StartDeadline);
        await using var grid = await ConnectAsync(port);
        await grid.PutAsync(B("survives"), B("restart"));

        await silo.TerminateAsync();
        Assert.Equal(0, await silo.WaitForExitAsync(StopDeadline));
        await silo.DisposeAsync();

        await using var again = SiloProcess.StartOn(Data, port, http);
        await again.WaitUntilHealthyAsync(StartDeadline);
        Assert.Equal(B("restart"), await grid.GetAsync(B("survives")));
        await grid.PutAsync(B("after"), B("restart"));
        Assert.Equal(B("restart"), await grid.GetAsync(B("after")));
    }

    [Fact]
    public async Task AfterASigkillUnderWriteLoadEveryAcknowledgedWriteIsThereNoBatchIsHalfAndEveryRootIsHonest()
    {
        int port = LoopbackPorts.Take(), http = LoopbackPorts.Take();
        var silo = SiloProcess.StartOn(Data, port, http);
        await silo.WaitUntilHealthyAsync(StartDeadline);
        var grid = await ConnectAsync(port);

        // Writers put batches of three keys (same shard: same first byte) until the silo dies under them.
        var acknowledged = new ConcurrentBag<int>();
        var unexpected = new ConcurrentBag<Exception>();
        bool killed = false;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                int batch = w * 1_000_000 + i;
                try
                {
                    await grid.BatchAsync(BatchKeys(batch).Select(k => BatchOperation.Put(k, BitConverter.GetBytes(batch))).ToList(), SyncMode.Full, stop.Token);
                    acknowledged.Add(batch);
                }
                catch (Exception ex)
                {
                    if (Volatile.Read(ref killed) || stop.IsCancellationRequested) return; // not acknowledged: may or may not be there
                    unexpected.Add(ex);
                    return;
                }
            }
        })).ToArray();

        // Let the load build up (at least 200 acknowledged batches), then kill without warning.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (acknowledged.Count < 200 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.True(acknowledged.Count >= 200, $"only {acknowledged.Count} batches acknowledged before the deadline");
        Volatile.Write(ref killed, true);
        await silo.DisposeAsync(); // SIGKILL
        stop.Cancel();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        await grid.DisposeAsync();
        var acked = acknowledged.ToArray();
        Assert.Empty(unexpected);

        // Restart on the same data: every acknowledged batch is there, whole, with a verified proof.
        await using (var again = SiloProcess.StartOn(Data, port, http))
        {
            await again.WaitUntilHealthyAsync(StartDeadline);
            await using var reader = await ConnectAsync(port);
            foreach (var batch in acked)
                foreach (var key in BatchKeys(batch))
                    Assert.Equal(BitConverter.GetBytes(batch), await reader.GetAsync(key)); // GetAsync verifies the proof
            await again.TerminateAsync();
            Assert.Equal(0, await again.WaitForExitAsync(StopDeadline));
        }

        // Straight from the store: no half batch anywhere, and each shard's root is the tree of exactly its rows.
        await using var store = await SqliteShardStore.OpenAsync(new SqliteShardStoreOptions { DataDirectory = Data }, default);
        var seen = new Dictionary<int, int>();
        foreach (var shard in await store.ListShardsAsync(default))
        {
            var tree = new SparseMerkleTree();
            var changes = new List<SmtChange>();
            byte[] from = [];
            while (true)
            {
                var rows = await store.ScanAsync(shard.ShardId, from, null, 1000, default);
                foreach (var row in rows)
                {
                    changes.Add(SmtChange.Insert(PoseidonBytes.Hash(row.Key), PoseidonBytes.Hash(row.Value)));
                    int batch = BitConverter.ToInt32(row.Value);
                    seen[batch] = seen.GetValueOrDefault(batch) + 1;
                }
                if (rows.Count < 1000) break;
                from = [.. rows[^1].Key, 0];
            }
            tree.ApplyBatch(changes.ToArray());
            Assert.Equal(tree.Root, shard.Root);
            Assert.Equal(changes.Count, shard.KeyCount);
        }
        Assert.All(seen, kv => Assert.Equal(3, kv.Value));
        Assert.True(acked.All(seen.ContainsKey));
    }

    /// <summary>Three keys of one batch, all with the batch's first byte (so in one shard).</summary>
    private static byte[][] BatchKeys(int batch)
    {
        byte first = (byte)(batch * 131 % 256);
        return [.. Enumerable.Range(0, 3).Select(j => (byte[])[first, .. BitConverter.GetBytes(batch), (byte)j])];
    }
}
