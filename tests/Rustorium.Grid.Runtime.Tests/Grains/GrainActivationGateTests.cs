using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Rustorium.Grid.Runtime.Grains;
using Xunit;

namespace Rustorium.Grid.Runtime.Tests.Grains;

/// <summary>The activation gate: consulted before any grain code of a new activation runs, told when an activation has gone.</summary>
public sealed class GrainActivationGateTests
{
    private sealed class RecordingGate : IGrainActivationGate
    {
        public readonly ConcurrentQueue<string> Events = new();

        public ValueTask OnActivatingAsync(GrainId grain, GrainTypeRegistration registration, CancellationToken cancellationToken)
        {
            Events.Enqueue($"activating {grain}");
            if (grain.StringKey.StartsWith("elsewhere", StringComparison.Ordinal))
                throw new GridException(GridErrorCode.NotOwner, $"{grain} lives on another silo.");
            return ValueTask.CompletedTask;
        }

        public ValueTask OnRemovedAsync(GrainId grain, GrainTypeRegistration registration)
        {
            Events.Enqueue($"removed {grain}");
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task ARefusedActivationFailsItsCallsWithTheGatesErrorAndRunsNoGrainCode()
    {
        var gate = new RecordingGate();
        await using var silo = await TestSilo.StartAsync(configureServices: s => s.AddSingleton<IGrainActivationGate>(gate));

        var refused = await Assert.ThrowsAsync<GridException>(() => silo.Factory.GetGrain<INamedGrain>("elsewhere-1").GetKey());
        Assert.Equal(GridErrorCode.NotOwner, refused.Code);
        Assert.False(silo.Directory.IsActive(GrainId.Create(GrainInterfaceDescription.Get(typeof(INamedGrain)).Name, "elsewhere-1")));

        Assert.Equal("here", await silo.Factory.GetGrain<INamedGrain>("here").GetKey());
        // The gate hears of the refused activation's removal after the directory dropped it, not before its call fails
        // (a CI run asserted it right away and found only the two "activating" events).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!gate.Events.Any(e => e.StartsWith("removed", StringComparison.Ordinal)) && DateTime.UtcNow < deadline) await Task.Delay(10);
        var events = gate.Events.ToArray();
        Assert.Contains(events, e => e.StartsWith("activating", StringComparison.Ordinal) && e.EndsWith("/s/elsewhere-1", StringComparison.Ordinal));
        Assert.Contains(events, e => e.StartsWith("removed", StringComparison.Ordinal) && e.EndsWith("/s/elsewhere-1", StringComparison.Ordinal));
        Assert.Contains(events, e => e.StartsWith("activating", StringComparison.Ordinal) && e.EndsWith("/s/here", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheGateHearsOfADeactivationAfterTheActivationLeftTheDirectory()
    {
        var gate = new RecordingGate();
        await using var silo = await TestSilo.StartAsync(configureServices: s => s.AddSingleton<IGrainActivationGate>(gate));
        var grain = silo.Factory.GetGrain<INamedGrain>("short-lived");
        var first = await grain.GetActivationId();
        var id = GrainId.Create(GrainInterfaceDescription.Get(typeof(INamedGrain)).Name, "short-lived");
        Assert.DoesNotContain(gate.Events, e => e.StartsWith("removed", StringComparison.Ordinal));

        await silo.Directory.DeactivateAsync(id, DeactivationReason.ApplicationRequested);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!gate.Events.Contains($"removed {id}"))
        {
            Assert.True(DateTime.UtcNow < deadline, "The gate was not told of the deactivation.");
            await Task.Delay(10);
        }
        Assert.NotEqual(first, await grain.GetActivationId()); // a fresh activation, gated again
        Assert.Equal(2, gate.Events.Count(e => e == $"activating {id}"));
    }
}
