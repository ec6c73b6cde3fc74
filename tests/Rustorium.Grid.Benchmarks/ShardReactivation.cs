using System.Diagnostics;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// End-to-end check of the re-activation goal: build one shard of N keys (16-byte keys, 100-byte values, grid
/// bytes-to-field mapping) on disk through <see cref="SqliteShardStore"/> and <see cref="ShardTreeNodeStore"/>, close
/// it, reopen it and prove keys from the stored root — no rebuild, no rehash.
/// Run with <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- reactivate [keys] [directory]</c>.
/// </summary>
public static class ShardReactivation
{
    public static async Task RunAsync(int keys, string? directory)
    {
        const int perCommit = 50_000;
        var dir = directory ?? Directory.CreateTempSubdirectory("rustorium-reactivate-").FullName;
        var options = new SqliteShardStoreOptions { DataDirectory = dir };
        var rng = new Random(1);
        var probe = new List<(byte[] Key, byte[] Value)>();
        var clock = Stopwatch.StartNew();

        await using (var store = await SqliteShardStore.OpenAsync(options, CancellationToken.None))
        {
            var shard = await store.ClaimAsync((await store.InitializeAsync([KeyRange.All], CancellationToken.None))[0].ShardId, CancellationToken.None);
            using var nodes = ShardTreeNodeStore.Open(store, shard);
            var tree = new SparseMerkleTree(nodes);
            TimeSpan hashing = TimeSpan.Zero, storing = TimeSpan.Zero;
            for (int done = 0; done < keys; done += perCommit)
            {
                int n = Math.Min(perCommit, keys - done);
                var rowKeys = new byte[n][];
                var rowValues = new byte[n][];
                for (int i = 0; i < n; i++)
                {
                    rng.NextBytes(rowKeys[i] = new byte[16]);
                    rng.NextBytes(rowValues[i] = new byte[100]);
                }
                for (int i = 0; i < Math.Min(n, 50); i++) probe.Add((rowKeys[i], rowValues[i]));

                var step = Stopwatch.StartNew();
                var keyFields = new Fr[n];
                var valueFields = new Fr[n];
                PoseidonBytes.HashMany(rowKeys, keyFields);
                PoseidonBytes.HashMany(rowValues, valueFields);
                var changes = new SmtChange[n];
                for (int i = 0; i < n; i++) changes[i] = SmtChange.Insert(keyFields[i], valueFields[i]);
                tree.ApplyBatch(changes);
                var staged = nodes.TakeStaged();
                hashing += step.Elapsed;

                step.Restart();
                var rows = new RowWrite[n];
                for (int i = 0; i < n; i++) rows[i] = new RowWrite(rowKeys[i], rowValues[i]);
                await store.CommitAsync(new ShardCommit
                {
                    ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedVersion = shard.Version, NewVersion = shard.Version + 1,
                    NewRoot = staged.NewRoot, NewKeyCount = shard.KeyCount + n, TimestampMicros = shard.Version + 1,
                    Rows = rows, AddedNodes = staged.AddedNodes, RemovedPositions = staged.RemovedPositions,
                }, CancellationToken.None);
                nodes.AcceptStaged();
                storing += step.Elapsed;
                shard = shard with { Version = shard.Version + 1, KeyCount = shard.KeyCount + n, Root = staged.NewRoot };
                Console.Write($"\r{done + n:N0} keys: {hashing.TotalSeconds:F0} s hashing, {storing.TotalSeconds:F0} s storing");
            }
            Console.WriteLine();
        }
        var file = options.ResolveFilePath();
        Console.WriteLine($"built {keys:N0} keys in {clock.Elapsed.TotalSeconds:F0} s; {file}: {new FileInfo(file).Length / (1024.0 * 1024):F0} MiB");

        foreach (var check in new[] { SqliteIntegrityCheck.None, SqliteIntegrityCheck.Quick })
        {
            clock.Restart();
            await using var store = await SqliteShardStore.OpenAsync(options with { IntegrityCheck = check }, CancellationToken.None);
            var opened = clock.Elapsed;
            clock.Restart();
            var state = (await store.ListShardsAsync(CancellationToken.None))[0];
            using var nodes = ShardTreeNodeStore.Open(store, state);
            var tree = new SparseMerkleTree(nodes);
            var activated = clock.Elapsed;
            clock.Restart();
            var proof = tree.Prove(PoseidonBytes.Hash(probe[0].Key));
            var firstProof = clock.Elapsed;
            long firstReads = nodes.StoreReads;
            if (!proof.Exists || proof.Value != PoseidonBytes.Hash(probe[0].Value) || !proof.VerifyAgainst(state.Root))
                throw new InvalidOperationException("The proof after re-activation does not verify.");

            clock.Restart();
            foreach (var (key, _) in probe) tree.Prove(PoseidonBytes.Hash(key));
            var perProof = clock.Elapsed / probe.Count;
            Console.WriteLine(
                $"open (integrity {check}): {opened.TotalMilliseconds:F0} ms; activate shard: {activated.TotalMilliseconds:F2} ms; " +
                $"first proof: {firstProof.TotalMilliseconds:F1} ms, {firstReads} node reads, depth {proof.Depth}; " +
                $"then {probe.Count} proofs: {perProof.TotalMilliseconds:F2} ms each (incl. key hash), " +
                $"{(nodes.StoreReads - firstReads) / (double)probe.Count:F1} node reads each, cache {nodes.CachedNodes:N0} nodes");
        }
        if (directory is null) Directory.Delete(dir, recursive: true);
    }
}
