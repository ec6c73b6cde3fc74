using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

[GrainType("test-interleave")]
public interface IInterleaveGrain : IGrainWithIntegerKey
{
    /// <summary>Raises "{me} in", then waits until "{partner} in" was raised: completes only if both calls run at once.</summary>
    [GrainMethod(1), AlwaysInterleave] Task Handshake(string me, string partner);

    [GrainMethod(2), AlwaysInterleave] Task Interleaved(string name, CancellationToken cancellationToken);

    [GrainMethod(3)] Task Write(string name);

    [GrainMethod(4), ReadOnly] Task Read(string name);

    /// <summary>Waits until <paramref name="together"/> churn calls are inside, then does grain work with many awaits.</summary>
    [GrainMethod(5), AlwaysInterleave] Task Churn(int rounds, int together);

    [GrainMethod(6)] Task<(int Violations, int MaxInterleaved)> GetStats();

    [GrainMethod(7), AlwaysInterleave] Task<bool> OnActivationScheduler();

    [GrainMethod(8), AlwaysInterleave] Task Deactivate();
}

/// <summary>
/// Logs "{name} start" with the number of interleaving calls running at that moment, so a test can check that read-only and
/// exclusive turns never start while an interleaving call runs, whatever the timing.
/// </summary>
public sealed class InterleaveGrain(GrainJournal journal) : Grain, IInterleaveGrain
{
    private int _interleaving;
    private int _maxInterleaving;
    private int _inside;
    private int _violations;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        journal.Add($"activate {GrainId.IntegerKey}");
        await journal.PassGate($"activate {GrainId.IntegerKey}");
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        journal.Add($"deactivate interleaving={_interleaving}");
        return Task.CompletedTask;
    }

    public async Task Handshake(string me, string partner)
    {
        Enter();
        journal.Raise($"{me} in");
        await journal.WaitFor($"{partner} in");
        journal.Add($"{me} out");
        Leave();
    }

    public async Task Interleaved(string name, CancellationToken cancellationToken)
    {
        Enter();
        journal.Add($"{name} start");
        journal.Raise($"{name} started");
        await journal.PassGate(name);
        journal.Add($"{name} end");
        Leave();
    }

    public async Task Write(string name)
    {
        journal.Add($"{name} start interleaving={_interleaving}");
        journal.Raise($"{name} started");
        await journal.PassGate(name);
        journal.Add($"{name} end");
    }

    public async Task Read(string name)
    {
        journal.Add($"{name} start interleaving={_interleaving}");
        journal.Raise($"{name} started");
        await journal.PassGate(name);
        journal.Add($"{name} end");
    }

    public async Task Churn(int rounds, int together)
    {
        Enter();
        if (_interleaving == together) journal.Raise("churners in");
        await journal.WaitFor("churners in");
        for (int i = 0; i < rounds; i++)
        {
            // Two threads inside grain code at once would show here.
            if (Interlocked.Increment(ref _inside) != 1) Interlocked.Increment(ref _violations);
            Thread.SpinWait(100);
            Interlocked.Decrement(ref _inside);
            await Task.Yield();
        }
        Leave();
    }

    public Task<(int Violations, int MaxInterleaved)> GetStats() => Task.FromResult((_violations, _maxInterleaving));

    public async Task<bool> OnActivationScheduler()
    {
        bool before = TaskScheduler.Current != TaskScheduler.Default;
        await Task.Yield();
        return before && TaskScheduler.Current != TaskScheduler.Default;
    }

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private void Enter()
    {
        _interleaving++;
        _maxInterleaving = Math.Max(_maxInterleaving, _interleaving);
    }

    private void Leave() => _interleaving--;
}

public interface IBothAttributesGrain : IGrainWithIntegerKey
{
    [GrainMethod(1), ReadOnly, AlwaysInterleave] Task Both();
}

public interface IClassOnlyInterleaveGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Work();
}

public sealed class ClassOnlyInterleaveGrain : Grain, IClassOnlyInterleaveGrain
{
    [AlwaysInterleave]
    public Task Work() => Task.CompletedTask;
}

public sealed class AlwaysInterleaveTests
{
    private static Task<TestSilo> StartAsync() => TestSilo.StartAsync(grains => grains.AddGrain<IInterleaveGrain, InterleaveGrain>());

    [Fact]
    public async Task InterleavingWritesOverlap()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(1);

        // Each call waits for the other to have started: they finish only if they run at the same time.
        var a = grain.Handshake("a", "b");
        var b = grain.Handshake("b", "a");

        await Task.WhenAll(a, b).Within();
        Assert.Equal(2, (await grain.GetStats().Within()).MaxInterleaved);
    }

    [Fact]
    public async Task AnInterleavingCallIsAdmittedWhileAnExclusiveCallRuns()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(2);
        silo.Journal.Close("w");

        var writer = grain.Write("w");
        await silo.Journal.WaitFor("w started");
        await grain.Interleaved("i", CancellationToken.None).Within();

        Assert.False(writer.IsCompleted, "the exclusive call is still running: the interleaving call did not wait for it");
        silo.Journal.Open("w");
        await writer.Within();
    }

    [Fact]
    public async Task AnInterleavingCallIsAdmittedWhileReadOnlyCallsRunAndWritersWait()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(3);
        silo.Journal.Close("r1");

        var reader = grain.Read("r1");
        await silo.Journal.WaitFor("r1 started");
        var writer = grain.Write("w"); // waits for r1
        await grain.Interleaved("i", CancellationToken.None).Within(); // neither the reader nor the waiting writer holds it back

        Assert.False(reader.IsCompleted);
        Assert.False(writer.IsCompleted);
        silo.Journal.Open("r1");
        await Task.WhenAll(reader, writer).Within();
        Assert.True(silo.Journal.IndexOf("r1 end") < silo.Journal.IndexOf("w start interleaving=0"));
    }

    [Fact]
    public async Task ExclusiveAndReadOnlyCallsWaitForRunningInterleavingCalls()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(4);
        silo.Journal.Close("i");

        var interleaved = grain.Interleaved("i", CancellationToken.None);
        await silo.Journal.WaitFor("i started");
        // Both are decided on arrival: had either been admitted it would be queued on the activation's scheduler ahead of
        // the interleaving call's continuation, and would log interleaving=1.
        var writer = grain.Write("w");
        var reader = grain.Read("r");
        silo.Journal.Open("i");
        await Task.WhenAll(interleaved, writer, reader).Within();

        Assert.Contains("w start interleaving=0", silo.Journal.Entries);
        Assert.Contains("r start interleaving=0", silo.Journal.Entries);
        Assert.True(silo.Journal.IndexOf("i end") < silo.Journal.IndexOf("w start interleaving=0"));
    }

    [Fact]
    public async Task InterleavingCallsLeaveTheFifoOrderOfTheOthersIntact()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(5);
        silo.Journal.Close("w1");
        silo.Journal.Close("i1");

        var w1 = grain.Write("w1");
        await silo.Journal.WaitFor("w1 started");
        var r1 = grain.Read("r1");
        var w2 = grain.Write("w2");
        var r2 = grain.Read("r2");
        var i1 = grain.Interleaved("i1", CancellationToken.None);
        await silo.Journal.WaitFor("i1 started"); // admitted past the three queued calls and the running writer
        var i2 = grain.Interleaved("i2", CancellationToken.None);
        await i2.Within();

        silo.Journal.Open("w1");
        await w1.Within();
        silo.Journal.Open("i1");
        await Task.WhenAll(r1, w2, r2, i1).Within();

        var log = silo.Journal;
        Assert.True(log.IndexOf("i1 start") < log.IndexOf("w1 end"));
        Assert.True(log.IndexOf("w1 end") < log.IndexOf("r1 start interleaving=0"));
        Assert.True(log.IndexOf("r1 end") < log.IndexOf("w2 start interleaving=0"), "w2 waited for r1, queued before it");
        Assert.True(log.IndexOf("w2 end") < log.IndexOf("r2 start interleaving=0"), "r2, queued after w2, ran after it");
        Assert.DoesNotContain(log.Entries, e => e.Contains("interleaving=", StringComparison.Ordinal) && !e.EndsWith("interleaving=0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task InterleavedCallsRunGrainCodeOneThreadAtATimeOnTheActivationScheduler()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(6);

        Assert.True(await grain.OnActivationScheduler().Within());
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => grain.Churn(50, together: 16)))).Within();

        var (violations, maxInterleaved) = await grain.GetStats().Within();
        Assert.Equal(0, violations);
        Assert.Equal(16, maxInterleaved);
    }

    [Fact]
    public async Task AnInterleavingCallArrivingDuringActivationWaitsForItAndCanBeCancelled()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(7);
        silo.Journal.Close("activate 7");
        using var cancel = new CancellationTokenSource();

        var first = grain.Interleaved("first", CancellationToken.None);
        await Bounded.Until(() => silo.Journal.Entries.Contains("activate 7"), "the activation started");
        var cancelled = grain.Interleaved("cancelled", cancel.Token);
        var second = grain.Interleaved("second", CancellationToken.None);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.Within());
        Assert.False(first.IsCompleted);
        silo.Journal.Open("activate 7");
        await Task.WhenAll(first, second).Within();

        Assert.DoesNotContain("cancelled start", silo.Journal.Entries);
        Assert.True(silo.Journal.IndexOf("activate 7") < silo.Journal.IndexOf("first start"));
    }

    [Fact]
    public async Task DeactivationWaitsForRunningInterleavingCalls()
    {
        await using var silo = await StartAsync();
        var grain = silo.Factory.GetGrain<IInterleaveGrain>(8);
        silo.Journal.Close("i");

        var interleaved = grain.Interleaved("i", CancellationToken.None);
        await silo.Journal.WaitFor("i started");
        await grain.Deactivate().Within();
        silo.Journal.Open("i");
        await interleaved.Within();
        await Bounded.Until(() => silo.Journal.Entries.Any(e => e.StartsWith("deactivate", StringComparison.Ordinal)), "the grain deactivated");

        Assert.Contains("deactivate interleaving=0", silo.Journal.Entries);
        Assert.True(silo.Journal.IndexOf("i end") < silo.Journal.IndexOf("deactivate interleaving=0"));
    }

    [Fact]
    public void ReadOnlyTogetherWithAlwaysInterleaveIsRefused()
    {
        var error = Assert.Throws<GridException>(() => GrainInterfaceDescription.Get(typeof(IBothAttributesGrain)));

        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("both [ReadOnly] and [AlwaysInterleave]", error.Message);
        Assert.Contains("Both", error.Message);
    }

    [Fact]
    public void AlwaysInterleaveOnlyOnTheClassIsRefused()
    {
        var registry = new GrainTypeRegistry();

        var error = Assert.Throws<GridException>(() => registry.Register<IClassOnlyInterleaveGrain, ClassOnlyInterleaveGrain>());

        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("[AlwaysInterleave]", error.Message);
        Assert.Contains("grain interface method", error.Message);
    }

    [Fact]
    public void TheDescriptionExposesTheAttribute()
    {
        var description = GrainInterfaceDescription.Get(typeof(IInterleaveGrain));

        Assert.True(description.Methods.Single(m => m.Id == 1).IsAlwaysInterleave);
        Assert.False(description.Methods.Single(m => m.Id == 3).IsAlwaysInterleave);
        Assert.False(description.Methods.Single(m => m.Id == 4).IsAlwaysInterleave);
        Assert.True(description.Methods.Single(m => m.Id == 4).IsReadOnly);
    }
}
