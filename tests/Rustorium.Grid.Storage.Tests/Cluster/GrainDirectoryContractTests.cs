using Rustorium.Grid.Cluster;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests.Cluster;

/// <summary>
/// The <see cref="IGrainDirectory"/> contract, run unchanged against every implementation (Orleans style: derive and
/// implement <see cref="OpenDirectoryAsync"/>). Liveness comes from the membership table of the same cluster store, so the
/// tests make silos join, shut down, die and restart through <see cref="IMembershipTable"/>. Each test works in stores of
/// its own names, so implementations may share one server.
/// </summary>
public abstract class GrainDirectoryContractTests
{
    /// <summary>
    /// Opens the cluster store called <paramref name="storeName"/>: its grain directory and the membership table that
    /// directory judges liveness by (the same object when one class implements both, as the PostgreSQL store does). A name
    /// never opened gives an empty directory and table; opening a name again (also while another handle is open, as a
    /// second silo would) gives the same durable ones.
    /// </summary>
    protected abstract Task<(IGrainDirectory Directory, IMembershipTable Membership)> OpenDirectoryAsync(string storeName);

    /// <summary>A fresh store name.</summary>
    protected static string NewStoreName() => "grains_" + Guid.NewGuid().ToString("N")[..12];

    private readonly CancellationToken _ct = Deadline();

    private static readonly GrainId Counter = GrainId.Create("counter", "apples");
    private static readonly GrainId Other = GrainId.Create("counter", 42);
    private static readonly GrainId Third = GrainId.Create("account", "ada");

    private sealed record Store(IGrainDirectory Directory, IMembershipTable Membership, string Name);

    private async Task<Store> NewStoreAsync() => await OpenStoreAsync(NewStoreName());

    private async Task<Store> OpenStoreAsync(string name)
    {
        var (directory, membership) = await OpenDirectoryAsync(name);
        return new Store(directory, membership, name);
    }

    private static async Task CloseAsync(Store store)
    {
        if (store.Directory is IAsyncDisposable directory) await directory.DisposeAsync();
        if (!ReferenceEquals(store.Membership, store.Directory) && store.Membership is IAsyncDisposable membership)
            await membership.DisposeAsync();
    }

    /// <summary>Joins a silo incarnation (Active) and returns its address.</summary>
    private async Task<SiloAddress> JoinAsync(Store store, string endpoint, long generation = 1) =>
        (await store.Membership.JoinAsync(
            new SiloRegistration(new SiloAddress(endpoint, generation), "silo-" + endpoint.Replace(':', '-'), "eu-west", null), _ct)).Address;

    private async Task DieAsync(Store store, SiloAddress silo) =>
        Assert.True(await store.Membership.SetStatusAsync(silo, SiloStatus.Dead, _ct), $"{silo} could not be set Dead.");

    private static async Task<GridErrorCode> ErrorOf(Func<Task> call) => (await Assert.ThrowsAsync<GridException>(call)).Code;

    // ---------------------------------------------------------------- registration

    [Fact]
    public async Task TheFirstRegistrationOfAGrainIsAtEpochOne()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));
            Assert.Empty(await store.Directory.ListAsync(_ct));

            var entry = await store.Directory.RegisterAsync(Counter, a, _ct);
            Assert.Equal(new GrainDirectoryEntry(Counter, a, 1), entry);
            Assert.Equal(entry, await store.Directory.LookupAsync(Counter, _ct));

            // Epochs are per grain: another grain's first registration is at 1 too.
            var other = await store.Directory.RegisterAsync(Other, a, _ct);
            Assert.Equal(new GrainDirectoryEntry(Other, a, 1), other);
            Assert.Equal(2, (await store.Directory.ListAsync(_ct)).Count);
            Assert.Null(await store.Directory.LookupAsync(Third, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task RegisteringAgainByTheHolderChangesNothing()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            var first = await store.Directory.RegisterAsync(Counter, a, _ct);
            for (int i = 0; i < 3; i++) Assert.Equal(first, await store.Directory.RegisterAsync(Counter, a, _ct));

            Assert.Equal(new GrainDirectoryEntry(Counter, a, 1), await store.Directory.LookupAsync(Counter, _ct));
            Assert.Equal([first], await store.Directory.ListAsync(_ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task ALiveHolderKeepsTheGrainAndOtherSilosGetItsEntry()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            var b = await JoinAsync(store, "10.0.0.2:7000");
            var c = await JoinAsync(store, "10.0.0.3:7000");
            var held = await store.Directory.RegisterAsync(Counter, a, _ct);

            Assert.Equal(held, await store.Directory.RegisterAsync(Counter, b, _ct));

            // A silo that is shutting down is still alive: it keeps its grains until it unregisters them or dies.
            Assert.True(await store.Membership.SetStatusAsync(a, SiloStatus.ShuttingDown, _ct));
            Assert.Equal(held, await store.Directory.RegisterAsync(Counter, c, _ct));
            Assert.Equal(held, await store.Directory.LookupAsync(Counter, _ct));
            Assert.Equal([held], await store.Directory.ListAsync(_ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task ARegistrationToADeadSiloIsTakenOverAtTheNextEpoch()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            var b = await JoinAsync(store, "10.0.0.2:7000");
            var c = await JoinAsync(store, "10.0.0.3:7000");
            await store.Directory.RegisterAsync(Counter, a, _ct);

            // The failure detector's verdict (any heartbeat is older than zero) frees the registration at once.
            Assert.True(await store.Membership.DeclareDeadAsync(a, TimeSpan.Zero, _ct));
            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));

            var taken = await store.Directory.RegisterAsync(Counter, b, _ct);
            Assert.Equal(new GrainDirectoryEntry(Counter, b, 2), taken);
            Assert.Equal(taken, await store.Directory.LookupAsync(Counter, _ct));
            // The dead silo cannot take it back, nor can a third silo take it from the live one.
            Assert.Equal(taken, await store.Directory.RegisterAsync(Counter, a, _ct));
            Assert.Equal(taken, await store.Directory.RegisterAsync(Counter, c, _ct));

            // A clean stop (Dead by SetStatus) frees it the same way.
            await DieAsync(store, b);
            Assert.Equal(new GrainDirectoryEntry(Counter, c, 3), await store.Directory.RegisterAsync(Counter, c, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task ARestartOfTheHoldersEndpointFreesItsRegistrations()
    {
        var store = await NewStoreAsync();
        try
        {
            var first = await JoinAsync(store, "10.0.0.1:7000", 100);
            var b = await JoinAsync(store, "10.0.0.2:7000");
            await store.Directory.RegisterAsync(Counter, first, _ct);
            await store.Directory.RegisterAsync(Other, first, _ct);

            var restarted = await JoinAsync(store, "10.0.0.1:7000", 101);

            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));
            Assert.Null(await store.Directory.LookupAsync(Other, _ct));
            Assert.Empty(await store.Directory.ListAsync(_ct));
            // The new incarnation starts with no grains: it registers them again like any other silo.
            Assert.Equal(new GrainDirectoryEntry(Counter, restarted, 2), await store.Directory.RegisterAsync(Counter, restarted, _ct));
            Assert.Equal(new GrainDirectoryEntry(Other, b, 2), await store.Directory.RegisterAsync(Other, b, _ct));
            // The earlier incarnation gets the new holders' entries.
            Assert.Equal(restarted, (await store.Directory.RegisterAsync(Counter, first, _ct)).Silo);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task ARegistrationToASiloThatNeverJoinedIsFree()
    {
        var store = await NewStoreAsync();
        try
        {
            var stranger = new SiloAddress("10.0.0.9:7000", 1);
            var b = await JoinAsync(store, "10.0.0.2:7000");

            // The directory does not refuse it (the runtime registers only as a member), but it holds nothing.
            Assert.Equal(new GrainDirectoryEntry(Counter, stranger, 1), await store.Directory.RegisterAsync(Counter, stranger, _ct));
            // Registering again by the holder returns its registration unchanged, whatever the membership table says of it.
            Assert.Equal(new GrainDirectoryEntry(Counter, stranger, 1), await store.Directory.RegisterAsync(Counter, stranger, _ct));
            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));
            Assert.Empty(await store.Directory.ListAsync(_ct));
            Assert.Equal(new GrainDirectoryEntry(Counter, b, 2), await store.Directory.RegisterAsync(Counter, b, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    // ---------------------------------------------------------------- lookup and list

    [Fact]
    public async Task LookupIsNullForAGrainNeverRegisteredOrWhoseHolderDied()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            var b = await JoinAsync(store, "10.0.0.2:7000");
            var kept = await store.Directory.RegisterAsync(Other, b, _ct);
            await store.Directory.RegisterAsync(Counter, a, _ct);

            await DieAsync(store, a);

            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));
            Assert.Null(await store.Directory.LookupAsync(Third, _ct));
            Assert.Equal(kept, await store.Directory.LookupAsync(Other, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task ListHoldsTheLiveRegistrationsInOrdinalOrderOfTheGrainIds()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            var leaving = await JoinAsync(store, "10.0.0.2:7000");
            var dead = await JoinAsync(store, "10.0.0.3:7000");

            // Registered out of order. Ordinal: "Counter" < "counter"; "counter/i/10" < "counter/i/9"; "counter/s/B" <
            // "counter/s/a"; and U+1F600 (a surrogate pair in UTF-16) < U+FF5E, unlike in code point order.
            GrainId[] live =
            [
                GrainId.Create("counter", "\uFF5E"), GrainId.Create("counter", 9), GrainId.Create("counter", "a"),
                GrainId.Create("counter", "\U0001F600"), GrainId.Create("Counter", "a"), GrainId.Create("counter", 10),
                GrainId.Create("counter", "B"), GrainId.Create("counter", "a/b"), GrainId.Create("counter", -1),
            ];
            for (int i = 0; i < live.Length; i++) await store.Directory.RegisterAsync(live[i], i % 2 == 0 ? a : leaving, _ct);
            await store.Directory.RegisterAsync(GrainId.Create("counter", "dead-holder"), dead, _ct);
            var gone = await store.Directory.RegisterAsync(GrainId.Create("counter", "unregistered"), a, _ct);
            Assert.True(await store.Directory.UnregisterAsync(gone.Grain, a, gone.Epoch, _ct));
            Assert.True(await store.Membership.SetStatusAsync(leaving, SiloStatus.ShuttingDown, _ct));
            await DieAsync(store, dead);

            var listed = (await store.Directory.ListAsync(_ct)).Select(e => e.Grain.ToString()).ToList();
            Assert.Equal(
            [
                "Counter/s/a", "counter/i/-1", "counter/i/10", "counter/i/9", "counter/s/B", "counter/s/a", "counter/s/a/b",
                "counter/s/\U0001F600", "counter/s/\uFF5E",
            ], listed);

            var entries = await store.Directory.ListAsync(_ct);
            Assert.All(entries, e => Assert.Equal(1, e.Epoch));
            Assert.All(entries, e => Assert.Equal(Array.IndexOf(live, e.Grain) % 2 == 0 ? a : leaving, e.Silo));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    // ---------------------------------------------------------------- unregistration

    [Fact]
    public async Task UnregisterIsConditionalOnSiloAndEpochAndKeepsTheEpoch()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            var b = await JoinAsync(store, "10.0.0.2:7000");
            var held = await store.Directory.RegisterAsync(Counter, a, _ct);

            // Another epoch, another silo, another incarnation of the holder's endpoint, another grain: nothing changes.
            Assert.False(await store.Directory.UnregisterAsync(Counter, a, 2, _ct));
            Assert.False(await store.Directory.UnregisterAsync(Counter, a, 0, _ct));
            Assert.False(await store.Directory.UnregisterAsync(Counter, b, 1, _ct));
            Assert.False(await store.Directory.UnregisterAsync(Counter, new SiloAddress(a.Endpoint, 2), 1, _ct));
            Assert.False(await store.Directory.UnregisterAsync(Other, a, 1, _ct));
            Assert.Equal(held, await store.Directory.LookupAsync(Counter, _ct));

            Assert.True(await store.Directory.UnregisterAsync(Counter, a, 1, _ct));
            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));
            Assert.Empty(await store.Directory.ListAsync(_ct));
            Assert.False(await store.Directory.UnregisterAsync(Counter, a, 1, _ct));

            // The epoch never goes back: registering again (even by the same silo) continues from it.
            Assert.Equal(new GrainDirectoryEntry(Counter, a, 2), await store.Directory.RegisterAsync(Counter, a, _ct));
            await DieAsync(store, a);
            var taken = await store.Directory.RegisterAsync(Counter, b, _ct);
            Assert.Equal(new GrainDirectoryEntry(Counter, b, 3), taken);

            // The previous holder's late deactivation (its epoch) does not remove the new registration.
            Assert.False(await store.Directory.UnregisterAsync(Counter, a, 2, _ct));
            Assert.Equal(taken, await store.Directory.LookupAsync(Counter, _ct));

            Assert.True(await store.Directory.UnregisterAsync(Counter, b, 3, _ct));
            Assert.Equal(new GrainDirectoryEntry(Counter, b, 4), await store.Directory.RegisterAsync(Counter, b, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task UnregisterSiloRemovesOnlyThatIncarnationsRegistrations()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000", 1);
            var b = await JoinAsync(store, "10.0.0.2:7000");
            var first = await store.Directory.RegisterAsync(Counter, a, _ct);
            var second = await store.Directory.RegisterAsync(Other, a, _ct);
            var kept = await store.Directory.RegisterAsync(Third, b, _ct);

            // Another generation of the endpoint, a silo that never joined: nothing to remove.
            Assert.Equal(0, await store.Directory.UnregisterSiloAsync(new SiloAddress(a.Endpoint, 2), _ct));
            Assert.Equal(0, await store.Directory.UnregisterSiloAsync(new SiloAddress("10.0.0.9:7000", 1), _ct));
            Assert.Equal([kept, second, first], await store.Directory.ListAsync(_ct));

            Assert.Equal(2, await store.Directory.UnregisterSiloAsync(a, _ct));
            Assert.Null(await store.Directory.LookupAsync(Counter, _ct));
            Assert.Null(await store.Directory.LookupAsync(Other, _ct));
            Assert.Equal([kept], await store.Directory.ListAsync(_ct));
            Assert.Equal(0, await store.Directory.UnregisterSiloAsync(a, _ct));

            // The epochs were kept; and after a restart, clearing the old incarnation leaves the new one's rows alone.
            var restarted = await JoinAsync(store, a.Endpoint, 2);
            Assert.Equal(new GrainDirectoryEntry(Counter, restarted, 2), await store.Directory.RegisterAsync(Counter, restarted, _ct));
            Assert.Equal(new GrainDirectoryEntry(Other, b, 2), await store.Directory.RegisterAsync(Other, b, _ct));
            Assert.Equal(0, await store.Directory.UnregisterSiloAsync(a, _ct));
            Assert.Equal(new GrainDirectoryEntry(Counter, restarted, 2), await store.Directory.LookupAsync(Counter, _ct));
            Assert.Equal(1, await store.Directory.UnregisterSiloAsync(restarted, _ct));
            Assert.Equal(2, (await store.Directory.ListAsync(_ct)).Count);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    // ---------------------------------------------------------------- arguments

    [Fact]
    public async Task ADefaultGrainIdOrABadSiloAddressIsInvalidArgument()
    {
        var store = await NewStoreAsync();
        try
        {
            var a = await JoinAsync(store, "10.0.0.1:7000");
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.RegisterAsync(default, a, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.LookupAsync(default, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.UnregisterAsync(default, a, 1, _ct)));

            SiloAddress[] bad = [default, new("", 1), new("  ", 1), new(a.Endpoint, 0), new(a.Endpoint, -3)];
            foreach (var silo in bad)
            {
                Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.RegisterAsync(Counter, silo, _ct)));
                Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.UnregisterAsync(Counter, silo, 1, _ct)));
                Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.UnregisterSiloAsync(silo, _ct)));
            }
            var held = await store.Directory.RegisterAsync(Counter, a, _ct);
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => store.Directory.UnregisterAsync(Counter, a, -1, _ct)));

            // None of it registered or removed anything.
            Assert.Equal([held], await store.Directory.ListAsync(_ct));
            Assert.Equal(1, held.Epoch);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    // ---------------------------------------------------------------- concurrency

    [Fact]
    public async Task OfEightSilosRegisteringOneGrainAtOnceExactlyOneWins()
    {
        var name = NewStoreName();
        var stores = new List<Store>();
        try
        {
            for (int i = 0; i < 4; i++) stores.Add(await OpenStoreAsync(name));
            var silos = new List<SiloAddress>();
            for (int i = 0; i < 8; i++) silos.Add(await JoinAsync(stores[0], $"10.0.1.{i}:7000"));
            // Warm every handle up, so the race is between statements rather than connection set-ups.
            foreach (var store in stores) Assert.Null(await store.Directory.LookupAsync(Third, _ct));

            // Every caller registers on its own handle (two callers per handle), released together by one gate.
            async Task<GrainDirectoryEntry[]> RaceAsync(GrainId grain, IReadOnlyList<SiloAddress> contenders)
            {
                var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var calls = contenders.Select((silo, i) => Task.Run(async () =>
                {
                    await gate.Task;
                    return await stores[i % stores.Count].Directory.RegisterAsync(grain, silo, _ct);
                })).ToArray();
                gate.SetResult();
                return await Task.WhenAll(calls);
            }

            // Fresh grains: the race is on the insert.
            for (int round = 0; round < 12; round++)
            {
                var grain = GrainId.Create("race", round);
                var results = await RaceAsync(grain, silos);
                var winner = results[0];
                Assert.All(results, r => Assert.Equal(winner, r));
                Assert.Equal(1, winner.Epoch);
                Assert.Single(silos, s => s == winner.Silo);
                Assert.Equal(winner, await stores[3].Directory.LookupAsync(grain, _ct));
            }

            // Grains whose holder died: the race is on the takeover, and the epoch moves on by exactly one.
            var holder = await JoinAsync(stores[0], "10.0.2.2:7000");
            var orphans = Enumerable.Range(0, 6).Select(i => GrainId.Create("orphan", i)).ToArray();
            foreach (var orphan in orphans) await stores[0].Directory.RegisterAsync(orphan, holder, _ct);
            await DieAsync(stores[0], holder);
            foreach (var orphan in orphans)
            {
                var results = await RaceAsync(orphan, silos);
                var winner = results[0];
                Assert.All(results, r => Assert.Equal(winner, r));
                Assert.Equal(2, winner.Epoch);
                Assert.Single(silos, s => s == winner.Silo);
                Assert.Equal(winner, await stores[1].Directory.LookupAsync(orphan, _ct));
            }

            // Every registration is where the race left it: 18 grains, one row each, held by the contenders.
            var listed = await stores[2].Directory.ListAsync(_ct);
            Assert.Equal(18, listed.Count);
            Assert.All(listed, e => Assert.Contains(e.Silo, silos));
            Assert.DoesNotContain(listed, e => e.Silo == holder);
        }
        finally
        {
            foreach (var store in stores) await CloseAsync(store);
        }
    }

    // ---------------------------------------------------------------- durability

    [Fact]
    public async Task RegistrationsAndEpochsSurviveReopeningTheStore()
    {
        var store = await NewStoreAsync();
        var name = store.Name;
        SiloAddress a;
        GrainDirectoryEntry held;
        try
        {
            a = await JoinAsync(store, "10.0.0.1:7000");
            held = await store.Directory.RegisterAsync(Counter, a, _ct);
            var released = await store.Directory.RegisterAsync(Other, a, _ct);
            Assert.True(await store.Directory.UnregisterAsync(Other, a, released.Epoch, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }

        store = await OpenStoreAsync(name);
        try
        {
            Assert.Equal(held, await store.Directory.LookupAsync(Counter, _ct));
            Assert.Null(await store.Directory.LookupAsync(Other, _ct));
            Assert.Equal([held], await store.Directory.ListAsync(_ct));
            Assert.Equal(new GrainDirectoryEntry(Other, a, 2), await store.Directory.RegisterAsync(Other, a, _ct));
        }
        finally
        {
            await CloseAsync(store);
        }
    }
}
