using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

public sealed class GrainActivationTests
{
    [Fact]
    public async Task FirstCallActivatesAndTheSameKeyReachesTheSameActivation()
    {
        await using var silo = await TestSilo.StartAsync();
        Assert.Equal(0, silo.Directory.Count);

        var first = await silo.Factory.GetGrain<ILifecycleGrain>(1).GetActivationId().Within();
        var again = await silo.Factory.GetGrain<ILifecycleGrain>(1).GetActivationId().Within();

        Assert.Equal(first, again);
        Assert.Equal(1, silo.Directory.Count);
        Assert.Equal(1, silo.Journal.CountOf("ctor 1"));
        Assert.Equal(1, silo.Journal.CountOf("activate 1"));
    }

    [Fact]
    public async Task DifferentKeysGetDifferentActivations()
    {
        await using var silo = await TestSilo.StartAsync();

        var one = await silo.Factory.GetGrain<ILifecycleGrain>(1).GetActivationId().Within();
        var two = await silo.Factory.GetGrain<ILifecycleGrain>(2).GetActivationId().Within();
        var a = await silo.Factory.GetGrain<INamedGrain>("a").GetActivationId().Within();
        var b = await silo.Factory.GetGrain<INamedGrain>("b").GetActivationId().Within();

        Assert.Equal(4, new[] { one, two, a, b }.Distinct().Count());
        Assert.Equal(4, silo.Directory.Count);
        Assert.Equal("a/b", await silo.Factory.GetGrain<INamedGrain>("a/b").GetKey().Within());
    }

    [Fact]
    public async Task ConcurrentFirstCallsCreateExactlyOneActivation()
    {
        await using var silo = await TestSilo.StartAsync();
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = Enumerable.Range(0, 100)
            .Select(_ => Task.Run(async () =>
            {
                await go.Task;
                return await silo.Factory.GetGrain<ILifecycleGrain>(42).GetActivationId();
            }))
            .ToArray();

        go.SetResult();
        var ids = await Task.WhenAll(calls).Within();

        Assert.Single(ids.Distinct());
        Assert.Equal(1, silo.Journal.CountOf("ctor 42"));
        Assert.Equal(1, silo.Journal.CountOf("activate 42"));
        Assert.Equal(1, silo.Directory.Count);
    }

    [Fact]
    public async Task LifecycleRunsConstructorActivateCallsDeactivateInOrder()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ILifecycleGrain>(7);

        Assert.Equal("test-lifecycle/i/7", await grain.GetIdSeenByConstructor().Within());
        var first = await grain.GetActivationId().Within();
        await grain.Deactivate().Within();
        await silo.Journal.WaitFor("deactivated 7");
        await Bounded.Until(() => silo.Directory.Count == 0, "the deactivated activation left the directory");
        var second = await grain.GetActivationId().Within();

        Assert.NotEqual(first, second);
        Assert.Equal(
            ["ctor 7", "activate 7", "call 7", "deactivate 7 ApplicationRequested", "ctor 7", "activate 7", "call 7"],
            silo.Journal.Entries);
    }

    [Fact]
    public async Task CallArrivingDuringDeactivationWaitsAndGetsAFreshActivation()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ILifecycleGrain>(8);
        var first = await grain.GetActivationId().Within();
        silo.Journal.Close("deactivate 8");

        await grain.Deactivate().Within();
        await silo.Journal.WaitFor("deactivating 8");
        var during = grain.GetActivationId();
        Assert.False(during.IsCompleted);
        silo.Journal.Open("deactivate 8");
        var second = await during.Within();

        Assert.NotEqual(first, second);
        var entries = silo.Journal.Entries;
        Assert.True(Array.IndexOf(entries, "deactivate 8 ApplicationRequested") < Array.LastIndexOf(entries, "activate 8"));
        Assert.Equal(2, silo.Journal.CountOf("ctor 8"));
    }

    [Fact]
    public async Task FailingOnActivateFailsTheWaitingCallsAndLeavesNoActivationBehind()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<ILifecycleGrain>(9);
        silo.Journal.SetFlag("fail-activation 9", true);
        silo.Journal.Close("activate 9");

        // Three calls queue behind the activation; all of them see the activation's exception, unchanged.
        var calls = new[] { grain.GetActivationId(), grain.GetActivationId(), grain.GetActivationId() };
        silo.Journal.Open("activate 9");
        foreach (var call in calls)
        {
            var error = await Assert.ThrowsAsync<ActivationFailedException>(() => call.Within());
            Assert.Equal("activation of 9 refused", error.Message);
        }
        Assert.Equal(0, silo.Directory.Count);
        Assert.Equal(0, silo.Journal.CountOf("call 9"));
        Assert.DoesNotContain(silo.Journal.Entries, e => e.StartsWith("deactivate 9", StringComparison.Ordinal));

        silo.Journal.SetFlag("fail-activation 9", false);
        await grain.GetActivationId().Within();
        Assert.Equal(2, silo.Journal.CountOf("ctor 9"));
        Assert.Equal(1, silo.Journal.CountOf("call 9"));
    }

    [Fact]
    public async Task ReferencesKnowTheirGrainAndCompareByIdentity()
    {
        await using var silo = await TestSilo.StartAsync();
        var a = silo.Factory.GetGrain<INamedGrain>("x");
        var b = silo.Factory.GetGrain<INamedGrain>("x");

        Assert.Equal(a, b);
        Assert.NotEqual(a, silo.Factory.GetGrain<INamedGrain>("y"));
        Assert.Equal(GrainId.Create(typeof(INamedGrain).FullName!, "x"), a.GetGrainId());
        Assert.Equal(0, silo.Directory.Count); // references do not activate anything
    }
}
