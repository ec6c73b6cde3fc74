using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Transport;
using Xunit.Abstractions;
using MemberStatus = Rustorium.Grid.Cluster.SiloStatus;

namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>
/// Three silo processes on one PostgreSQL database, under a concurrent write load, through a crash (SIGKILL), a pause
/// (SIGSTOP then SIGCONT), a join, a clean leave (SIGTERM) and an operator's shard move. Each ends with
/// <see cref="ClusterInvariants"/>; timings (failover, moves) go to the test output.
/// </summary>
/// <remarks>
/// The pause test also guards a liveness fix: PostgreSQL starts executing a commit's statement pipeline (the first
/// statement locks the shard's row) before the silo has sent all of it, and a silo frozen half-way through sending leaves
/// its session waiting inside the transaction where no server timeout ends it. Declaring the silo dead therefore ends its
/// sessions (they carry its address as application_name), so the new owner's claim never waits for the frozen silo.
/// </remarks>
[Collection(ClusterTestCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ClusterFaultTests(ITestOutputHelper output)
{
    /// <summary>The longest a crashed silo's shards may stay unavailable: detection takes DeathTimeout plus a heartbeat round, then a claim and the client's backoff.</summary>
    private static readonly TimeSpan FailoverBound = GridCluster.DeathTimeout + TimeSpan.FromSeconds(5);

    private static readonly TimeSpan LoadDeadline = TimeSpan.FromSeconds(20);

    /// <summary>The shard store's idle_in_transaction_session_timeout (the silo uses the store's default).</summary>

    [Fact]
    public Task AKilledSilosShardsFailOverWithinTheDeathTimeoutAndNoAcknowledgedWriteIsLost() => RunAsync(async cluster =>
    {
        await cluster.StartSilosAsync(3, rebalance: false);
        var before = await cluster.BalanceAsync();
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "kill");
        await load.WaitForWritesAsync(300, LoadDeadline);

        var (victim, shards) = cluster.OwnedBySilo(before).OrderByDescending(p => p.Value.Count).First();
        // The probe connects before the crash, so its shard map still sends it to the dead silo (as any client's would).
        await using var probe = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        cluster.Log($"SIGKILL {victim.Name}, owner of shards {string.Join(",", shards.Select(s => s.ShardId))}; load so far: {load.Summary()}");
        var killed = Stopwatch.StartNew();
        await victim.KillAsync();

        var failovers = await Task.WhenAll(shards.Select(async shard =>
        {
            await probe.ReadAsync(ProbeKey(shard));
            return (shard.ShardId, Elapsed: killed.Elapsed);
        }));
        var failover = failovers.Max(f => f.Elapsed);
        foreach (var (shardId, elapsed) in failovers.OrderBy(f => f.ShardId))
            cluster.Log($"failover: shard {shardId} answers a read again {elapsed.TotalSeconds:0.000} s after the kill");
        cluster.Log($"failover time: {failover.TotalSeconds:0.000} s for {shards.Count} shards (death timeout {GridCluster.DeathTimeout.TotalSeconds} s, " +
            $"heartbeat {GridCluster.HeartbeatInterval.TotalSeconds} s, bound {FailoverBound.TotalSeconds} s)");
        output.WriteLine($"FAILOVER kill: {failover.TotalMilliseconds:0} ms");

        await load.WaitForWritesAsync(300, LoadDeadline);
        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());

        var members = await cluster.Store.ReadAllAsync(default);
        Assert.Contains(members, m => m.Address.Endpoint == victim.Endpoint && m.Status == MemberStatus.Dead);
        var after = await cluster.Store.ReadAsync(default);
        foreach (var shard in shards)
        {
            var now = after.Shards.Single(s => s.ShardId == shard.ShardId);
            Assert.NotEqual(victim.Endpoint, now.Owner?.Endpoint);
            Assert.True(now.Epoch > shard.Epoch, $"shard {shard.ShardId} changed owner without a new epoch ({shard.Epoch} -> {now.Epoch})");
        }
        Assert.True(failover < FailoverBound, $"failover took {failover.TotalSeconds:0.000} s, more than {FailoverBound.TotalSeconds} s");
        await ClusterInvariants.CheckAsync(cluster, load.Acked.Values.ToList(), load.Errors);
    });

    [Fact]
    public Task APausedOwnerIsFencedWhenItResumesItsLateWritesAreNotAppliedAndItExitsDeclaredDead() => RunAsync(async cluster =>
    {
        await cluster.StartSilosAsync(3, rebalance: false);
        var before = await cluster.BalanceAsync();
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "pause");

        var (victim, shards) = cluster.OwnedBySilo(before).OrderByDescending(p => p.Value.Count).First();
        var target = shards[0];
        // Writers that call the paused silo directly, without the client's retries: what they sent before and during the
        // pause is outstanding on it, so the writes it still tries to commit once it runs again are the late writes.
        var direct = new DirectWriters(victim.Endpoint, target.ShardId, ProbeKey(target)[0], cluster.Log);
        await direct.StartAsync(writers: 8);
        await load.WaitForWritesAsync(300, LoadDeadline);
        await direct.WaitForAcksAsync(50, LoadDeadline);

        cluster.Log($"SIGSTOP {victim.Name}, owner of shard {target.ShardId} (epoch {target.Epoch}); load so far: {load.Summary()}; " +
            $"direct: {direct.Summary()}");
        await victim.PauseAsync();
        var paused = Stopwatch.StartNew();
        direct.SendDuringPause(32);

        ShardOwnership? claimed = null;
        async Task<bool> ClaimedAsync()
        {
            var row = await cluster.Store.GetAsync(target.ShardId, default);
            if (row.Epoch > target.Epoch && row.Owner is { } owner && owner.Endpoint != victim.Endpoint) claimed = row;
            return claimed is not null;
        }
        // Declared dead after DeathTimeout (its sessions are then ended, so even a commit frozen half-way holds no lock), then
        // claimed within a reconcile round or two.
        var claimBound = GridCluster.DeathTimeout + TimeSpan.FromSeconds(4);
        try
        {
            await cluster.PollAsync(ClaimedAsync, claimBound, $"shard {target.ShardId} to get a new owner while {victim.Name} is paused");
        }
        catch (Xunit.Sdk.XunitException e)
        {
            var frozenHolder = await cluster.FindFrozenLockHoldersAsync();
            throw new Xunit.Sdk.XunitException($"{e.Message}\nSessions holding or waiting for locks: {(frozenHolder.Length == 0 ? "none" : frozenHolder)}");
        }
        Assert.NotNull(claimed);
        cluster.Log($"shard {target.ShardId} claimed by {cluster.SiloAt(claimed.Owner!.Value.Endpoint).Name} {paused.Elapsed.TotalSeconds:0.000} s " +
            $"into the pause: epoch {claimed.Epoch}, version {claimed.Version}");

        await victim.ResumeAsync();
        var resumed = Stopwatch.StartNew();
        cluster.Log($"SIGCONT {victim.Name}");
        int exit = await victim.WaitForExitAsync(TimeSpan.FromSeconds(15));
        var exitAfter = resumed.Elapsed;
        cluster.Log($"{victim.Name} exited with {exit} {exitAfter.TotalSeconds:0.000} s after SIGCONT");
        Assert.True(exit == SiloExitCode.DeclaredDead, $"the resumed silo exited with {exit}, not {SiloExitCode.DeclaredDead} (declared dead)");
        Assert.Contains("declared this silo dead", victim.Output);

        await direct.StopAsync(TimeSpan.FromSeconds(40));
        cluster.Log("direct writers stopped: " + direct.Summary());
        await load.WaitForWritesAsync(300, LoadDeadline);
        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());

        // The fence: whatever the old owner committed, it committed before the claim; nothing it did not acknowledge
        // reached the store after it.
        var late = new List<string>();
        foreach (var write in direct.Acked)
        {
            if (write.Version > claimed.Version)
                late.Add($"acknowledged by the old owner at v{write.Version}, after the claim at v{claimed.Version}: {Convert.ToHexStringLower(write.Key)}");
        }
        int absent = 0, beforeClaim = 0;
        foreach (var (key, value, error) in direct.Unacknowledged)
        {
            var row = await cluster.Shards.GetAsync(target.ShardId, key, default);
            if (row is null) absent++;
            else if (row.Version <= claimed.Version && row.Value.AsSpan().SequenceEqual(value)) beforeClaim++;
            else late.Add($"unacknowledged write {Convert.ToHexStringLower(key)} ({error}) is stored at v{row.Version} (claim at v{claimed.Version})");
        }
        cluster.Log($"fence: {direct.Acked.Count} direct writes acknowledged (all at or before v{claimed.Version}: {late.Count == 0}), " +
            $"{direct.Unacknowledged.Count} not acknowledged: {absent} absent, {beforeClaim} committed before the claim");
        Assert.True(late.Count == 0, "late writes of the paused owner were applied:\n" + string.Join('\n', late.Take(20)));
        output.WriteLine($"PAUSE: claim within the bound, exit 4 {exitAfter.TotalMilliseconds:0} ms after SIGCONT");
        Assert.True(direct.Unacknowledged.Count >= 32, $"only {direct.Unacknowledged.Count} direct writes were outstanding on the paused silo");
        // Refused by the stopping silo (Unavailable), fenced at commit (NotOwner), or its session ended when it was declared
        // dead while it was frozen inside a commit (Unavailable or Timeout: rolled back).
        cluster.Log("late writes failed with: " + string.Join(", ", direct.Unacknowledged.GroupBy(u => u.Error).Select(g => $"{g.Key} x{g.Count()}")));
        Assert.All(direct.Unacknowledged, u => Assert.True(u.Error is GridErrorCode.Unavailable or GridErrorCode.NotOwner or GridErrorCode.Timeout,
            $"a late write failed with {u.Error}, not Unavailable, NotOwner or Timeout"));

        var members = await cluster.Store.ReadAllAsync(default);
        Assert.Contains(members, m => m.Address.Endpoint == victim.Endpoint && m.Status == MemberStatus.Dead);
        await ClusterInvariants.CheckAsync(cluster, [.. load.Acked.Values, .. direct.Acked], load.Errors);
    });

    [Fact]
    public Task AJoiningSiloTakesAShareOfTheShardsAndTheShardsThenStayPut() => RunAsync(async cluster =>
    {
        await cluster.StartSilosAsync(2, rebalance: true);
        // The first silo up claims every shard; the second takes its share by rebalancing.
        await WaitUntilBalancedAsync(cluster, TimeSpan.FromSeconds(20));
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "join");
        await load.WaitForWritesAsync(300, LoadDeadline);
        // Under the load, both silos report it with their heartbeats: the calls their shards serve and their activations
        // (what the load-based director weighs, read from the table by every silo alike).
        await cluster.PollAsync(async () =>
        {
            var live = (await cluster.Store.ReadAllAsync(default)).Where(m => m.Status == MemberStatus.Active).ToList();
            return live.Count == 2 && live.All(m => m.Load.OpsPerSecond > 0 && m.Load.Activations > 0);
        }, TimeSpan.FromSeconds(20), "both silos to report calls per second and activations with their heartbeats");

        var joined = Stopwatch.StartNew();
        var third = cluster.StartSilo(rebalance: true);
        await third.WaitUntilHealthyAsync(GridCluster.StartDeadline);
        await cluster.WaitUntilMembersAsync([third]);
        cluster.Log($"{third.Name} serves and is a member {joined.Elapsed.TotalSeconds:0.000} s after its start");
        var balanced = await WaitUntilBalancedAsync(cluster, TimeSpan.FromSeconds(20), mustOwn: third);
        cluster.Log($"rebalanced {joined.Elapsed.TotalSeconds:0.000} s after {third.Name} started: " +
            string.Join(", ", cluster.OwnedBySilo(balanced).Select(p => $"{p.Key.Name} {p.Value.Count}")));

        // No ping-pong: nothing moves again for longer than the move cooldown.
        var epochs = balanced.Shards.ToDictionary(s => s.ShardId, s => s.Epoch);
        var watch = Stopwatch.StartNew();
        var quiet = GridCluster.MoveCooldown + 2 * GridCluster.ReconcileInterval;
        while (watch.Elapsed < quiet)
        {
            var now = await cluster.Store.ReadAsync(default);
            var moved = now.Shards.Where(s => s.Epoch != epochs[s.ShardId]).ToList();
            Assert.True(moved.Count == 0, $"shards moved again {watch.Elapsed.TotalSeconds:0.0} s after the cluster was balanced: " +
                cluster.Describe(now));
            await Task.Delay(100);
        }
        cluster.Log($"no shard moved for {quiet.TotalSeconds:0.0} s ({quiet / GridCluster.ReconcileInterval:0} reconcile intervals)");

        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());
        await ClusterInvariants.CheckAsync(cluster, load.Acked.Values.ToList(), load.Errors);
    });

    [Fact]
    public Task ASiloStoppedWithSigtermHandsItsShardsOverAndTheClientSeesNoError() => RunAsync(async cluster =>
    {
        await cluster.StartSilosAsync(3, rebalance: false);
        var before = await cluster.BalanceAsync();
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "leave");
        await load.WaitForWritesAsync(300, LoadDeadline);

        var (leaving, shards) = cluster.OwnedBySilo(before).OrderByDescending(p => p.Value.Count).First();
        cluster.Log($"SIGTERM {leaving.Name}, owner of shards {string.Join(",", shards.Select(s => s.ShardId))}; load so far: {load.Summary()}");
        var stopping = Stopwatch.StartNew();
        await leaving.TerminateAsync();
        int exit = await leaving.WaitForExitAsync(TimeSpan.FromSeconds(30));
        cluster.Log($"{leaving.Name} exited with {exit} after {stopping.Elapsed.TotalSeconds:0.000} s");
        Assert.True(exit == SiloExitCode.Ok, $"the silo exited with {exit} after SIGTERM");

        await load.WaitForWritesAsync(300, LoadDeadline);
        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());
        output.WriteLine($"LEAVE: exit after {stopping.Elapsed.TotalMilliseconds:0} ms, slowest client call {load.MaxLatency.TotalMilliseconds:0} ms");

        var after = await cluster.Store.ReadAsync(default);
        foreach (var shard in shards)
        {
            var now = after.Shards.Single(s => s.ShardId == shard.ShardId);
            Assert.True(now.Owner is { } o && o.Endpoint != leaving.Endpoint, $"shard {shard.ShardId} is still owned by the silo that left: {cluster.Describe(after)}");
        }
        var members = await cluster.Store.ReadAllAsync(default);
        Assert.Contains(members, m => m.Address.Endpoint == leaving.Endpoint && m.Status == MemberStatus.Dead);
        await ClusterInvariants.CheckAsync(cluster, load.Acked.Values.ToList(), load.Errors);
    });

    [Fact]
    public Task AShardMovedByTheControlGrainUnderLoadMovesWithANewEpochAndTheClientSeesNoError() => RunAsync(async cluster =>
    {
        await cluster.StartSilosAsync(3, rebalance: false);
        var before = await cluster.BalanceAsync();
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "move");
        await load.WaitForWritesAsync(300, LoadDeadline);

        var owned = cluster.OwnedBySilo(before);
        var from = owned.OrderByDescending(p => p.Value.Count).First().Key;
        var to = owned.Where(p => p.Key != from).OrderBy(p => p.Value.Count).First().Key;
        // Two moves, one after the other: the busiest shard of `from` to `to`, and then one of `to`'s own to `from`.
        var moves = new List<(ShardOwnership Before, ClusterSilo From, ClusterSilo To)>
        {
            (owned[from].OrderByDescending(s => s.KeyCount).First(), from, to),
            (owned[to][0], to, from),
        };
        foreach (var (shard, source, destination) in moves)
        {
            var old = await cluster.Store.GetAsync(shard.ShardId, default);
            var writesBefore = load.Writes;
            var (result, elapsed) = await cluster.MoveAsync(shard.ShardId, source, destination);
            output.WriteLine($"MOVE shard {shard.ShardId}: {result.ElapsedMicroseconds / 1000.0:0.0} ms in the silo, {elapsed.TotalMilliseconds:0.0} ms end to end");

            var now = await cluster.Store.GetAsync(shard.ShardId, default);
            Assert.Equal(destination.Endpoint, now.Owner?.Endpoint);
            Assert.Equal(old.Epoch + 1, now.Epoch);
            Assert.Equal(old.Epoch + 1, result.Epoch);
            Assert.Equal(source.Endpoint, result.From);
            Assert.Equal(destination.Endpoint, result.To);
            Assert.True(result.Version >= old.Version, $"the move reports version {result.Version}, before the shard's {old.Version}");
            // The shard serves at its new home, and the load carries on.
            await client.ReadAsync(ProbeKey(shard));
            await load.WaitForWritesAsync(200, LoadDeadline);
            cluster.Log($"{load.Writes - writesBefore} writes acknowledged since the move of shard {shard.ShardId} began");
        }

        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());
        await ClusterInvariants.CheckAsync(cluster, load.Acked.Values.ToList(), load.Errors);
    });

    [Fact]
    public Task AShardSplitAndMergedByTheControlGrainUnderLoadKeepsEveryWriteAndHonestRoots() => RunAsync(async cluster =>
    {
        await cluster.StartSilosAsync(3, rebalance: false);
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "split");
        await load.WaitForWritesAsync(400, LoadDeadline);

        var before = await cluster.Store.ReadAsync(default);
        var shard = before.Shards.OrderByDescending(s => s.KeyCount).First();
        var owner = cluster.SiloAt(shard.Owner!.Value.Endpoint);
        await using var stale = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30)); // keeps the map from before the split
        await using var staleReader = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        long staleGeneration = staleReader.ShardMap.Generation;
        var ackedInShard = load.Acked.Values.Where(w => shard.Range.Contains(w.Key)).ToList();
        var clock = Stopwatch.StartNew();
        var halves = await owner.CallControlAsync(control => control.SplitShardAsync(shard.ShardId, default));
        output.WriteLine($"SPLIT shard {shard.ShardId} ({shard.KeyCount}+ keys) in {clock.Elapsed.TotalMilliseconds:0} ms under load");

        Assert.Equal(2, halves.Length);
        Assert.Equal(shard.ShardId, halves[0].ShardId);
        Assert.True(halves[0].Range.Start.SequenceEqual(shard.Range.Start));
        Assert.True(halves[0].Range.End.SequenceEqual(halves[1].Range.Start)); // they meet exactly
        Assert.Equal(shard.Range.IsUnbounded, halves[1].Range.IsUnbounded);
        Assert.True(shard.Range.IsUnbounded || halves[1].Range.End.SequenceEqual(shard.Range.End));
        var afterSplit = await cluster.Store.ReadAsync(default);
        Assert.Equal(before.Shards.Count + 1, afterSplit.Shards.Count);
        Assert.True(afterSplit.Generation > before.Generation);
        Assert.All(afterSplit.Shards.Where(s => s.ShardId == halves[0].ShardId || s.ShardId == halves[1].ShardId),
            s => Assert.Equal(shard.Owner, s.Owner));
        await load.WaitForWritesAsync(300, LoadDeadline); // the load carries on across both halves

        // Concurrent reads on the old map go to the left half together; it refuses the batch for the right half's keys, and
        // each read of it is sent again alone (after a map refresh): all are answered, with values that verify.
        Assert.Equal(staleGeneration, staleReader.ShardMap.Generation);
        Assert.Contains(ackedInShard, w => halves[1].Range.Contains(w.Key));
        var staleReads = await Task.WhenAll(ackedInShard.Select(w => staleReader.ReadAsync(w.Key))).WaitAsync(LoadDeadline);
        Assert.All(staleReads, r => Assert.NotNull(r.Value));
        Assert.True(staleReader.ShardMap.Generation > staleGeneration);

        // A batch built for the old shard now spans both halves: refused as such (not retried until the timeout), nothing stored.
        byte[] leftKey = [.. halves[0].Range.Start.ToArray(), .. "zz-left"u8];
        byte[] rightKey = [.. halves[1].Range.Start.ToArray(), .. "zz-right"u8];
        clock.Restart();
        var spanning = await Assert.ThrowsAsync<GridException>(() => stale.BatchAsync([BatchOperation.Put(leftKey, [1]), BatchOperation.Put(rightKey, [2])]));
        Assert.Equal(GridErrorCode.InvalidArgument, spanning.Code);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the spanning batch took {clock.Elapsed} to be refused");
        Assert.Null((await client.ReadAsync(leftKey)).Value);
        Assert.Null((await client.ReadAsync(rightKey)).Value);

        clock.Restart();
        var merged = await owner.CallControlAsync(control => control.MergeShardsAsync(shard.ShardId, default));
        output.WriteLine($"MERGE shards {halves[0].ShardId}+{halves[1].ShardId} in {clock.Elapsed.TotalMilliseconds:0} ms under load");
        Assert.Equal(shard.ShardId, merged.ShardId);
        Assert.True(merged.Range.Start.SequenceEqual(shard.Range.Start) && merged.Range.IsUnbounded == shard.Range.IsUnbounded
            && (shard.Range.IsUnbounded || merged.Range.End.SequenceEqual(shard.Range.End)));
        Assert.Equal(before.Shards.Count, (await cluster.Store.ReadAsync(default)).Shards.Count);
        await load.WaitForWritesAsync(300, LoadDeadline);

        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());
        await ClusterInvariants.CheckAsync(cluster, load.Acked.Values.ToList(), load.Errors);
    });

    [Fact]
    public Task ShardsSplitPastTheSizeThresholdUnderLoadAndColdEmptiedNeighboursMerge() => RunAsync(async cluster =>
    {
        // Small thresholds so that a few seconds of load cross them: split at 250 keys, merge neighbours under 100 keys.
        await cluster.StartSilosAsync(3, rebalance: false,
            "--Silo:Cluster:SplitKeys=250", "--Silo:Cluster:MergeKeys=100", "--Silo:Cluster:MergeMaxOpsPerSecond=5");
        await using var client = await cluster.ConnectClientAsync(TimeSpan.FromSeconds(30));
        var load = cluster.StartLoad(client, "grow");
        int initial = (await cluster.Store.ReadAsync(default)).Shards.Count;
        await cluster.PollAsync(async () => (await cluster.Store.ReadAsync(default)).Shards.Count >= initial + 3, TimeSpan.FromSeconds(60),
            "three shards to split past 250 keys under load");
        await load.StopAsync();
        cluster.Log("load stopped: " + load.Summary());
        // Splits go on, one per silo per round, until no shard is past the threshold.
        await cluster.PollAsync(async () => (await cluster.Store.ReadAsync(default)).Shards.All(s => s.KeyCount < 250), TimeSpan.FromSeconds(60),
            "every shard to be under the split threshold");
        var grown = await cluster.WaitUntilSettledAsync(TimeSpan.FromSeconds(20));
        output.WriteLine($"SPLITS: {initial} -> {grown.Shards.Count} shards; largest {grown.Shards.Max(s => s.KeyCount)} keys");
        await ClusterInvariants.CheckAsync(cluster, load.Acked.Values.ToList(), load.Errors);

        // Empty the grid: the shards go cold and small, and neighbours on one silo merge (down to MinShards + silos - 1).
        foreach (var chunk in load.Acked.Values.Chunk(200))
        {
            // Batches are one shard each: group by the current map (the load's splits left this client's map behind;
            // merges during the deletes only join ranges, so a group stays within one shard).
            var map = await client.RefreshShardMapAsync();
            foreach (var byShard in chunk.GroupBy(w => map.Locate(w.Key).ShardId))
                await client.BatchAsync(byShard.Select(w => BatchOperation.Delete(w.Key)).ToList());
        }
        await cluster.PollAsync(async () => (await cluster.Store.ReadAsync(default)).Shards.Count < grown.Shards.Count, TimeSpan.FromSeconds(30),
            "cold, emptied neighbours to merge");
        var shrunk = await cluster.WaitUntilSettledAsync(TimeSpan.FromSeconds(20));
        output.WriteLine($"MERGES: {grown.Shards.Count} -> {shrunk.Shards.Count} shards");
        Assert.True(shrunk.Shards.Count >= 8, $"merges went below MinShards: {shrunk.Shards.Count}");
        Assert.All(shrunk.Shards, s => Assert.Equal(0, s.KeyCount));
        foreach (var write in load.Acked.Values.Take(50))
            Assert.Null((await client.ReadAsync(write.Key)).Value); // absent, with a verified non-inclusion proof
        await ClusterInvariants.CheckAsync(cluster, [], []);
    });

    /// <summary>A key inside <paramref name="shard"/>'s range (shards split on the first key byte).</summary>
    private static byte[] ProbeKey(ShardOwnership shard) =>
        [shard.Range.Start.Length > 0 ? shard.Range.Start[0] : (byte)0x00, .. "probe"u8];

    /// <summary>Waits until the running silos' shard counts differ by less than the rebalance threshold (and one owns shards, if given), and the cluster settled.</summary>
    private static async Task<ShardDirectorySnapshot> WaitUntilBalancedAsync(GridCluster cluster, TimeSpan deadline, ClusterSilo? mustOwn = null)
    {
        string last = "";
        await cluster.PollAsync(async () =>
        {
            var snapshot = await cluster.Store.ReadAsync(default);
            var counts = cluster.OwnedBySilo(snapshot).ToDictionary(p => p.Key, p => p.Value.Count);
            last = string.Join(", ", counts.Select(p => $"{p.Key.Name} {p.Value}")) + $" of {snapshot.Shards.Count}";
            return counts.Values.Sum() == snapshot.Shards.Count
                && counts.Values.Max() - counts.Values.Min() <= GridCluster.RebalanceThreshold - 1
                && (mustOwn is null || counts[mustOwn] > 0);
        }, deadline, () => $"the shards to be spread within {GridCluster.RebalanceThreshold - 1} of each other (now {last})");
        return await cluster.WaitUntilSettledAsync(TimeSpan.FromSeconds(10));
    }

    private async Task RunAsync(Func<GridCluster, Task> test)
    {
        var total = Stopwatch.StartNew();
        await using var cluster = await GridCluster.CreateAsync(output);
        try
        {
            await test(cluster);
        }
        catch (Exception e) when (!e.Message.Contains("==== cluster dump", StringComparison.Ordinal))
        {
            throw new Xunit.Sdk.XunitException($"{e.GetType().Name}: {e.Message}\n{await cluster.DumpAsync()}", e);
        }
        finally
        {
            cluster.Log($"test took {total.Elapsed.TotalSeconds:0.0} s");
        }
    }

    /// <summary>
    /// Writers that put keys of one shard straight to one silo's shard grain, over a connection of their own, with no
    /// retry: each records the first failure and stops. Every write is acknowledged (with its version) or not.
    /// </summary>
    private sealed class DirectWriters(string endpoint, long shardId, byte firstByte, Action<string> log)
    {
        private readonly ConcurrentQueue<AckedWrite> _acked = new();
        private readonly ConcurrentQueue<(byte[] Key, byte[] Value, GridErrorCode? Error)> _unacked = new();
        private readonly List<Task> _tasks = [];
        private readonly ConcurrentDictionary<GridErrorCode, bool> _logged = new();
        private readonly CancellationTokenSource _stop = new();
        private GrainClient? _client;
        private long _next;

        public IReadOnlyList<AckedWrite> Acked => _acked.ToArray();

        public IReadOnlyList<(byte[] Key, byte[] Value, GridErrorCode? Error)> Unacknowledged => _unacked.ToArray();

        public async Task StartAsync(int writers)
        {
            _client = await GrainClient.ConnectAsync(IPEndPoint.Parse(endpoint), new GridConnectionOptions { PeerName = "direct-writer" });
            for (int i = 0; i < writers; i++)
            {
                _tasks.Add(Task.Run(async () =>
                {
                    while (!_stop.IsCancellationRequested && await WriteOnceAsync())
                    {
                    }
                }));
            }
        }

        /// <summary>Sends <paramref name="count"/> more writes at once (to a paused silo: they wait in its socket).</summary>
        public void SendDuringPause(int count)
        {
            for (int i = 0; i < count; i++) _tasks.Add(Task.Run(WriteOnceAsync));
        }

        public async Task WaitForAcksAsync(int count, TimeSpan deadline)
        {
            var watch = Stopwatch.StartNew();
            while (_acked.Count < count)
            {
                if (watch.Elapsed > deadline || _unacked.Count > 0)
                    throw new Xunit.Sdk.XunitException($"The direct writers got {_acked.Count} of {count} acknowledgements: {Summary()}; " +
                        string.Join("; ", _unacked.Take(3).Select(u => u.Error?.ToString())));
                await Task.Delay(20);
            }
        }

        /// <summary>Stops the writers and waits for every write sent (the silo answered, or its connection closed).</summary>
        public async Task StopAsync(TimeSpan deadline)
        {
            await _stop.CancelAsync();
            var all = Task.WhenAll(_tasks);
            if (await Task.WhenAny(all, Task.Delay(deadline)) != all)
                throw new Xunit.Sdk.XunitException($"Direct writes still outstanding after {deadline}: {Summary()}");
            if (_client is not null) await _client.DisposeAsync();
        }

        public string Summary() => $"{_acked.Count} acknowledged, {_unacked.Count} not";

        private async Task<bool> WriteOnceAsync()
        {
            long n = Interlocked.Increment(ref _next);
            byte[] key = [firstByte, .. Encoding.UTF8.GetBytes($"direct-{n}")];
            byte[] value = Encoding.UTF8.GetBytes($"direct-value-{n}");
            try
            {
                var result = await _client!.GetGrain<IShardGrain>(shardId).PutAsync(key, value, SyncMode.Full, default);
                _acked.Enqueue(new AckedWrite(key, value, result.ShardId, result.Version));
                return true;
            }
            catch (GridException e)
            {
                _unacked.Enqueue((key, value, e.Code));
                if (_logged.TryAdd(e.Code, true)) log($"direct write {n} to shard {shardId} failed: {e.Code}: {e.Message}");
                return false;
            }
        }
    }
}
