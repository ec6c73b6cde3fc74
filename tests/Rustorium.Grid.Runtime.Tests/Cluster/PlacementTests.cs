using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Cluster;

namespace Rustorium.Grid.Runtime.Tests.Cluster;

public sealed class PlacementTests
{
    private static readonly SiloAddress A = new("10.0.0.1:7400", 1);
    private static readonly SiloAddress B = new("10.0.0.2:7400", 1);
    private static readonly SiloAddress C = new("10.0.0.3:7400", 1);

    private static PlacementRequest Request(long shard, SiloAddress? requester, params (SiloAddress Silo, int Shards, long Keys)[] candidates) =>
        new(shard, 1, candidates.Select(c => new PlacementCandidate(c.Silo, "r", c.Shards, c.Keys)).ToList(), requester);

    [Fact]
    public void LoadBasedPicksFewestShardsThenFewestKeysThenAddress()
    {
        var director = new LoadBasedPlacement();
        Assert.Equal(B, director.Choose(Request(1, null, (A, 3, 0), (B, 1, 900), (C, 2, 0))));
        Assert.Equal(C, director.Choose(Request(1, null, (A, 2, 50), (B, 2, 60), (C, 2, 10))));
        Assert.Equal(A, director.Choose(Request(1, null, (C, 1, 5), (B, 1, 5), (A, 1, 5))));
    }

    [Fact]
    public void LoadBasedBreaksShardCountTiesByReportedCallRateThenActivationsButNeverOverridesShardCount()
    {
        var director = new LoadBasedPlacement();
        PlacementCandidate Candidate(SiloAddress silo, int shards, long keys, double ops, int activations) =>
            new(silo, "r", shards, keys) { Load = new SiloLoad(ops, activations) };
        PlacementRequest Of(params PlacementCandidate[] candidates) => new(1, 1, candidates, null);

        // Same shard count: the idler silo, even with more keys.
        Assert.Equal(B, director.Choose(Of(Candidate(A, 2, 10, 5000, 1), Candidate(B, 2, 9000, 40, 1), Candidate(C, 2, 10, 3000, 1))));
        // Fewer shards still wins over a lower call rate (several orphans placed from one snapshot keep spreading).
        Assert.Equal(A, director.Choose(Of(Candidate(A, 1, 0, 9000, 50), Candidate(B, 2, 0, 0, 0))));
        // Call rates in the same doubling class (1,100 and 1,900 calls/s) do not decide: fewer activations do.
        Assert.Equal(C, director.Choose(Of(Candidate(A, 2, 0, 1100, 9), Candidate(C, 2, 0, 1900, 4))));
        // All idle and alike: keys, then address, as before.
        Assert.Equal(C, director.Choose(Of(Candidate(A, 2, 50, 0.5, 3), Candidate(B, 2, 60, 0, 3), Candidate(C, 2, 10, 0, 3))));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0.99, 0)]
    [InlineData(1, 1)]
    [InlineData(3.5, 2)]
    [InlineData(4, 3)]
    [InlineData(1000, 10)]
    [InlineData(1100, 11)]
    [InlineData(1900, 11)]
    [InlineData(2048, 12)]
    [InlineData(double.NaN, 0)]
    public void BusyClassesDoubleInWidth(double opsPerSecond, int expected) =>
        Assert.Equal(expected, LoadBasedPlacement.BusyClass(opsPerSecond));

    [Fact]
    public void RandomIsDeterministicPerShardAndEpochAndSpreadsShards()
    {
        var director = new RandomPlacement();
        var hits = new Dictionary<SiloAddress, int> { [A] = 0, [B] = 0, [C] = 0 };
        for (long shard = 0; shard < 3000; shard++)
        {
            var request = Request(shard, null, (A, 0, 0), (B, 0, 0), (C, 0, 0));
            var chosen = director.Choose(request);
            Assert.Equal(chosen, director.Choose(request)); // every silo computes the same target
            hits[chosen]++;
        }
        Assert.All(hits.Values, count => Assert.InRange(count, 850, 1150));
    }

    [Fact]
    public void PreferLocalPicksTheRequesterOnlyWhenItIsACandidate()
    {
        var director = new PreferLocalPlacement();
        Assert.Equal(C, director.Choose(Request(7, C, (A, 0, 0), (B, 0, 0), (C, 9, 9))));
        var fallback = director.Choose(Request(7, new SiloAddress("10.9.9.9:1", 1), (A, 0, 0), (B, 0, 0)));
        Assert.Equal(new RandomPlacement().Choose(Request(7, null, (A, 0, 0), (B, 0, 0))), fallback);
    }

    [Fact]
    public void DirectorsAreCreatedByNameAndUnknownNamesAreRefused()
    {
        Assert.IsType<LoadBasedPlacement>(PlacementDirectors.Create("load-based"));
        Assert.IsType<RandomPlacement>(PlacementDirectors.Create("Random"));
        Assert.IsType<PreferLocalPlacement>(PlacementDirectors.Create("prefer-local"));
        var error = Assert.Throws<GridException>(() => PlacementDirectors.Create("round-robin"));
        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("load-based", error.Message);
    }

    [Fact]
    public void SiloAddressRoundTripsAndRefusesMalformedText()
    {
        Assert.Equal(A, SiloAddress.Parse(A.ToString()));
        Assert.Equal(new SiloAddress("[::1]:7400", 42), SiloAddress.Parse("[::1]:7400@42"));
        foreach (var bad in new[] { "", "host:1", "@5", "host:1@0", "host:1@-3", "host:1@x" })
            Assert.Equal(GridErrorCode.InvalidArgument, Assert.Throws<GridException>(() => SiloAddress.Parse(bad)).Code);
    }
}

public sealed class ClusterMembershipTests
{
    private static readonly ClusterOptions Options = new() { HeartbeatInterval = TimeSpan.FromSeconds(1), DeathTimeout = TimeSpan.FromSeconds(5) };

    private static SiloEntry Entry(SiloAddress address, SiloStatus status) =>
        new(address, "s", "r", null, status, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, TimeSpan.Zero);

    [Fact]
    public void ASiloServesOnlyWhileItsHeartbeatLeaseIsValid()
    {
        var time = new ManualClock();
        var self = new SiloAddress("127.0.0.1:1", 1);
        var membership = new ClusterMembership(() => new SiloRegistration(self, "s", "r", null), Options, time);
        Assert.Equal(GridErrorCode.Unavailable, Assert.Throws<GridException>(membership.EnsureServing).Code); // not joined yet

        membership.Joined(Entry(self, SiloStatus.Active));
        membership.EnsureServing();
        time.Advance(TimeSpan.FromSeconds(3.9)); // lease = death timeout - one heartbeat = 4 s
        Assert.True(membership.IsServing);
        time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.False(membership.IsServing);
        Assert.Contains("lease", Assert.Throws<GridException>(membership.EnsureServing).Message);

        membership.HeartbeatSucceeded();
        Assert.True(membership.IsServing);
        membership.DeclaredDead();
        Assert.False(membership.IsServing);
        Assert.Contains("declared dead", Assert.Throws<GridException>(membership.EnsureServing).Message);
    }

    [Fact]
    public async Task AnUnknownSiloIsLookedUpAgainBeforeItCountsAsDead()
    {
        var self = new SiloAddress("127.0.0.1:1", 1);
        var newcomer = new SiloAddress("127.0.0.1:2", 7);
        var membership = new ClusterMembership(() => new SiloRegistration(self, "s", "r", null), Options);
        membership.Joined(Entry(self, SiloStatus.Active));
        int reads = 0;
        membership.SetRefresh(_ =>
        {
            reads++;
            membership.Update([Entry(self, SiloStatus.Active), Entry(newcomer, SiloStatus.Active)]);
            return Task.CompletedTask;
        });

        Assert.Null(membership.StatusOf(newcomer));
        Assert.Equal(SiloStatus.Active, await membership.StatusOfAsync(newcomer, CancellationToken.None));
        Assert.Equal(1, reads);
        Assert.Equal(SiloStatus.Dead, await membership.StatusOfAsync(new SiloAddress("127.0.0.1:3", 1), CancellationToken.None));
        Assert.Equal(2, reads);
    }

    [Fact]
    public async Task MembershipChangesWakeWaiters()
    {
        var self = new SiloAddress("127.0.0.1:1", 1);
        var membership = new ClusterMembership(() => new SiloRegistration(self, "s", "r", null), Options);
        membership.Joined(Entry(self, SiloStatus.Active));
        var changed = membership.WaitForChangeAsync(CancellationToken.None);
        membership.Update([Entry(self, SiloStatus.Active)]); // same members: no change
        Assert.False(changed.IsCompleted);
        membership.Update([Entry(self, SiloStatus.Active), Entry(new SiloAddress("127.0.0.1:2", 1), SiloStatus.Active)]);
        await changed.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void OptionsRefuseADeathTimeoutShorterThanThreeHeartbeats()
    {
        var problems = new ClusterOptions { HeartbeatInterval = TimeSpan.FromSeconds(2), DeathTimeout = TimeSpan.FromSeconds(5) }.Validate();
        Assert.Contains(problems, p => p.Contains("DeathTimeout"));
        Assert.Empty(new ClusterOptions().Validate());
    }
}

/// <summary>A clock whose timestamps move only when told (for the monotonic serving lease).</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = 1_000_000;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
