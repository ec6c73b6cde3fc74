using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Cluster;

/// <summary>A grain that names a director although it is placed locally: refused at registration.</summary>
[GrainPlacement(GrainPlacementKind.Local, Director = "random")]
public sealed class LocalGrainWithADirector : Grain, IPlacementProbeGrain
{
    public Task<int> PingAsync() => Task.FromResult(1);
}

[GrainType("test-placement-probe")]
public interface IPlacementProbeGrain : IGrainWithStringKey
{
    [GrainMethod(1)]
    Task<int> PingAsync();
}

public sealed class GrainPlacementTests
{
    private static readonly SiloAddress A = new("10.0.0.1:7400", 1);
    private static readonly SiloAddress B = new("10.0.0.2:7400", 1);
    private static readonly SiloAddress C = new("10.0.0.3:7400", 1);
    private static readonly SiloAddress Outsider = new("10.0.0.9:7400", 1);

    private static GrainPlacementRequest Request(string key, SiloAddress requester, params (SiloAddress Silo, int Activations, double Ops)[] candidates) =>
        new(GrainId.Create("g", key), candidates.Select(c => new PlacementCandidate(c.Silo, "r", 0, 0) { Load = new SiloLoad(c.Ops, c.Activations) }).ToList(), requester);

    private static GrainPlacementRequest Idle(string key, SiloAddress requester) => Request(key, requester, (A, 0, 0), (B, 0, 0), (C, 0, 0));

    [Fact]
    public void PreferLocalPicksTheRequestingSiloWhenItIsActiveAndOtherwiseSpreads()
    {
        var director = new PreferLocalGrainPlacement();
        for (int i = 0; i < 20; i++) Assert.Equal(B, director.Choose(Idle($"k{i}", B)));
        var elsewhere = Enumerable.Range(0, 60).Select(i => director.Choose(Idle($"k{i}", Outsider))).ToList();
        Assert.DoesNotContain(Outsider, elsewhere);
        Assert.Equal(3, elsewhere.Distinct().Count());
    }

    [Fact]
    public void RandomIsAFunctionOfTheGrainAloneAndSpreadsGrainsEvenly()
    {
        var director = new RandomGrainPlacement();
        var counts = new Dictionary<SiloAddress, int>();
        for (int i = 0; i < 600; i++)
        {
            var chosen = director.Choose(Idle($"user-{i}", A));
            Assert.Equal(chosen, director.Choose(Idle($"user-{i}", C))); // whichever silo asks
            Assert.Equal(chosen, new RandomGrainPlacement().Choose(Request($"user-{i}", B, (A, 900, 9000), (B, 0, 0), (C, 5, 5)))); // whatever the load
            counts[chosen] = counts.GetValueOrDefault(chosen) + 1;
        }
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, n => Assert.InRange(n, 150, 250)); // 200 expected each; σ ≈ 11.5
        // Integer and string keys of the same text are different grains: they need not land together, and the type counts too.
        var spread = Enumerable.Range(0, 60).Select(i => director.Choose(new GrainPlacementRequest(GrainId.Create($"type-{i}", "same"), Idle("x", A).Candidates, A)));
        Assert.Equal(3, spread.Distinct().Count());
    }

    [Fact]
    public void LoadBasedNeverPicksTheBusiestOfThreeSilosAndUsesBothOthers()
    {
        var director = new LoadBasedGrainPlacement();
        var chosen = Enumerable.Range(0, 200).Select(i => director.Choose(Request($"u{i}", A, (A, 5, 0), (B, 500, 0), (C, 7, 0)))).ToList();
        Assert.DoesNotContain(B, chosen);
        Assert.Contains(A, chosen);
        Assert.Contains(C, chosen);
        // With activations equal, the call rate decides (on the doubling scale: 1,100 and 1,900 calls/s are alike).
        var byRate = Enumerable.Range(0, 200).Select(i => director.Choose(Request($"u{i}", A, (A, 3, 5000), (B, 3, 10), (C, 3, 20)))).ToList();
        Assert.DoesNotContain(A, byRate);
        var alike = Enumerable.Range(0, 200).Select(i => director.Choose(Request($"u{i}", A, (A, 3, 1100), (B, 3, 1900)))).Distinct().Count();
        Assert.Equal(2, alike);
        // One candidate: it.
        Assert.Equal(C, director.Choose(Request("only", A, (C, 99, 99))));
    }

    [Fact]
    public void DirectorsAreFoundByNameAHostMayAddOrReplaceOneAndUnknownNamesAreRefused()
    {
        var directors = new GrainPlacementDirectors();
        Assert.IsType<PreferLocalGrainPlacement>(directors.Default);
        Assert.IsType<PreferLocalGrainPlacement>(directors.For(null));
        Assert.IsType<RandomGrainPlacement>(directors.For("Random"));
        Assert.IsType<LoadBasedGrainPlacement>(directors.For("load-based"));
        var error = Assert.Throws<GridException>(() => directors.For("round-robin"));
        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("round-robin", error.Message);
        Assert.Contains("prefer-local", error.Message);

        var pinned = new PinnedPlacement(C);
        var withCustom = new GrainPlacementDirectors("pinned", [pinned]);
        Assert.Same(pinned, withCustom.Default);
        Assert.Equal(C, withCustom.For(null).Choose(Idle("any", A)));
        Assert.IsType<RandomGrainPlacement>(withCustom.For("random"));
        Assert.Same(pinned, new GrainPlacementDirectors("random", [new PinnedPlacement(B, "random"), pinned]).For("pinned"));
        Assert.IsType<PinnedPlacement>(new GrainPlacementDirectors("random", [new PinnedPlacement(B, "random")]).Default);
        Assert.Equal(GridErrorCode.InvalidArgument, Assert.Throws<GridException>(() => new GrainPlacementDirectors("nowhere")).Code);
    }

    [Fact]
    public void AGrainPlacedLocallyCannotNameADirector()
    {
        var registry = new GrainTypeRegistry();
        var error = Assert.Throws<GridException>(() => registry.Register<IPlacementProbeGrain, LocalGrainWithADirector>());
        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("random", error.Message);
        Assert.False(registry.TryGet("test-placement-probe", out _));
    }

    private sealed class PinnedPlacement(SiloAddress target, string name = "pinned") : IGrainPlacementDirector
    {
        public string Name => name;

        public SiloAddress Choose(GrainPlacementRequest request) => target;
    }
}
