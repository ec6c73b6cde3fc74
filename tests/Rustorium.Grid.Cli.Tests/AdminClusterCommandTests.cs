using System.Diagnostics;
using System.Text.Json;
using Rustorium.Grid.Client;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Cli.Tests;

/// <summary><c>grid admin members</c> and <c>grid admin move</c> against two real cluster silos on PostgreSQL.</summary>
[Trait("Category", "Cluster")]
public sealed class AdminClusterCommandTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Members_lists_both_silos_as_active_with_fresh_heartbeats()
    {
        var members = await ActiveMembersAsync();

        Assert.Equal(new[] { cluster.A.Endpoint, cluster.B.Endpoint }.Order(), members.Select(m => m.GetProperty("endpoint").GetString()!).Order());
        Assert.Equal(["silo-a", "silo-b"], members.Select(m => m.GetProperty("name").GetString()!).Order().ToArray());
        foreach (var m in members)
        {
            Assert.Equal("local", m.GetProperty("region").GetString());
            Assert.True(m.GetProperty("heartbeatAgeMs").GetDouble() < 5000, m.ToString());
            Assert.Equal($"{m.GetProperty("endpoint").GetString()}@{m.GetProperty("generation").GetInt64()}", m.GetProperty("address").GetString());
        }

        var human = await Cli.RunAsync("admin", "members", "--postgres", cluster.ConnectionString, "--live");
        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.StartsWith("ADDRESS", human.OutLines[0]);
        Assert.Contains("HEARTBEAT", human.OutLines[0]);
        foreach (var silo in new[] { cluster.A, cluster.B })
            Assert.Contains(human.OutLines, l => l.StartsWith(silo.Endpoint + "@", StringComparison.Ordinal) && l.Contains("Active") && l.Contains(" s"));
    }

    [Fact]
    public async Task Move_hands_a_shard_to_the_other_silo_and_it_still_reads_and_writes()
    {
        await ActiveMembersAsync();
        var put = await Cli.RunAsync("put", "move:1", "before", "--endpoint", cluster.A.Endpoint, "--json");
        Assert.True(put.ExitCode == 0, put.ToString());
        long shard = JsonDocument.Parse(put.Out).RootElement.GetProperty("shard").GetInt64();
        var (owner, epoch) = await OwnerAsync(shard);
        var target = owner == cluster.A.Endpoint ? cluster.B.Endpoint : cluster.A.Endpoint;

        var move = await MoveAsync(shard.ToString(), "--to", target, "--endpoint", cluster.A.Endpoint, "--json");

        Assert.True(move.ExitCode == 0, move.ToString());
        var result = JsonDocument.Parse(move.Out).RootElement;
        Assert.Equal(shard, result.GetProperty("shard").GetInt64());
        Assert.Equal(owner, result.GetProperty("from").GetString());
        Assert.Equal(target, result.GetProperty("to").GetString());
        Assert.True(result.GetProperty("moved").GetBoolean());
        Assert.True(result.GetProperty("epoch").GetInt64() > epoch, move.ToString());
        Assert.True(result.GetProperty("elapsedMs").GetDouble() >= 0);

        // The shard map and grid status name the new owner.
        Assert.Equal(target, (await OwnerAsync(shard)).Endpoint);
        var status = await Cli.RunAsync("status", "--endpoint", cluster.B.Endpoint, "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        var row = status.OutLines.Select(l => JsonDocument.Parse(l).RootElement).Single(r => r.GetProperty("shard").GetInt64() == shard);
        Assert.Equal(target, row.GetProperty("silo").GetString());
        Assert.Equal(result.GetProperty("epoch").GetInt64(), row.GetProperty("epoch").GetInt64());

        // The moved shard still reads (with a verified proof) and takes writes, through either silo.
        var get = await Cli.RunAsync("get", "move:1", "--endpoint", owner);
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.Equal("before", get.Out.Trim());
        Assert.Equal(0, (await Cli.RunAsync("put", "move:1", "after", "--endpoint", owner)).ExitCode);
        var after = await Cli.RunAsync("get", "move:1", "--endpoint", target);
        Assert.Equal("after", after.Out.Trim());

        // Moving it where it is changes nothing.
        var again = await Cli.RunAsync("admin", "move", shard.ToString(), "--to", target, "--endpoint", cluster.A.Endpoint);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already on " + target, again.Out);
        Assert.Equal(target, (await OwnerAsync(shard)).Endpoint);
    }

    [Fact]
    public async Task Split_cuts_a_shard_at_its_median_key_and_merge_restores_it_with_the_same_root()
    {
        await ActiveMembersAsync();
        var keys = Enumerable.Range(0, 40).Select(i => $"split:{i:D2}").ToList();
        long shard = -1;
        foreach (var key in keys)
        {
            var put = await Cli.RunAsync("put", key, "v-" + key, "--endpoint", cluster.A.Endpoint, "--json");
            Assert.True(put.ExitCode == 0, put.ToString());
            shard = JsonDocument.Parse(put.Out).RootElement.GetProperty("shard").GetInt64();
        }
        var before = await FoldedShardStatusAsync(shard); // its root is then the tree of all 40 keys

        var split = await Cli.RunAsync("admin", "split", shard.ToString(), "--endpoint", cluster.A.Endpoint, "--json");
        Assert.True(split.ExitCode == 0, split.ToString());
        var halves = JsonDocument.Parse(split.Out).RootElement.GetProperty("shards").EnumerateArray().ToArray();
        Assert.Equal(2, halves.Length);
        Assert.Equal(shard, halves[0].GetProperty("shard").GetInt64());
        long right = halves[1].GetProperty("shard").GetInt64();
        Assert.Equal(halves[0].GetProperty("end").GetString(), halves[1].GetProperty("start").GetString()); // no gap, no overlap
        Assert.Equal(before.GetProperty("range").GetString(), $"[{Hex(halves[0].GetProperty("start").GetString())}, {Hex(halves[1].GetProperty("end").GetString())})");

        var leftStatus = await ShardStatusAsync(shard);
        var rightStatus = await ShardStatusAsync(right);
        Assert.Equal(before.GetProperty("keys").GetInt64(), leftStatus.GetProperty("keys").GetInt64() + rightStatus.GetProperty("keys").GetInt64());
        Assert.True(Math.Abs(leftStatus.GetProperty("keys").GetInt64() - rightStatus.GetProperty("keys").GetInt64()) <= 1, split.ToString());
        foreach (var key in keys)
        {
            var get = await Cli.RunAsync("get", key, "--endpoint", cluster.B.Endpoint); // verifies the proof against the half's root
            Assert.True(get.ExitCode == 0, get.ToString());
            Assert.Equal("v-" + key, get.Out.Trim());
        }

        var merge = await Cli.RunAsync("admin", "merge", shard.ToString(), "--endpoint", cluster.B.Endpoint, "--json");
        Assert.True(merge.ExitCode == 0, merge.ToString());
        var merged = await ShardStatusAsync(shard);
        Assert.Equal(merged.GetProperty("version").GetInt64(), merged.GetProperty("treeVersion").GetInt64()); // a merge stores a complete tree
        Assert.Equal(before.GetProperty("range").GetString(), merged.GetProperty("range").GetString());
        Assert.Equal(before.GetProperty("root").GetString(), merged.GetProperty("root").GetString()); // the tree of the same contents
        Assert.Equal(before.GetProperty("keys").GetInt64(), merged.GetProperty("keys").GetInt64());
        var status = await Cli.RunAsync("status", "--endpoint", cluster.A.Endpoint, "--json");
        Assert.DoesNotContain(status.OutLines, l => JsonDocument.Parse(l).RootElement.GetProperty("shard").GetInt64() == right);

        var last = (await Cli.RunAsync("status", "--endpoint", cluster.A.Endpoint, "--json")).OutLines
            .Select(l => JsonDocument.Parse(l).RootElement).Last().GetProperty("shard").GetInt64();
        var noNeighbour = await Cli.RunAsync("admin", "merge", last.ToString(), "--endpoint", cluster.A.Endpoint);
        Assert.True(noNeighbour.ExitCode == (int)ExitCode.BadInput, noNeighbour.ToString());
        Assert.Contains("no right neighbour", noNeighbour.Err);

        static string Hex(string? hex) => hex ?? "∞";
    }

    /// <summary>The shard's status once its tree has folded every committed write (the root is of the data's version).</summary>
    private async Task<JsonElement> FoldedShardStatusAsync(long shard)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var status = await ShardStatusAsync(shard);
            if (status.GetProperty("treeVersion").GetInt64() == status.GetProperty("version").GetInt64()) return status;
            Assert.True(DateTime.UtcNow < deadline, $"shard {shard}'s tree did not catch up with its data: {status}");
            await Task.Delay(50);
        }
    }

    private async Task<JsonElement> ShardStatusAsync(long shard)
    {
        var status = await Cli.RunAsync("status", "--endpoint", cluster.A.Endpoint, "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        return status.OutLines.Select(l => JsonDocument.Parse(l).RootElement).Single(r => r.GetProperty("shard").GetInt64() == shard);
    }

    [Fact]
    public async Task Move_of_an_unknown_shard_or_to_a_non_member_exits_2_and_an_unreachable_endpoint_exits_4()
    {
        await ActiveMembersAsync();
        var put = await Cli.RunAsync("put", "bad:1", "x", "--endpoint", cluster.A.Endpoint, "--json");
        Assert.True(put.ExitCode == 0, put.ToString());
        var shard = JsonDocument.Parse(put.Out).RootElement.GetProperty("shard").GetInt64().ToString();

        var unknown = await Cli.RunAsync("admin", "move", "9999", "--to", cluster.B.Endpoint, "--endpoint", cluster.A.Endpoint);
        Assert.True(unknown.ExitCode == (int)ExitCode.BadInput, unknown.ToString());
        Assert.Contains("not in the shard map", unknown.Err);

        var stranger = await Cli.RunAsync("admin", "move", shard, "--to", $"127.0.0.1:{LoopbackPorts.Take()}", "--endpoint", cluster.A.Endpoint);
        Assert.True(stranger.ExitCode == (int)ExitCode.BadInput, stranger.ToString());
        Assert.Contains("not an active silo", stranger.Err);

        var malformed = await Cli.RunAsync("admin", "move", shard, "--to", "nowhere", "--endpoint", cluster.A.Endpoint);
        Assert.True(malformed.ExitCode == (int)ExitCode.BadInput, malformed.ToString());

        var down = await Cli.RunAsync("admin", "move", shard, "--to", cluster.B.Endpoint, "--endpoint", $"127.0.0.1:{LoopbackPorts.Take()}");
        Assert.True(down.ExitCode == (int)ExitCode.Unavailable, down.ToString());
    }

    [Fact]
    public async Task A_moved_shard_stays_on_its_target_for_the_cooldown_with_rebalancing_on()
    {
        // Its own two silos with rebalancing on (threshold 2, cooldown 30 s). A starts alone and takes all 4 shards; B joins and
        // receives two by rebalancing (A gives its lowest ids first), so A keeps two that B never held. Moving one of them to B
        // makes it 1/3: B is then the most loaded, but every shard it has is in its cooldown, so nothing may move back.
        var server = await PostgresServer.SharedAsync();
        var conn = await server.CreateDatabaseAsync("clirebalance");
        string[] args = ["--store", "postgres", "--postgres", conn, "--shards", "4", "--Silo:Cluster:HeartbeatInterval=00:00:00.250",
            "--Silo:Cluster:ReconcileInterval=00:00:00.250"];
        await using var a = await TestSilo.StartAsync([.. args, "--name", "rebalance-a"]);
        // grid status opens every shard, so A owns all four in the directory (not just as a placement target in the map).
        var status = await Cli.RunAsync("status", "--endpoint", a.Endpoint);
        Assert.True(status.ExitCode == 0, status.ToString());
        await using var b = await TestSilo.StartAsync([.. args, "--name", "rebalance-b"]);

        var clock = Stopwatch.StartNew();
        Dictionary<long, string> owners;
        while (true)
        {
            owners = await OwnersAsync(a.Endpoint);
            if (owners.Values.Count(e => e == b.Endpoint) == 2) break;
            if (clock.Elapsed > Patience) Assert.Fail($"The silos did not settle at 2/2: {string.Join(", ", owners)}\n{a.Output}\n{b.Output}");
            await Task.Delay(100);
        }
        long shard = owners.Where(o => o.Value == a.Endpoint).Min(o => o.Key);
        var move = await MoveAsync(shard.ToString(), "--to", b.Endpoint, "--endpoint", a.Endpoint);
        Assert.True(move.ExitCode == 0, move.ToString());

        clock.Restart();
        while (clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            owners = await OwnersAsync(a.Endpoint);
            Assert.True(owners[shard] == b.Endpoint, $"shard {shard} left {b.Endpoint} within its cooldown: {string.Join(", ", owners)}\n{a.Output}\n{b.Output}");
            await Task.Delay(100);
        }
    }

    private static async Task<Dictionary<long, string>> OwnersAsync(string endpoint)
    {
        await using var grid = await GridClient.ConnectAsync([endpoint]);
        return grid.ShardMap.Shards.ToDictionary(s => s.ShardId, s => s.Endpoint);
    }

    /// <summary>Polls <c>grid admin members --live --json</c> until both silos are Active; returns their rows.</summary>
    private async Task<JsonElement[]> ActiveMembersAsync()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var result = await Cli.RunAsync("admin", "members", "--postgres", cluster.ConnectionString, "--live", "--json");
            Assert.True(result.ExitCode == 0, result.ToString());
            var rows = result.OutLines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            if (rows.Count(r => r.GetProperty("status").GetString() == "Active") == 2) return rows;
            if (clock.Elapsed > Patience) Assert.Fail($"Both silos were not active within {Patience}:\n{result}\n{cluster.A.Output}\n{cluster.B.Output}");
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Runs <c>grid admin move</c>, repeating while the owner does not list the target as an active member yet (its view
    /// of the table is up to a heartbeat old).
    /// </summary>
    private static async Task<CliResult> MoveAsync(params string[] args)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var result = await Cli.RunAsync(["admin", "move", .. args]);
            if (result.ExitCode != (int)ExitCode.BadInput || !result.Err.Contains("not an active silo") || clock.Elapsed > Patience) return result;
            await Task.Delay(100);
        }
    }

    private async Task<(string Endpoint, long Epoch)> OwnerAsync(long shard)
    {
        await using var grid = await GridClient.ConnectAsync([cluster.A.Endpoint]);
        var entry = grid.ShardMap.Shards.Single(s => s.ShardId == shard);
        return (entry.Endpoint, entry.Epoch);
    }
}
