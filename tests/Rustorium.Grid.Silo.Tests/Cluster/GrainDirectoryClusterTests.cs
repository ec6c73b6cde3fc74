using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Rustorium.Grid.Client;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Storage.Postgres;
using Rustorium.Grid.Testing;
using Xunit;

namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>A directory-placed test grain: a running total, and where it runs.</summary>
[GrainType("test-tally")]
public interface ITallyGrain : IGrainWithStringKey
{
    [GrainMethod(1)]
    Task<long> AddAsync(long amount);

    [GrainMethod(2)]
    Task<string> HostAsync();
}

/// <summary>Counts its live activations per key across every in-process silo (statics are shared by the silos of one test process).</summary>
public sealed class TallyGrain(ClusterMembership membership) : Grain, ITallyGrain
{
    public static readonly ConcurrentDictionary<string, int> Live = new(StringComparer.Ordinal);
    public static readonly ConcurrentDictionary<string, int> MostLive = new(StringComparer.Ordinal);
    private long _total;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        int now = Live.AddOrUpdate(GrainId.StringKey, 1, (_, n) => n + 1);
        MostLive.AddOrUpdate(GrainId.StringKey, now, (_, most) => Math.Max(most, now));
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Live.AddOrUpdate(GrainId.StringKey, 0, (_, n) => n - 1);
        return Task.CompletedTask;
    }

    public Task<long> AddAsync(long amount) => Task.FromResult(_total += amount);

    public Task<string> HostAsync() => Task.FromResult(membership.Address.Endpoint);
}

/// <summary>A grain placed by the random director: where it runs, and how many activations of it ever ran at once.</summary>
[GrainType("test-spread")]
public interface ISpreadGrain : IGrainWithStringKey
{
    [GrainMethod(1)]
    Task<string> HostAsync();
}

[GrainPlacement(GrainPlacementKind.Directory, Director = "random")]
public sealed class SpreadGrain(ClusterMembership membership) : Grain, ISpreadGrain
{
    public static readonly ConcurrentDictionary<string, int> Activations = new(StringComparer.Ordinal);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Activations.AddOrUpdate(GrainId.StringKey, 1, (_, n) => n + 1);
        return Task.CompletedTask;
    }

    public Task<string> HostAsync() => Task.FromResult(membership.Address.Endpoint);
}

/// <summary>A grain placed by the load-based director.</summary>
[GrainType("test-balanced")]
public interface IBalancedGrain : IGrainWithStringKey
{
    [GrainMethod(1)]
    Task<string> HostAsync();
}

[GrainPlacement(GrainPlacementKind.Directory, Director = "load-based")]
public sealed class BalancedGrain(ClusterMembership membership) : Grain, IBalancedGrain
{
    public Task<string> HostAsync() => Task.FromResult(membership.Address.Endpoint);
}

/// <summary>
/// The grain directory in a cluster: three silos hosted in this process (GridSilo.RunAsync, each with its own TCP listener,
/// over one real PostgreSQL), clients connected to different silos calling the same grains at once.
/// </summary>
[Collection(ClusterTestCollection.Name)]
public sealed class GrainDirectoryClusterTests
{
    private const string Schema = "rgrid";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private sealed class InProcessSilo
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly TextWriter _error = TextWriter.Synchronized(new StringWriter());

        public required string Endpoint { get; init; }
        public Task<int> Run { get; private set; } = Task.FromResult(-1);
        public string Errors => _error.ToString() ?? "";

        public static async Task<InProcessSilo> StartAsync(string name, string connectionString, string dataDirectory)
        {
            int port = LoopbackPorts.Take();
            var silo = new InProcessSilo { Endpoint = $"127.0.0.1:{port}" };
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // A death timeout well above the heartbeat: three silos, their clients and the test share two cores, and no test
            // here waits for a failure detector (the dead silo is declared dead explicitly).
            string[] args =
            [
                "--store", "postgres", "--postgres", connectionString, "--schema", Schema, "--name", name,
                "--data-dir", dataDirectory, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--http-port", "0",
                "--Silo:Cluster:HeartbeatInterval=00:00:00.5", "--Silo:Cluster:DeathTimeout=00:00:06", "--Silo:Cluster:Rebalance=false",
                "--Logging:LogLevel:Default=Warning",
            ];
            silo.Run = Task.Run(() => GridSilo.RunAsync(args, TextWriter.Null, silo._error, silo._stop.Token, _ => started.TrySetResult(),
                services => services.AddGrainRuntime(grains => grains.AddGrain<ITallyGrain, TallyGrain>()
                    .AddGrain<ISpreadGrain, SpreadGrain>().AddGrain<IBalancedGrain, BalancedGrain>())));
            var first = await Task.WhenAny(started.Task, silo.Run).WaitAsync(Deadline);
            if (first == silo.Run) throw new InvalidOperationException($"Silo {name} exited with {await silo.Run} before serving: {silo.Errors}");
            return silo;
        }

        public async Task<int> StopAsync()
        {
            _stop.Cancel();
            return await Run.WaitAsync(Deadline);
        }
    }

    private static async Task<(PostgresClusterStore Store, List<InProcessSilo> Silos, TempDirectory Dir)> StartClusterAsync(int count)
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync("grains");
        var dir = new TempDirectory("rgrid-grains-");
        var silos = new List<InProcessSilo>();
        // One after the other: the first creates the schema and the shards; the others join.
        for (int i = 1; i <= count; i++) silos.Add(await InProcessSilo.StartAsync($"silo-{i}", connectionString, Path.Combine(dir.Path, $"silo-{i}")));
        var store = await PostgresClusterStore.OpenAsync(new PostgresClusterStoreOptions { ConnectionString = connectionString, Schema = Schema }, default);
        var deadline = DateTime.UtcNow + Deadline;
        while ((await store.ReadAllAsync(default)).Count(m => m.Status == Rustorium.Grid.Cluster.SiloStatus.Active) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, "The silos did not all become active members in time.");
            await Task.Delay(50);
        }
        return (store, silos, dir);
    }

    private static async Task StopAllAsync(IEnumerable<InProcessSilo> silos)
    {
        foreach (var silo in silos) if (!silo.Run.IsCompleted) await silo.StopAsync();
    }

    [Fact]
    public async Task EveryGrainHasOneActivationInTheClusterWhicheverSiloTheCallsReach()
    {
        var (store, silos, dir) = await StartClusterAsync(3);
        await using var _ = store;
        using var __ = dir;
        var clients = new List<GridClient>();
        try
        {
            foreach (var silo in silos) clients.Add(await GridClient.ConnectAsync([silo.Endpoint]));
            var keys = Enumerable.Range(0, 24).Select(i => $"one-{i}-{Guid.NewGuid():N}").ToArray();

            // Half the grains are placed first by one call through a chosen silo (prefer-local: they live there); then every
            // grain is called through all three silos at once, ten times each: the other half race to be placed, then forwarding.
            var placedOn = new Dictionary<string, string>();
            for (int i = 0; i < keys.Length; i += 2)
            {
                Assert.Equal(1, await clients[i / 2 % 3].GetGrain<ITallyGrain>(keys[i]).AddAsync(1));
                placedOn[keys[i]] = silos[i / 2 % 3].Endpoint;
            }
            await Task.WhenAll(keys.SelectMany(key => clients.SelectMany(client =>
                Enumerable.Range(0, 10).Select(_ => client.GetGrain<ITallyGrain>(key).AddAsync(1)))));

            var endpoints = silos.Select(s => s.Endpoint).ToHashSet();
            foreach (var key in keys)
            {
                var hosts = await Task.WhenAll(clients.Select(c => c.GetGrain<ITallyGrain>(key).HostAsync()));
                Assert.Single(hosts.Distinct());
                Assert.Contains(hosts[0], endpoints);
                if (placedOn.TryGetValue(key, out var home)) Assert.Equal(home, hosts[0]);
                long expected = 30 + (placedOn.ContainsKey(key) ? 1 : 0);
                Assert.Equal(expected, await clients[0].GetGrain<ITallyGrain>(key).AddAsync(0)); // no call lost, none ran on a second activation
                Assert.Equal(1, TallyGrain.MostLive[key]);

                var entry = await store.LookupAsync(GrainId.Create("test-tally", key), default);
                Assert.NotNull(entry);
                Assert.Equal(hosts[0], entry.Silo.Endpoint);
                Assert.Equal(1, entry.Epoch);
            }
            var listed = (await store.ListAsync(default)).Where(e => keys.Contains(e.Grain.StringKey)).ToList();
            Assert.Equal(keys.Length, listed.Count);
            Assert.Equal(3, listed.Select(e => e.Silo).Distinct().Count()); // the pre-placed half covers every silo
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
            await StopAllAsync(silos);
        }
    }

    [Fact]
    public async Task GrainsOfASiloThatStopsOrIsDeclaredDeadComeBackOnALiveSiloWithANewEpoch()
    {
        var (store, silos, dir) = await StartClusterAsync(3);
        await using var _ = store;
        using var __ = dir;
        // The client talks to the third silo, which stays up; the grains are placed on the first two by calls through them.
        await using var client = await GridClient.ConnectAsync([silos[2].Endpoint]);
        await using var viaFirst = await GridClient.ConnectAsync([silos[0].Endpoint]);
        await using var viaSecond = await GridClient.ConnectAsync([silos[1].Endpoint]);
        try
        {
            string stopping = $"stop-{Guid.NewGuid():N}", dying = $"die-{Guid.NewGuid():N}";
            Assert.Equal(5, await viaFirst.GetGrain<ITallyGrain>(stopping).AddAsync(5));
            Assert.Equal(7, await viaSecond.GetGrain<ITallyGrain>(dying).AddAsync(7));
            Assert.Equal(silos[0].Endpoint, await client.GetGrain<ITallyGrain>(stopping).HostAsync());
            Assert.Equal(silos[1].Endpoint, await client.GetGrain<ITallyGrain>(dying).HostAsync());

            // A clean stop deactivates the grain and removes its registration (the epoch stays).
            Assert.Equal(SiloExitCode.Ok, await silos[0].StopAsync());
            Assert.Null(await store.LookupAsync(GrainId.Create("test-tally", stopping), default));
            Assert.Equal(1, await client.GetGrain<ITallyGrain>(stopping).AddAsync(1)); // a new activation: its state was in memory
            var moved = await store.LookupAsync(GrainId.Create("test-tally", stopping), default);
            Assert.NotNull(moved);
            Assert.Equal(2, moved.Epoch);
            Assert.NotEqual(silos[0].Endpoint, moved.Silo.Endpoint);

            // Declared dead by the cluster: the silo exits, and its grain is placed again on a live silo.
            var member = (await store.ReadAllAsync(default)).Single(m => m.Address.Endpoint == silos[1].Endpoint && m.Status != Rustorium.Grid.Cluster.SiloStatus.Dead);
            Assert.True(await store.DeclareDeadAsync(member.Address, TimeSpan.Zero, default));
            Assert.Equal(SiloExitCode.DeclaredDead, await silos[1].Run.WaitAsync(Deadline));
            Assert.Equal(3, await client.GetGrain<ITallyGrain>(dying).AddAsync(3));
            var revived = await store.LookupAsync(GrainId.Create("test-tally", dying), default);
            Assert.NotNull(revived);
            Assert.Equal(2, revived.Epoch);
            Assert.Equal(silos[2].Endpoint, revived.Silo.Endpoint);
            Assert.Equal(silos[2].Endpoint, await client.GetGrain<ITallyGrain>(dying).HostAsync());
        }
        finally
        {
            await StopAllAsync(silos);
        }
    }

    /// <summary>
    /// Waits until <paramref name="silo"/> heartbeats once more: each round writes its heartbeat and then reads the table, so it
    /// has then read the table as it is now.
    /// </summary>
    private static async Task WaitForAHeartbeatOfAsync(PostgresClusterStore store, InProcessSilo silo)
    {
        var deadline = DateTime.UtcNow + Deadline;
        async Task<DateTimeOffset> LastAsync() =>
            (await store.ReadAllAsync(default)).Single(m => m.Address.Endpoint == silo.Endpoint && m.Status == Rustorium.Grid.Cluster.SiloStatus.Active).LastHeartbeat;
        var before = await LastAsync();
        while (await LastAsync() <= before)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Silo {silo.Endpoint} stopped heartbeating.");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task ARandomPlacedGrainCalledThroughOneSiloRunsWhereItsHashPointsAndGrainsSpreadOverTheCluster()
    {
        var (store, silos, dir) = await StartClusterAsync(3);
        await using var _ = store;
        using var __ = dir;
        try
        {
            await using var client = await GridClient.ConnectAsync([silos[0].Endpoint]);
            await WaitForAHeartbeatOfAsync(store, silos[0]); // so that the first silo's view lists every member as Active, as ours does
            var members = (await store.ReadAllAsync(default)).Where(m => m.Status == Rustorium.Grid.Cluster.SiloStatus.Active)
                .OrderBy(m => m.Address.Endpoint, StringComparer.Ordinal).ThenBy(m => m.Address.Generation)
                .Select(m => new PlacementCandidate(m.Address, m.Region, 0, 0)).ToList();
            Assert.Equal(3, members.Count);
            var keys = Enumerable.Range(0, 24).Select(i => $"spread-{i}-{Guid.NewGuid():N}").ToArray();

            // Every call goes through the first silo; each grain is called twice at once (one placement wins, one activation).
            var hosts = await Task.WhenAll(keys.Select(async key =>
            {
                var grain = client.GetGrain<ISpreadGrain>(key);
                var both = await Task.WhenAll(grain.HostAsync(), grain.HostAsync());
                Assert.Equal(both[0], both[1]);
                return both[0];
            }));
            for (int i = 0; i < keys.Length; i++)
            {
                var id = GrainId.Create("test-spread", keys[i]);
                var expected = new RandomGrainPlacement().Choose(new GrainPlacementRequest(id, members, members[0].Silo)).Endpoint;
                Assert.Equal(expected, hosts[i]);
                var entry = await store.LookupAsync(id, default);
                Assert.NotNull(entry);
                Assert.Equal(expected, entry.Silo.Endpoint);
                Assert.Equal(1, entry.Epoch);
                Assert.Equal(1, SpreadGrain.Activations[keys[i]]);
            }
            Assert.True(hosts.Distinct().Count() >= 2, $"24 random-placed grains all landed on {hosts[0]}.");
        }
        finally
        {
            await StopAllAsync(silos);
        }
    }

    [Fact]
    public async Task ALoadBasedPlacedGrainAvoidsTheSiloWithTheMostActivations()
    {
        var (store, silos, dir) = await StartClusterAsync(3);
        await using var _ = store;
        using var __ = dir;
        try
        {
            await using var client = await GridClient.ConnectAsync([silos[0].Endpoint]);
            // 40 prefer-local grains make the first silo the busiest by activations.
            await Task.WhenAll(Enumerable.Range(0, 40).Select(i => client.GetGrain<ITallyGrain>($"load-{i}-{Guid.NewGuid():N}").AddAsync(1)));

            // Wait until its heartbeat reported them, then until it has read the table again after that.
            var deadline = DateTime.UtcNow + Deadline;
            SiloEntry First(IReadOnlyList<SiloEntry> all) => all.Single(m => m.Address.Endpoint == silos[0].Endpoint && m.Status == Rustorium.Grid.Cluster.SiloStatus.Active);
            while (true)
            {
                var all = await store.ReadAllAsync(default);
                var others = all.Where(m => m.Address.Endpoint != silos[0].Endpoint && m.Status == Rustorium.Grid.Cluster.SiloStatus.Active).ToList();
                if (First(all).Load.Activations >= others.Max(m => m.Load.Activations) + 40) break;
                Assert.True(DateTime.UtcNow < deadline, "The first silo's heartbeats never reported its 40 activations.");
                await Task.Delay(50);
            }
            await WaitForAHeartbeatOfAsync(store, silos[0]);

            var keys = Enumerable.Range(0, 20).Select(i => $"balanced-{i}-{Guid.NewGuid():N}").ToArray();
            var hosts = await Task.WhenAll(keys.Select(key => client.GetGrain<IBalancedGrain>(key).HostAsync()));
            Assert.DoesNotContain(silos[0].Endpoint, hosts);
            for (int i = 0; i < keys.Length; i++)
            {
                var entry = await store.LookupAsync(GrainId.Create("test-balanced", keys[i]), default);
                Assert.NotNull(entry);
                Assert.Equal(hosts[i], entry.Silo.Endpoint);
            }
        }
        finally
        {
            await StopAllAsync(silos);
        }
    }
}
