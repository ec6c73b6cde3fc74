using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>The shard map a silo serves, and the layout a new store starts with.</summary>
public sealed class ClusterGrainTests
{
    [Trait("Category", "Integration")]
    [Fact]
    public async Task TheMapCoversTheKeySpaceAndPointsAtThisSilo()
    {
        using var dir = new TempDirectory();
        await using var silo = await LocalShardSilo.StartAsync(dir.Path);
        var map = await silo.Grains.GetGrain<IClusterGrain>(0).GetShardMapAsync(default);

        Assert.Equal(StoreShardMapSource.SingleSiloGeneration, map.Generation);
        Assert.Equal(8, map.Shards.Length);
        Assert.All(map.Shards, e => Assert.Equal(LocalShardSilo.Endpoint, e.Endpoint));
        ShardLayout.Validate(map.Shards.Select(e => e.Range).ToArray());   // no gap, no overlap, in key order
        Assert.True(map.Shards[0].Range.Start.IsEmpty);
        Assert.True(map.Shards[^1].Range.IsUnbounded);

        Assert.Equal(map.Shards[0].ShardId, map.Locate([]).ShardId);              // the empty key
        Assert.Equal(map.Shards[0].ShardId, map.Locate([0x00]).ShardId);
        Assert.Equal(map.Shards[0].ShardId, map.Locate([0x1f, 0xff, 0xff]).ShardId);
        Assert.Equal(map.Shards[1].ShardId, map.Locate([0x20]).ShardId);          // a boundary belongs to the range it starts
        Assert.Equal(map.Shards[^1].ShardId, map.Locate([0xe0]).ShardId);
        Assert.Equal(map.Shards[^1].ShardId, map.Locate([0xff]).ShardId);
        Assert.Equal(map.Shards[^1].ShardId, map.Locate([0xff, 0xff, 0xff, 0xff]).ShardId);
        for (int b = 0; b < 256; b++)
            Assert.True(map.Locate([(byte)b, 0x42]).Range.Contains([(byte)b, 0x42]));
    }

    [Trait("Category", "Integration")]
    [Fact]
    public async Task TheMapReportsEachShardsCurrentEpoch()
    {
        using var dir = new TempDirectory();
        await using var silo = await LocalShardSilo.StartAsync(dir.Path);
        var cluster = silo.Grains.GetGrain<IClusterGrain>(0);
        var before = (await cluster.GetShardMapAsync(default)).Locate([0x41]);

        var status = await silo.Grains.GetGrain<IShardGrain>(before.ShardId).GetStatusAsync(default);   // activates: claims the shard
        var after = (await cluster.GetShardMapAsync(default)).Locate([0x41]);
        Assert.Equal(status.Epoch, after.Epoch);
        Assert.True(after.Epoch > before.Epoch);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(100)]
    [InlineData(256)]
    public void TheInitialLayoutSplitsEvenlyOnTheFirstByte(int count)
    {
        var ranges = InitialShardLayout.SplitOnFirstByte(count);
        Assert.Equal(count, ranges.Count);
        Assert.Equal(ranges, ShardLayout.Validate(ranges));
        for (int i = 1; i < count; i++)
            Assert.Equal([(byte)(256 * i / count)], ranges[i].Start.ToArray());
    }

    [Fact]
    public void EightShardsAreTheDocumentedLayout()
    {
        var ranges = InitialShardLayout.SplitOnFirstByte(8);
        Assert.Equal("[\"\", 20)", Describe(ranges[0]));
        Assert.Equal(["20", "40", "60", "80", "a0", "c0", "e0"], ranges.Skip(1).Select(r => Convert.ToHexStringLower(r.Start)));
        Assert.True(ranges[^1].IsUnbounded);

        static string Describe(KeyRange r) => $"[\"\", {Convert.ToHexStringLower(r.End)})";
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(257)]
    public void ImpossibleShardCountsAreRefused(int count) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => InitialShardLayout.SplitOnFirstByte(count));
}
