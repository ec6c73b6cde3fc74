using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

public sealed class GrainCollectionTests
{
    private static Task<TestSilo> StartWithTinyCollectionAge() => TestSilo.StartAsync(grains => grains.ConfigureCollection(o =>
    {
        o.CollectionAge = TimeSpan.FromMilliseconds(150);
        o.CollectionQuantum = TimeSpan.FromMilliseconds(25);
    }));

    [Fact]
    public async Task IdleActivationsAreCollected()
    {
        await using var silo = await StartWithTinyCollectionAge();
        var grain = silo.Factory.GetGrain<ILifecycleGrain>(1);
        var first = await grain.GetActivationId().Within();

        await silo.Journal.WaitFor("deactivated 1");
        await Bounded.Until(() => silo.Directory.Count == 0, "the collected activation left the directory");
        Assert.Contains("deactivate 1 IdleCollection", silo.Journal.Entries);

        Assert.NotEqual(first, await grain.GetActivationId().Within());
    }

    [Fact]
    public async Task TimersRunAsTurnsAndDoNotKeepTheGrainAlive()
    {
        await using var silo = await StartWithTinyCollectionAge();
        var grain = silo.Factory.GetGrain<ITimerGrain>(2);

        await grain.Start(TimeSpan.FromMilliseconds(5)).Within();
        // Calls that hold the activation across awaits while ticks are due: a tick must never run inside one.
        for (int i = 0; i < 3; i++) await grain.BusyWrite(TimeSpan.FromMilliseconds(20)).Within();
        await Bounded.Until(() => silo.Journal.CountOf("tick 2") >= 3, "the timer ticked");
        var stats = await grain.GetStats().Within();
        Assert.Equal(0, stats.Overlaps);
        Assert.True(stats.AllTicksOnActivationScheduler);

        // Ticks keep coming, but they are not calls: the grain is collected once calls stop.
        await silo.Journal.WaitFor("timer-grain deactivated 2");
        Assert.Contains("timer-grain deactivate 2 IdleCollection", silo.Journal.Entries);
    }

    [Fact]
    public async Task TimersStopWhenTheActivationDeactivates()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITimerGrain>(3);
        await grain.Start(TimeSpan.FromMilliseconds(5)).Within();
        await Bounded.Until(() => silo.Journal.CountOf("tick 3") >= 2, "the timer ticked");

        await grain.Deactivate().Within();
        await silo.Journal.WaitFor("timer-grain deactivated 3");
        await Bounded.Until(() => silo.Directory.Count == 0, "the activation left the directory");
        int ticks = silo.Journal.CountOf("tick 3");

        // An observation window, not synchronisation: twenty periods in which a live timer would have ticked.
        await Task.Delay(100);
        Assert.Equal(ticks, silo.Journal.CountOf("tick 3"));
        Assert.Equal(0, silo.Directory.Count);
    }

    [Fact]
    public async Task DeactivateAllDrainsCallsInFlightThenDeactivatesEverything()
    {
        var silo = await TestSilo.StartAsync();
        try
        {
            var turn = silo.Factory.GetGrain<ITurnGrain>(4);
            var lifecycle = silo.Factory.GetGrain<ILifecycleGrain>(5);
            await lifecycle.GetActivationId().Within();
            silo.Journal.Close("w1");
            var w1 = turn.WriteLogged("w1", CancellationToken.None);
            await silo.Journal.WaitFor("w1 started");
            var w2 = turn.WriteLogged("w2", CancellationToken.None);

            var shutdown = silo.Directory.DeactivateAllAsync(CancellationToken.None);
            Assert.True(silo.Directory.IsShuttingDown);
            var refused = await Assert.ThrowsAsync<GridException>(() => lifecycle.GetActivationId().Within());
            Assert.Equal(GridErrorCode.Unavailable, refused.Code);
            Assert.False(shutdown.IsCompleted);

            silo.Journal.Open("w1");
            await Task.WhenAll(w1, w2, shutdown).Within();

            Assert.Contains("w2 end", silo.Journal.Entries);
            Assert.Contains("deactivate 5 ShuttingDown", silo.Journal.Entries);
            Assert.Equal(0, silo.Directory.Count);
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    [Fact]
    public async Task AForcedShutdownFailsCallsThatHaveNotStarted()
    {
        var silo = await TestSilo.StartAsync();
        try
        {
            var turn = silo.Factory.GetGrain<ITurnGrain>(6);
            silo.Journal.Close("stuck");
            var stuck = turn.WriteLogged("stuck", CancellationToken.None);
            await silo.Journal.WaitFor("stuck started");
            var queued = turn.WriteLogged("queued", CancellationToken.None);
            using var force = new CancellationTokenSource();

            var shutdown = silo.Directory.DeactivateAllAsync(force.Token);
            force.Cancel();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => shutdown.Within());
            var error = await Assert.ThrowsAsync<GridException>(() => queued.Within());
            Assert.Equal(GridErrorCode.Unavailable, error.Code);
            Assert.DoesNotContain("queued start", silo.Journal.Entries);

            silo.Journal.Open("stuck");
            await stuck.Within();
            await Bounded.Until(() => silo.Directory.Count == 0, "the stuck activation finished deactivating");
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }
}
