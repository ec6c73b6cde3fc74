using System.Collections.Concurrent;
using System.Diagnostics;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>
/// The checks every cluster test ends with, once its load stopped (ARCHITECTURE.md, invariants 1-4):
/// <list type="number">
/// <item>every acknowledged write reads back through the client with its value, and the read's proof verifies;</item>
/// <item>each shard's stored root is the sparse Merkle root of exactly its stored rows, and its key count is their number;</item>
/// <item>the directory's ranges cover the key space with no gap and no overlap;</item>
/// <item>each shard has exactly one owner, an active member whose process runs, and (once the cluster settled) each silo
/// reports active in GET /status exactly the shards it owns, at their directory epochs;</item>
/// <item>no client call failed, except with the errors the test expects.</item>
/// </list>
/// Every failure is collected, so one run reports all of them, followed by the cluster dump.
/// </summary>
internal static class ClusterInvariants
{
    private const int MaxReported = 20;

    public static async Task CheckAsync(GridCluster cluster, IReadOnlyCollection<AckedWrite> acked, IReadOnlyList<LoadError> errors,
        Func<LoadError, bool>? expected = null)
    {
        var watch = Stopwatch.StartNew();
        var failures = new List<string>();

        // (4) first: the state the cluster ends in, reached within a deadline.
        try
        {
            await cluster.WaitUntilSettledAsync(TimeSpan.FromSeconds(15));
        }
        catch (Xunit.Sdk.XunitException e)
        {
            failures.Add("(4) ownership: " + FirstLine(e.Message));
        }

        // (1) every acknowledged write, read back through a fresh client (which verifies every proof).
        var readFailures = new ConcurrentQueue<string>();
        await using (var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30)))
        {
            var queue = new ConcurrentQueue<AckedWrite>(acked);
            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                while (queue.TryDequeue(out var write))
                {
                    var key = Convert.ToHexStringLower(write.Key);
                    try
                    {
                        var read = await client.ReadAsync(write.Key);
                        if (read.Value is null || !read.Value.AsSpan().SequenceEqual(write.Value))
                            readFailures.Enqueue($"key {key} (acknowledged at shard {write.ShardId} v{write.Version}) reads " +
                                $"{(read.Value is null ? "as absent" : Convert.ToHexStringLower(read.Value))} at v{read.Version}");
                        else if (read.Version < write.Version)
                            readFailures.Enqueue($"key {key} reads at v{read.Version}, older than its acknowledged v{write.Version}");
                    }
                    catch (Exception e)
                    {
                        readFailures.Enqueue($"key {key}: the read failed: {(e as GridException)?.Code.ToString() ?? e.GetType().Name}: {e.Message}");
                    }
                }
            })));
        }
        Report(failures, "(1) acknowledged writes", readFailures.ToList());

        // (2) honest roots and key counts, recomputed from the stored rows. A shard's tree folds its committed writes after
        // the acknowledgement (docs/sharding.md); a proof read brings it up to the data it began at, so each lagging shard
        // gets one (a key of its range), and the check waits for every stored tree to reach its data version.
        var stored = await FoldedShardsAsync(cluster, failures);
        var rootFailures = new List<string>();
        long rows = 0;
        foreach (var shard in stored)
        {
            var changes = new List<SmtChange>();
            byte[] from = [];
            while (true)
            {
                var page = await cluster.Shards.ScanAsync(shard.ShardId, from, null, 1000, default);
                foreach (var row in page)
                {
                    if (!shard.Range.Contains(row.Key))
                        rootFailures.Add($"shard {shard.ShardId} holds key {Convert.ToHexStringLower(row.Key)} outside its range");
                    if (row.Version > shard.Version)
                        rootFailures.Add($"shard {shard.ShardId} (v{shard.Version}) holds key {Convert.ToHexStringLower(row.Key)} at a later v{row.Version}");
                    changes.Add(SmtChange.Insert(PoseidonBytes.Hash(row.Key), PoseidonBytes.Hash(row.Value)));
                }
                if (page.Count < 1000) break;
                from = [.. page[^1].Key, 0];
            }
            rows += changes.Count;
            var tree = new SparseMerkleTree();
            tree.ApplyBatch(changes.ToArray());
            if (tree.Root != shard.Root)
                rootFailures.Add($"shard {shard.ShardId} v{shard.Version}: stored root {shard.Root} but its {changes.Count} rows make {tree.Root}");
            if (changes.Count != shard.KeyCount)
                rootFailures.Add($"shard {shard.ShardId} v{shard.Version}: key count {shard.KeyCount} but {changes.Count} rows");
        }
        Report(failures, "(2) roots", rootFailures);

        // (3) complete routing: the directory's ranges tile the key space; it lists the store's shards. Both read at one
        // moment: the reads above take seconds, and splits and merges may still go on (a merge between the directory read
        // at the start and the store's listing made them differ without either being wrong). The directory's generation
        // moves with every change of ranges, so a pair read between two equal generations is consistent.
        Rustorium.Grid.Cluster.ShardDirectorySnapshot directory;
        IReadOnlyList<Storage.ShardState> listed;
        for (int attempt = 0; ; attempt++)
        {
            var before = await cluster.Store.ReadAsync(default);
            listed = await cluster.Shards.ListShardsAsync(default);
            directory = await cluster.Store.ReadAsync(default);
            if (before.Generation == directory.Generation || attempt == 20) break;
        }
        var rangeFailures = new List<string>();
        var ranges = directory.Shards.OrderBy(s => s.Range.Start.ToArray(), Comparer<byte[]>.Create((a, b) => KeyRange.Compare(a, b))).ToList();
        if (ranges.Count == 0) rangeFailures.Add("the directory lists no shards");
        else
        {
            if (ranges[0].Range.Start.Length != 0) rangeFailures.Add($"the first shard ({ranges[0].ShardId}) does not start at the empty key");
            for (int i = 0; i + 1 < ranges.Count; i++)
            {
                var (a, b) = (ranges[i], ranges[i + 1]);
                if (a.Range.IsUnbounded) rangeFailures.Add($"shard {a.ShardId} is unbounded but shard {b.ShardId} follows it");
                else if (KeyRange.Compare(a.Range.End, b.Range.Start) < 0) rangeFailures.Add($"gap between shard {a.ShardId} and shard {b.ShardId}");
                else if (KeyRange.Compare(a.Range.End, b.Range.Start) > 0) rangeFailures.Add($"shard {a.ShardId} overlaps shard {b.ShardId}");
            }
            if (!ranges[^1].Range.IsUnbounded) rangeFailures.Add($"the last shard ({ranges[^1].ShardId}) does not reach the end of the key space");
        }
        if (!directory.Shards.Select(s => s.ShardId).Order().SequenceEqual(listed.Select(s => s.ShardId).Order()))
            rangeFailures.Add($"the directory lists shards {string.Join(",", directory.Shards.Select(s => s.ShardId))} but the store holds {string.Join(",", listed.Select(s => s.ShardId))}");
        Report(failures, "(3) ranges", rangeFailures);

        // (5) what the client saw.
        Report(failures, "(5) client errors", errors.Where(e => expected is null || !expected(e)).Select(e => e.ToString()).ToList());

        cluster.Log($"invariants: {acked.Count} acknowledged writes read back and verified, {stored.Count} shards' roots recomputed " +
            $"from {rows} rows, {errors.Count} client errors ({errors.Count(e => expected is not null && expected(e))} expected); " +
            $"{failures.Count} problems; checked in {watch.Elapsed.TotalSeconds:0.0} s");
        if (failures.Count > 0)
            throw new Xunit.Sdk.XunitException($"Cluster invariants violated:\n{string.Join('\n', failures)}\n{await cluster.DumpAsync()}");
    }

    private static void Report(List<string> failures, string check, IReadOnlyList<string> found)
    {
        if (found.Count == 0) return;
        failures.Add($"{check}: {found.Count} violations" + (found.Count > MaxReported ? $" (first {MaxReported})" : "") + ":");
        failures.AddRange(found.Take(MaxReported).Select(f => "    " + f));
    }

    private static async Task<IReadOnlyList<Storage.ShardState>> FoldedShardsAsync(GridCluster cluster, List<string> failures)
    {
        var deadline = Stopwatch.StartNew();
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        while (true)
        {
            var shards = await cluster.Shards.ListShardsAsync(default);
            var lagging = shards.Where(s => s.HasUnfolded).ToList();
            if (lagging.Count == 0) return shards;
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                failures.Add("(2) roots: trees still behind their data after 30 s: " +
                    string.Join(", ", lagging.Select(s => $"shard {s.ShardId} tree v{s.TreeVersion} < v{s.Version}")));
                return shards;
            }
            foreach (var shard in lagging)
            {
                byte[] key = shard.Range.Start.Length > 0 ? shard.Range.Start.ToArray() : [0];
                try
                {
                    await client.ReadAsync(key);
                }
                catch (GridException)
                {
                    // Moving or not served yet: the next round asks again.
                }
            }
            await Task.Delay(50);
        }
    }

    private static string FirstLine(string message) => message.Split('\n')[0];
}
