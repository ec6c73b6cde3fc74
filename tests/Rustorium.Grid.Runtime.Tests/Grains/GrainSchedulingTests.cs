using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

public sealed class GrainSchedulingTests
{
    [Fact]
    public async Task NonReadOnlyCallsRunOneAtATime()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(1);

        await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Task.Run(() => grain.Write()))).Within();

        Assert.Equal(1, await grain.GetMaxConcurrentWriters().Within());
        Assert.Equal(100, await grain.GetWriteCount().Within());
    }

    [Fact]
    public async Task ReadOnlyCallsInterleave()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(2);

        // WaitForPartner only finishes once ReleasePartner has run while it was still running: both must be admitted together.
        var waiting = grain.WaitForPartner();
        var releasing = grain.ReleasePartner();

        await Task.WhenAll(waiting, releasing).Within();
    }

    [Fact]
    public async Task GrainCodeRunsOnTheActivationScheduler()
    {
        await using var silo = await TestSilo.StartAsync();
        Assert.True(await silo.Factory.GetGrain<ITurnGrain>(3).OnActivationScheduler().Within());
    }

    [Fact]
    public async Task AWaitingWriterHoldsBackLaterReaders()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(4);
        silo.Journal.Close("r1");

        var r1 = grain.Read("r1");
        await silo.Journal.WaitFor("r1 started");
        var writer = grain.WriteLogged("w", CancellationToken.None);
        var later = Enumerable.Range(2, 10).Select(i => grain.Read($"r{i}")).ToArray();
        silo.Journal.Open("r1");
        await Task.WhenAll([r1, writer, .. later]).Within();

        var log = silo.Journal;
        Assert.True(log.IndexOf("r1 end") < log.IndexOf("w start"), "the writer waited for the running reader");
        for (int i = 2; i < 12; i++)
        {
            Assert.True(log.IndexOf("w end") < log.IndexOf($"r{i} start"), $"reader r{i}, queued after the writer, ran after it");
        }
    }

    [Fact]
    public async Task ACallToItselfIsRefusedInsteadOfDeadlocking()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(5);

        var error = await Assert.ThrowsAsync<GrainReentrancyException>(() => grain.CallSelf().Within());

        Assert.Equal(GridErrorCode.Internal, error.Code);
        Assert.Equal(grain.GetGrainId(), error.Target);
        Assert.Contains("not reentrant", error.Message);
        await grain.Write().Within(); // the activation is still healthy
    }

    [Fact]
    public async Task ACycleThroughAnotherGrainIsRefused()
    {
        await using var silo = await TestSilo.StartAsync();
        var a = silo.Factory.GetGrain<ITurnGrain>(6);

        // 6 -> 7 -> 6: grain 7's call back to 6 would wait for 6's running turn, which waits for 7.
        var error = await Assert.ThrowsAsync<GrainReentrancyException>(() => a.CallOther(7).Within());

        Assert.Equal(a.GetGrainId(), error.Target);
        Assert.Equal([a.GetGrainId(), silo.Factory.GetGrain<ITurnGrain>(7).GetGrainId()], error.CallChain);
        await a.Write().Within();
    }

    [Fact]
    public async Task ACallCancelledWhileQueuedNeverRuns()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(8);
        silo.Journal.Close("w1");
        using var cancel = new CancellationTokenSource();

        var w1 = grain.WriteLogged("w1", CancellationToken.None);
        await silo.Journal.WaitFor("w1 started");
        var w2 = grain.WriteLogged("w2", cancel.Token);
        var w3 = grain.WriteLogged("w3", CancellationToken.None);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => w2.Within());
        silo.Journal.Open("w1");
        await Task.WhenAll(w1, w3).Within();
        Assert.DoesNotContain("w2 start", silo.Journal.Entries);
    }

    [Fact]
    public async Task ARunningCallSeesItsCancellationToken()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(9);
        using var cancel = new CancellationTokenSource();

        var call = grain.WaitForCancellation(cancel.Token);
        await silo.Journal.WaitFor("waiting 9");
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.Within());
        await grain.Write().Within();
    }

    [Fact]
    public async Task ACallWithAnAlreadyCancelledTokenNeverRuns()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ITurnGrain>(10);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => grain.WriteLogged("never", new CancellationToken(canceled: true)).Within());

        Assert.DoesNotContain("never start", silo.Journal.Entries);
        Assert.Equal(0, silo.Directory.Count);
    }

    [Fact]
    public async Task AFullQueueShedsLoadWithUnavailable()
    {
        await using var silo = await TestSilo.StartAsync(grains => grains.ConfigureRuntime(o => o.MaxQueuedCallsPerActivation = 2));
        var grain = silo.Factory.GetGrain<ITurnGrain>(11);
        silo.Journal.Close("hold");

        var running = grain.WriteLogged("hold", CancellationToken.None);
        await silo.Journal.WaitFor("hold started");
        var queued = new[] { grain.Write(), grain.Write() };
        var refused = await Assert.ThrowsAsync<GridException>(() => grain.Write().Within());

        Assert.Equal(GridErrorCode.Unavailable, refused.Code);
        silo.Journal.Open("hold");
        await Task.WhenAll([running, .. queued]).Within();
        Assert.Equal(2, await grain.GetWriteCount().Within());
    }
}
