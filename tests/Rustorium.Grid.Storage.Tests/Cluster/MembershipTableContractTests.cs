using System.Diagnostics;
using Rustorium.Grid.Cluster;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests.Cluster;

/// <summary>
/// The <see cref="IMembershipTable"/> contract, run unchanged against every implementation (Orleans's
/// MembershipTableTestsBase: derive and implement <see cref="OpenMembershipAsync"/>). Each test works in stores of its own
/// names, so implementations may share one server.
/// </summary>
public abstract class MembershipTableContractTests
{
    /// <summary>
    /// Opens the cluster store called <paramref name="storeName"/>: a name never opened gives an empty table; opening a
    /// name again (also while another handle is open, as a second silo would) gives the same durable table.
    /// </summary>
    protected abstract Task<IMembershipTable> OpenMembershipAsync(string storeName);

    /// <summary>
    /// Test-only: makes <paramref name="silo"/>'s last heartbeat <paramref name="by"/> older in the store, as if that much
    /// time had passed on the store's clock since it was recorded (PostgreSQL: an UPDATE of <c>last_heartbeat</c>). This
    /// makes "the heartbeat is older than the limit" deterministic without sleeping; the store still decides by its clock.
    /// </summary>
    protected abstract Task AgeHeartbeatAsync(string storeName, SiloAddress silo, TimeSpan by);

    /// <summary>A fresh store name.</summary>
    protected static string NewStoreName() => "members_" + Guid.NewGuid().ToString("N")[..12];

    private readonly CancellationToken _ct = Deadline();

    private static SiloRegistration Silo(string endpoint, long generation, string region = "eu-west") =>
        new(new SiloAddress(endpoint, generation), "silo-" + endpoint.Replace(':', '-'), region, $"http://{endpoint.Split(':')[0]}:8080/");

    private async Task<(IMembershipTable Table, string Name)> NewTableAsync()
    {
        var name = NewStoreName();
        return (await OpenMembershipAsync(name), name);
    }

    private static async Task CloseAsync(IMembershipTable table)
    {
        if (table is IAsyncDisposable disposable) await disposable.DisposeAsync();
    }

    private async Task<SiloEntry> EntryAsync(IMembershipTable table, SiloAddress silo) =>
        (await table.ReadAllAsync(_ct)).Single(e => e.Address == silo);

    private static async Task<GridErrorCode> ErrorOf(Func<Task> call) => (await Assert.ThrowsAsync<GridException>(call)).Code;

    /// <summary>The rows without their heartbeat ages (which grow between two reads).</summary>
    private static List<SiloEntry> WithoutAges(IEnumerable<SiloEntry> entries) => entries.Select(e => e with { HeartbeatAge = TimeSpan.Zero }).ToList();

    // ---------------------------------------------------------------- join, heartbeat, read

    [Fact]
    public async Task JoinAddsAnActiveMemberWithAFreshHeartbeat()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var registration = Silo("10.0.0.1:7000", 5);
            var joined = await table.JoinAsync(registration, _ct);

            Assert.Equal(registration.Address, joined.Address);
            Assert.Equal(registration.Name, joined.Name);
            Assert.Equal(registration.Region, joined.Region);
            Assert.Equal(registration.HttpEndpoint, joined.HttpEndpoint);
            Assert.Equal(SiloStatus.Active, joined.Status);
            Assert.Equal(joined.JoinedAt, joined.LastHeartbeat);
            Assert.InRange(joined.HeartbeatAge, TimeSpan.Zero, TimeSpan.FromSeconds(30));

            var read = Assert.Single(await table.ReadAllAsync(_ct));
            Assert.Equal(joined with { HeartbeatAge = read.HeartbeatAge }, read);
            Assert.InRange(read.HeartbeatAge, TimeSpan.Zero, TimeSpan.FromSeconds(30));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task JoinKeepsANullHttpEndpoint()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var registration = Silo("10.0.0.1:7000", 1) with { HttpEndpoint = null };
            Assert.Null((await table.JoinAsync(registration, _ct)).HttpEndpoint);
            Assert.Null((await EntryAsync(table, registration.Address)).HttpEndpoint);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task ReadAllIsOrderedByEndpointThenGeneration()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            // Joined out of order; "B" < "a" ordinally, whatever the store's collation would say.
            foreach (var (endpoint, generation) in new[] { ("b:1", 3L), ("a:1", 1L), ("B:1", 7L), ("b:1", 9L), ("a:1", 2L), ("a:10", 1L) })
                await table.JoinAsync(Silo(endpoint, generation), _ct);

            var addresses = (await table.ReadAllAsync(_ct)).Select(e => e.Address.ToString()).ToList();
            Assert.Equal(["B:1@7", "a:1@1", "a:1@2", "a:10@1", "b:1@3", "b:1@9"], addresses);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task HeartbeatRecordsTheStoresNow()
    {
        var (table, name) = await NewTableAsync();
        try
        {
            var silo = Silo("10.0.0.1:7000", 1).Address;
            var joined = await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct);
            await AgeHeartbeatAsync(name, silo, TimeSpan.FromHours(1));
            var aged = await EntryAsync(table, silo);
            Assert.InRange(aged.HeartbeatAge, TimeSpan.FromHours(1), TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));

            Assert.True(await table.HeartbeatAsync(silo, _ct));

            var after = await EntryAsync(table, silo);
            Assert.InRange(after.HeartbeatAge, TimeSpan.Zero, TimeSpan.FromSeconds(30));
            Assert.True(after.LastHeartbeat >= joined.LastHeartbeat);
            Assert.Equal(SiloStatus.Active, after.Status);
            Assert.Equal(joined.JoinedAt, after.JoinedAt);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task AHeartbeatWithLoadIsReadBackByEveryReaderAndBadLoadIsRefused()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var a = Silo("10.0.0.1:7000", 1).Address;
            var b = Silo("10.0.0.2:7000", 1).Address;
            await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct);
            await table.JoinAsync(Silo("10.0.0.2:7000", 1), _ct);
            Assert.Equal(default, (await EntryAsync(table, a)).Load); // none reported yet

            Assert.True(await table.HeartbeatAsync(a, new SiloLoad(1234.5, 17), _ct));
            Assert.True(await table.HeartbeatAsync(b, new SiloLoad(0, 3), _ct));
            Assert.Equal(new SiloLoad(1234.5, 17), (await EntryAsync(table, a)).Load);
            Assert.Equal(new SiloLoad(0, 3), (await EntryAsync(table, b)).Load);

            // A plain heartbeat keeps the last load; the next report replaces it.
            Assert.True(await table.HeartbeatAsync(a, _ct));
            Assert.Equal(new SiloLoad(1234.5, 17), (await EntryAsync(table, a)).Load);
            Assert.True(await table.HeartbeatAsync(a, new SiloLoad(2, 1), _ct));
            Assert.Equal(new SiloLoad(2, 1), (await EntryAsync(table, a)).Load);

            var before = WithoutAges(await table.ReadAllAsync(_ct));
            foreach (var bad in new[] { new SiloLoad(-1, 0), new SiloLoad(double.NaN, 0), new SiloLoad(double.PositiveInfinity, 0), new SiloLoad(1, -1) })
            {
                var error = await Assert.ThrowsAsync<GridException>(() => table.HeartbeatAsync(a, bad, _ct));
                Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
            }
            Assert.Equal(before, WithoutAges(await table.ReadAllAsync(_ct)));

            // A dead silo's report is refused like its heartbeat, and changes nothing.
            Assert.True(await table.SetStatusAsync(b, SiloStatus.Dead, _ct));
            Assert.False(await table.HeartbeatAsync(b, new SiloLoad(99, 99), _ct));
            Assert.Equal(new SiloLoad(0, 3), (await EntryAsync(table, b)).Load);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task HeartbeatOfAnUnknownSiloIsFalseAndAddsNothing()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            await table.JoinAsync(Silo("10.0.0.1:7000", 2), _ct);
            var before = WithoutAges(await table.ReadAllAsync(_ct));

            Assert.False(await table.HeartbeatAsync(new SiloAddress("10.0.0.1:7000", 3), _ct));
            Assert.False(await table.HeartbeatAsync(new SiloAddress("10.0.0.9:7000", 2), _ct));

            Assert.Equal(before, WithoutAges(await table.ReadAllAsync(_ct)));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    // ---------------------------------------------------------------- generations

    [Fact]
    public async Task ARestartSupersedesTheEarlierGeneration()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var first = await table.JoinAsync(Silo("10.0.0.1:7000", 100), _ct);
            var neighbour = await table.JoinAsync(Silo("10.0.0.2:7000", 100), _ct);
            var second = await table.JoinAsync(Silo("10.0.0.1:7000", 101), _ct);

            var all = await table.ReadAllAsync(_ct);
            Assert.Equal(SiloStatus.Dead, all.Single(e => e.Address == first.Address).Status);
            Assert.Equal(SiloStatus.Active, all.Single(e => e.Address == second.Address).Status);
            Assert.Equal(SiloStatus.Active, all.Single(e => e.Address == neighbour.Address).Status);

            // The superseded incarnation learns it is dead at its next heartbeat, and stops serving.
            Assert.False(await table.HeartbeatAsync(first.Address, _ct));
            Assert.True(await table.HeartbeatAsync(second.Address, _ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task JoiningTheSameAddressTwiceIsAConflictAndChangesNothing()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            await table.JoinAsync(Silo("10.0.0.1:7000", 4), _ct);
            var before = WithoutAges(await table.ReadAllAsync(_ct));

            var e = await Assert.ThrowsAsync<GridException>(() => table.JoinAsync(Silo("10.0.0.1:7000", 4, region: "us-east"), _ct));
            Assert.Equal(GridErrorCode.Conflict, e.Code);
            Assert.Contains("10.0.0.1:7000@4", e.Message);

            Assert.Equal(before, WithoutAges(await table.ReadAllAsync(_ct)));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task JoiningAnEarlierGenerationAfterALaterOneIsAConflictAndChangesNothing()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            await table.JoinAsync(Silo("10.0.0.1:7000", 4), _ct);
            await table.JoinAsync(Silo("10.0.0.1:7000", 9), _ct);
            var before = WithoutAges(await table.ReadAllAsync(_ct));

            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => table.JoinAsync(Silo("10.0.0.1:7000", 7), _ct)));
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => table.JoinAsync(Silo("10.0.0.1:7000", 4), _ct)));

            Assert.Equal(before, WithoutAges(await table.ReadAllAsync(_ct)));
            Assert.Equal(SiloStatus.Active, (await EntryAsync(table, new SiloAddress("10.0.0.1:7000", 9))).Status);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task ConcurrentStartsOnOneEndpointLeaveOnlyTheLatestJoinedGenerationLive()
    {
        var name = NewStoreName();
        var tables = new List<IMembershipTable>();
        try
        {
            for (int i = 0; i < 4; i++) tables.Add(await OpenMembershipAsync(name));
            const int Starts = 24;
            var outcomes = await Task.WhenAll(Enumerable.Range(1, Starts).Select(async generation =>
            {
                await Task.Yield();
                try
                {
                    await tables[generation % tables.Count].JoinAsync(Silo("10.0.0.1:7000", generation), _ct);
                    return (generation, Joined: true);
                }
                catch (GridException e) when (e.Code == GridErrorCode.Conflict)
                {
                    return (generation, Joined: false);
                }
            }));

            var joined = outcomes.Where(o => o.Joined).Select(o => (long)o.generation).ToHashSet();
            var rows = await tables[0].ReadAllAsync(_ct);
            Assert.Equal(joined, rows.Select(r => r.Address.Generation).ToHashSet());
            var live = Assert.Single(rows, r => r.Status != SiloStatus.Dead);
            Assert.Equal(joined.Max(), live.Address.Generation);
            // The latest start always gets in: nothing can be later than it.
            Assert.Contains((long)Starts, joined);
        }
        finally
        {
            foreach (var table in tables) await CloseAsync(table);
        }
    }

    [Fact]
    public async Task JoinRefusesBlankFields()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var good = Silo("10.0.0.1:7000", 1);
            SiloRegistration[] bad =
            [
                good with { Address = new SiloAddress("", 1) },
                good with { Address = new SiloAddress("  ", 1) },
                good with { Address = new SiloAddress("10.0.0.1:7000", 0) },
                good with { Address = new SiloAddress("10.0.0.1:7000", -3) },
                good with { Name = "" },
                good with { Region = " " },
                good with { HttpEndpoint = "" },
            ];
            foreach (var registration in bad)
                Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => table.JoinAsync(registration, _ct)));
            Assert.Empty(await table.ReadAllAsync(_ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    // ---------------------------------------------------------------- failure detection

    [Fact]
    public async Task DeclareDeadOnlyWhenTheHeartbeatIsOlderThanTheLimit()
    {
        var (table, name) = await NewTableAsync();
        try
        {
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            var other = (await table.JoinAsync(Silo("10.0.0.2:7000", 1), _ct)).Address;

            Assert.False(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(1), _ct));
            Assert.Equal(SiloStatus.Active, (await EntryAsync(table, silo)).Status);

            // Two minutes pass on the store's clock for this silo only (see AgeHeartbeatAsync).
            await AgeHeartbeatAsync(name, silo, TimeSpan.FromMinutes(2));
            Assert.False(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(5), _ct));
            Assert.True(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(1), _ct));
            // Only the first declaration changes the row.
            Assert.False(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(1), _ct));
            Assert.False(await table.DeclareDeadAsync(other, TimeSpan.FromMinutes(1), _ct));

            var all = await table.ReadAllAsync(_ct);
            Assert.Equal(SiloStatus.Dead, all.Single(e => e.Address == silo).Status);
            Assert.Equal(SiloStatus.Active, all.Single(e => e.Address == other).Status);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task OfManyDetectorsExactlyOneDeclaresASiloDead()
    {
        var name = NewStoreName();
        var tables = new List<IMembershipTable>();
        try
        {
            for (int i = 0; i < 4; i++) tables.Add(await OpenMembershipAsync(name));
            var silo = (await tables[0].JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            await AgeHeartbeatAsync(name, silo, TimeSpan.FromMinutes(2));

            var verdicts = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
            {
                await Task.Yield();
                return await tables[i % tables.Count].DeclareDeadAsync(silo, TimeSpan.FromMinutes(1), _ct);
            }));
            Assert.Single(verdicts, v => v);
            Assert.Equal(SiloStatus.Dead, (await EntryAsync(tables[0], silo)).Status);
        }
        finally
        {
            foreach (var table in tables) await CloseAsync(table);
        }
    }

    [Fact]
    public async Task AHeartbeatInTimeKeepsASiloAlive()
    {
        var (table, name) = await NewTableAsync();
        try
        {
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            await AgeHeartbeatAsync(name, silo, TimeSpan.FromMinutes(2));
            Assert.True(await table.HeartbeatAsync(silo, _ct));
            Assert.False(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(1), _ct));
            Assert.Equal(SiloStatus.Active, (await EntryAsync(table, silo)).Status);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task DeclareDeadWaitsForTheLimitToPassOnTheStoresClock()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var limit = TimeSpan.FromMilliseconds(300);
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            var sinceBeforeHeartbeat = Stopwatch.StartNew();
            Assert.True(await table.HeartbeatAsync(silo, _ct));
            Assert.False(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(10), _ct));

            // Poll with a deadline: the declaration succeeds once the store's clock says the heartbeat is older than the
            // limit, and not before (the stopwatch started before the heartbeat was sent, so it measures at least as much).
            var deadline = Stopwatch.StartNew();
            bool declared = false;
            while (!declared)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "The silo was never declared dead.");
                declared = await table.DeclareDeadAsync(silo, limit, _ct);
                if (!declared) await Task.Delay(20, _ct);
            }
            Assert.True(sinceBeforeHeartbeat.Elapsed >= limit - TimeSpan.FromMilliseconds(10),
                $"Declared dead {sinceBeforeHeartbeat.Elapsed.TotalMilliseconds} ms after the heartbeat, before the {limit.TotalMilliseconds} ms limit.");

            var entry = await EntryAsync(table, silo);
            Assert.Equal(SiloStatus.Dead, entry.Status);
            Assert.True(entry.HeartbeatAge > limit);
            Assert.False(await table.HeartbeatAsync(silo, _ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task DeclareDeadRefusesANegativeLimit()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => table.DeclareDeadAsync(silo, TimeSpan.FromSeconds(-1), _ct)));
            Assert.Equal(SiloStatus.Active, (await EntryAsync(table, silo)).Status);
            Assert.False(await table.DeclareDeadAsync(new SiloAddress("10.0.0.9:7000", 1), TimeSpan.Zero, _ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task DeadIsFinal()
    {
        var (table, name) = await NewTableAsync();
        try
        {
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            await AgeHeartbeatAsync(name, silo, TimeSpan.FromMinutes(2));
            Assert.True(await table.DeclareDeadAsync(silo, TimeSpan.FromMinutes(1), _ct));
            var dead = await EntryAsync(table, silo);

            Assert.False(await table.HeartbeatAsync(silo, _ct));
            Assert.False(await table.SetStatusAsync(silo, SiloStatus.ShuttingDown, _ct));
            Assert.False(await table.SetStatusAsync(silo, SiloStatus.Dead, _ct));
            Assert.False(await table.DeclareDeadAsync(silo, TimeSpan.Zero, _ct));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => table.SetStatusAsync(silo, SiloStatus.Active, _ct)));

            var after = await EntryAsync(table, silo);
            Assert.Equal(SiloStatus.Dead, after.Status);
            Assert.Equal(dead.LastHeartbeat, after.LastHeartbeat);
            // Nor does joining the same address again bring it back.
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)));
            Assert.Equal(SiloStatus.Dead, (await EntryAsync(table, silo)).Status);
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    // ---------------------------------------------------------------- leaving

    [Fact]
    public async Task ShuttingDownKeepsHeartbeatingUntilItLeaves()
    {
        var (table, name) = await NewTableAsync();
        try
        {
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;

            Assert.True(await table.SetStatusAsync(silo, SiloStatus.ShuttingDown, _ct));
            Assert.Equal(SiloStatus.ShuttingDown, (await EntryAsync(table, silo)).Status);
            Assert.True(await table.HeartbeatAsync(silo, _ct));
            Assert.Equal(SiloStatus.ShuttingDown, (await EntryAsync(table, silo)).Status);
            Assert.True(await table.SetStatusAsync(silo, SiloStatus.ShuttingDown, _ct));

            Assert.True(await table.SetStatusAsync(silo, SiloStatus.Dead, _ct));
            Assert.Equal(SiloStatus.Dead, (await EntryAsync(table, silo)).Status);
            Assert.False(await table.HeartbeatAsync(silo, _ct));

            // A shutting-down silo that stops heartbeating is declared dead like any other.
            var second = (await table.JoinAsync(Silo("10.0.0.2:7000", 1), _ct)).Address;
            Assert.True(await table.SetStatusAsync(second, SiloStatus.ShuttingDown, _ct));
            await AgeHeartbeatAsync(name, second, TimeSpan.FromMinutes(2));
            Assert.True(await table.DeclareDeadAsync(second, TimeSpan.FromMinutes(1), _ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    [Fact]
    public async Task SetStatusRefusesActiveAndUndefinedStatusesAndIgnoresUnknownSilos()
    {
        var (table, _) = await NewTableAsync();
        try
        {
            var silo = (await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct)).Address;
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => table.SetStatusAsync(silo, SiloStatus.Active, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => table.SetStatusAsync(silo, (SiloStatus)0, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => table.SetStatusAsync(silo, (SiloStatus)4, _ct)));
            Assert.Equal(SiloStatus.Active, (await EntryAsync(table, silo)).Status);

            Assert.False(await table.SetStatusAsync(new SiloAddress("10.0.0.1:7000", 2), SiloStatus.ShuttingDown, _ct));
            Assert.False(await table.SetStatusAsync(new SiloAddress("10.0.0.9:7000", 1), SiloStatus.Dead, _ct));
            Assert.Single(await table.ReadAllAsync(_ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }

    // ---------------------------------------------------------------- durability

    [Fact]
    public async Task TheTableSurvivesReopeningTheStore()
    {
        var name = NewStoreName();
        var table = await OpenMembershipAsync(name);
        List<SiloEntry> before;
        try
        {
            await table.JoinAsync(Silo("10.0.0.1:7000", 1), _ct);
            await table.JoinAsync(Silo("10.0.0.1:7000", 2), _ct);
            var leaving = (await table.JoinAsync(Silo("10.0.0.2:7000", 1, region: "us-east"), _ct)).Address;
            await table.SetStatusAsync(leaving, SiloStatus.ShuttingDown, _ct);
            before = WithoutAges(await table.ReadAllAsync(_ct));
        }
        finally
        {
            await CloseAsync(table);
        }

        table = await OpenMembershipAsync(name);
        try
        {
            Assert.Equal(before, WithoutAges(await table.ReadAllAsync(_ct)));
            Assert.True(await table.HeartbeatAsync(new SiloAddress("10.0.0.1:7000", 2), _ct));
            Assert.False(await table.HeartbeatAsync(new SiloAddress("10.0.0.1:7000", 1), _ct));
        }
        finally
        {
            await CloseAsync(table);
        }
    }
}
