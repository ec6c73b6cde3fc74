using System.Text;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>ShardGrain through the grain runtime (references, validation, activation, turns) on a real SQLite store.</summary>
[Trait("Category", "Integration")]
public sealed class ShardGrainTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private LocalShardSilo _silo = null!;

    public async Task InitializeAsync() => _silo = await LocalShardSilo.StartAsync(_dir.Path);

    public async Task DisposeAsync()
    {
        await _silo.DisposeAsync();
        _dir.Dispose();
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task<GridException> ThrowsGrid(GridErrorCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<GridException>(call);
        Assert.Equal(code, e.Code);
        return e;
    }

    [Fact]
    public async Task PutThenReadCarriesAProofThatVerifiesOnlyTheStoredValue()
    {
        var key = B("apple");
        var shard = _silo.Shard(key);
        var write = await shard.PutAsync(key, B("red"), SyncMode.Full, default);
        Assert.Equal(_silo.ShardOf(key), write.ShardId);
        Assert.True(write.Version >= 1);

        var read = await shard.ReadAsync(key, true, default);
        Assert.Equal(B("red"), read.Value);
        Assert.Equal("local", read.Region);
        Assert.NotNull(read.Proof);
        read.Proof!.EnsureVerifies(key, B("red"));
        Assert.False(read.Proof.Verifies(key, B("green")));
        Assert.False(read.Proof.Verifies(key, null));

        var plain = await shard.ReadAsync(key, false, default);
        Assert.Equal(B("red"), plain.Value);
        Assert.Null(plain.Proof);
    }

    [Fact]
    public async Task WriteWithProofProvesTheWriteAtItsVersion()
    {
        var key = B("\u00e9clair");   // first byte c3: a shard in the upper half
        var shard = _silo.Shard(key);
        var result = await shard.WriteWithProofAsync(key, B("chocolate"), default);
        Assert.Equal(result.Write.Version, result.Proof.Version);
        result.Proof.EnsureVerifies(key, B("chocolate"));

        var status = await shard.GetStatusAsync(default);
        Assert.True(status.Version >= result.Write.Version);
        Assert.True(status.TreeVersion <= status.Version);
        // The stored tree follows at the next checkpoint, with the proven root.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (status.TreeVersion < result.Proof.Version && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
            status = await shard.GetStatusAsync(default);
        }
        Assert.Equal(result.Proof.Version, status.TreeVersion);
        Assert.Equal(result.Proof.Root.ToString(), status.Root);
        Assert.Equal(LocalShardSilo.Endpoint, status.Silo);
        Assert.Equal(_silo.ShardOf(key), status.ShardId);
        Assert.True(status.Range.Contains(key));
    }

    [Fact]
    public async Task DeleteLeavesAVerifiedAbsence()
    {
        var key = B("banana");
        var shard = _silo.Shard(key);
        await shard.PutAsync(key, B("yellow"), SyncMode.Full, default);
        await shard.DeleteAsync(key, SyncMode.Full, default);

        var read = await shard.ReadAsync(key, true, default);
        Assert.Null(read.Value);
        read.Proof!.EnsureVerifies(key, null);
        Assert.False(read.Proof.Verifies(key, B("yellow")));

        // Deleting an absent key is fine.
        await shard.DeleteAsync(B("bz-never-written"), SyncMode.Full, default);
    }

    [Fact]
    public async Task ABatchIsAppliedWholeOrNotAtAll()
    {
        var shard = _silo.Shard(B("k"));   // 6b: shard [60, 80)
        await shard.PutAsync(B("k0"), B("old"), SyncMode.Full, default);

        // One oversized value fails the whole batch: nothing of it is stored.
        var huge = new byte[GridLimits.Default.MaxValueBytes + 1];
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.BatchAsync(
            [BatchOperation.Put(B("k1"), B("a")), BatchOperation.Delete(B("k0")), BatchOperation.Put(B("k2"), huge)], SyncMode.Full, default));
        // One key of another shard fails it too.
        await ThrowsGrid(GridErrorCode.NotOwner, () => shard.BatchAsync(
            [BatchOperation.Put(B("k1"), B("a")), BatchOperation.Put([0xf0, 0x01], B("b"))], SyncMode.Full, default));
        Assert.Null((await shard.ReadAsync(B("k1"), false, default)).Value);
        Assert.Equal(B("old"), (await shard.ReadAsync(B("k0"), false, default)).Value);

        var ok = await shard.BatchAsync(
            [BatchOperation.Put(B("k1"), B("a")), BatchOperation.Delete(B("k0")), BatchOperation.Put(B("k2"), B("c"))], SyncMode.Full, default);
        var page = await shard.ScanAsync(B("k"), B("l"), 100, default);
        Assert.Equal(["k1", "k2"], page.Items.Select(i => Encoding.UTF8.GetString(i.Key)));
        Assert.All(page.Items, i => Assert.Equal(ok.Version, i.Version));
        (await shard.ReadAsync(B("k2"), true, default)).Proof!.EnsureVerifies(B("k2"), B("c"));
    }

    [Fact]
    public async Task BadInputGetsTypedErrorsAndChangesNothing()
    {
        var shard = _silo.Shard(B("m"));
        var before = await shard.GetStatusAsync(default);

        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.PutAsync([], B("v"), SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.PutAsync(null!, B("v"), SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.PutAsync(B("m1"), null!, SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.PutAsync(new byte[GridLimits.Default.MaxKeyBytes + 1], B("v"), SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.PutAsync(B("m1"), B("v"), (SyncMode)99, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.BatchAsync([], SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.BatchAsync(null!, SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.BatchAsync([new BatchOperation(BatchOperationKind.Put, B("m1"), null)], SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.BatchAsync([new BatchOperation((BatchOperationKind)9, B("m1"), B("v"))], SyncMode.Full, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.ScanAsync(B("m"), null, 0, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.ScanAsync(B("n"), B("m"), 10, default));
        await ThrowsGrid(GridErrorCode.InvalidArgument, () => shard.ScanAsync(null!, null, 10, default));
        var outside = await ThrowsGrid(GridErrorCode.NotOwner, () => shard.PutAsync(B("\u00ff"), B("v"), SyncMode.Full, default));
        Assert.Contains("outside", outside.Message);

        var after = await shard.GetStatusAsync(default);
        Assert.Equal(before.Version, after.Version);
        Assert.Equal(before.Root, after.Root);
        Assert.Equal(0, after.KeyCount);
    }

    [Fact]
    public async Task AnUnknownShardIsRefusedAsUnknown()
    {
        var e = await ThrowsGrid(GridErrorCode.UnknownShard, () => _silo.Grains.GetGrain<IShardGrain>(987_654).GetStatusAsync(default));
        Assert.Contains("987654", e.Message);
        Assert.False(_silo.Active.Contains(987_654));
    }

    [Fact]
    public async Task SyncModeZeroMeansTheSilosDefault()
    {
        var key = B("default-mode");
        var write = await _silo.Shard(key).PutAsync(key, B("v"), 0, default);
        Assert.True(write.Version >= 1);   // Full, the default: acknowledged with its version, durable.
        Assert.NotNull(await _silo.Store.GetAsync(_silo.ShardOf(key), key, default));
    }

    [Fact]
    public async Task ScanPagesThroughTheShardInKeyOrder()
    {
        var shard = _silo.Shard(B("s"));   // 73: shard [60, 80)
        var keys = Enumerable.Range(0, 25).Select(i => $"s{i:D3}").ToArray();
        await shard.BatchAsync(keys.Reverse().Select(k => BatchOperation.Put(B(k), B(k.ToUpperInvariant()))).ToArray(), SyncMode.Full, default);

        var seen = new List<string>();
        byte[]? next = B("s");
        while (next is not null)
        {
            var page = await shard.ScanAsync(next, B("t"), 10, default);
            Assert.True(page.Items.Count <= 10);
            seen.AddRange(page.Items.Select(i => Encoding.UTF8.GetString(i.Key)));
            Assert.All(page.Items, i => Assert.Equal(B(Encoding.UTF8.GetString(i.Key).ToUpperInvariant()), i.Value));
            next = page.NextKey;
        }
        Assert.Equal(keys, seen);

        // A scan is clipped to the shard: from the empty key it starts at the shard's start.
        var all = await shard.ScanAsync([], null, 1000, default);
        Assert.Equal(keys, all.Items.Select(i => Encoding.UTF8.GetString(i.Key)));
    }

    [Fact]
    public async Task AScanOfTheLastShardReachesTheEndOfTheKeySpace()
    {
        byte[][] keys = [[0xe0], [0xf0, 0x01], [0xff, 0xff, 0xff]];
        var shard = _silo.Shard(keys[0]);
        Assert.True(_silo.Shards.Single(s => s.ShardId == _silo.ShardOf(keys[0])).Range.IsUnbounded);
        await shard.BatchAsync(keys.Select(k => BatchOperation.Put(k, [1])).ToArray(), SyncMode.Full, default);

        var page = await shard.ScanAsync([], null, 100, default);
        Assert.Equal(keys.Select(Convert.ToHexStringLower), page.Items.Select(i => Convert.ToHexStringLower(i.Key)));
        Assert.Null(page.NextKey);
    }

    [Fact]
    public async Task DeactivationCommitsAndFoldsWhatIsQueued()
    {
        var key = B("q");
        var shardId = _silo.ShardOf(key);
        var shard = _silo.Shard(key);
        var writes = Enumerable.Range(0, 200).Select(i => shard.PutAsync(B($"q{i:D3}"), B($"v{i}"), SyncMode.None, default)).ToArray();
        await Task.WhenAll(writes);   // acknowledged when queued: not necessarily committed yet
        Assert.True(_silo.Active.Contains(shardId));

        await _silo.DeactivateAllAsync();
        Assert.False(_silo.Active.Contains(shardId));

        var state = await _silo.Store.GetShardAsync(shardId, default);
        Assert.Equal(200, (await _silo.Store.ScanAsync(shardId, ReadOnlyMemory<byte>.Empty, null, 1000, default)).Count);
        Assert.Equal(200, state.KeyCount);
        for (int i = 0; i < 200; i += 37)
            Assert.Equal(B($"v{i}"), (await _silo.Store.GetAsync(shardId, B($"q{i:D3}"), default))!.Value);
    }

    [Fact]
    public async Task AReactivatedShardKeepsItsDataAndMovesItsEpochOn()
    {
        using var dir = new TempDirectory();
        var key = B("persist");
        long epoch;
        await using (var first = await LocalShardSilo.StartAsync(dir.Path))
        {
            await first.Shard(key).PutAsync(key, B("1"), SyncMode.Full, default);
            epoch = (await first.Shard(key).GetStatusAsync(default)).Epoch;
        }
        await using var second = await LocalShardSilo.StartAsync(dir.Path, shards: 3);   // an existing store keeps its layout
        Assert.Equal(8, second.Shards.Count);
        var read = await second.Shard(key).ReadAsync(key, true, default);
        read.Proof!.EnsureVerifies(key, B("1"));
        Assert.True((await second.Shard(key).GetStatusAsync(default)).Epoch > epoch);
    }

    [Fact]
    public async Task ActiveShardsFollowActivations()
    {
        Assert.Equal(0, _silo.Active.Count);
        var key = B("active");
        await _silo.Shard(key).GetStatusAsync(default);
        Assert.Equal([_silo.ShardOf(key)], _silo.Active.Snapshot());
    }
}
