using System.Diagnostics;
using Rustorium.Grid.Cluster;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests.Cluster;

/// <summary>
/// The <see cref="IShardDirectory"/> contract, run unchanged against every implementation (Orleans style: derive and
/// implement <see cref="OpenDirectoryAsync"/> and <see cref="CreateShardsAsync"/>). Each test works in stores of its own
/// names, so implementations may share one server.
/// </summary>
public abstract class ShardDirectoryContractTests
{
    /// <summary>
    /// Opens the cluster store called <paramref name="storeName"/>: a name never opened gives an empty map; opening a name
    /// again (also while another handle is open, as a second silo would) gives the same durable map.
    /// </summary>
    protected abstract Task<IShardDirectory> OpenDirectoryAsync(string storeName);

    /// <summary>
    /// Test-only: lays the given shards out in the store, unowned at epoch 0 and version 0 — what the shard store's
    /// <c>InitializeAsync</c> does in production (the directory itself never adds shards).
    /// </summary>
    protected abstract Task CreateShardsAsync(string storeName, IReadOnlyList<(long Id, KeyRange Range)> shards);

    /// <summary>A fresh store name.</summary>
    protected static string NewStoreName() => "directory_" + Guid.NewGuid().ToString("N")[..12];

    private readonly CancellationToken _ct = Deadline();

    /// <summary>Three shards whose ids are not in range order, so "ordered by range start" is not "ordered by id".</summary>
    private static readonly (long Id, KeyRange Range)[] Layout = [(20, ThreeShards[2]), (30, ThreeShards[0]), (10, ThreeShards[1])];

    private static readonly SiloAddress A = new("10.0.0.1:7000", 1);
    private static readonly SiloAddress B = new("10.0.0.2:7000", 1);
    private static readonly SiloAddress C = new("10.0.0.3:7000", 1);

    private async Task<(IShardDirectory Directory, string Name)> NewDirectoryAsync(IReadOnlyList<(long Id, KeyRange Range)>? layout = null)
    {
        var name = NewStoreName();
        var directory = await OpenDirectoryAsync(name);
        await CreateShardsAsync(name, layout ?? Layout);
        return (directory, name);
    }

    private static async Task CloseAsync(IShardDirectory directory)
    {
        if (directory is IAsyncDisposable disposable) await disposable.DisposeAsync();
    }

    private static async Task<GridErrorCode> ErrorOf(Func<Task> call) => (await Assert.ThrowsAsync<GridException>(call)).Code;

    /// <summary>Ordered by range start, first at the beginning of the key space, each end the next start, the last unbounded.</summary>
    private static void AssertCoversTheKeySpace(IReadOnlyList<ShardOwnership> shards)
    {
        Assert.NotEmpty(shards);
        Assert.True(shards[0].Range.Start.IsEmpty, $"The first shard starts at {shards[0].Range}, not at the beginning of the key space.");
        for (int i = 1; i < shards.Count; i++)
            Assert.True(shards[i - 1].Range.End.SequenceEqual(shards[i].Range.Start) && !shards[i - 1].Range.IsUnbounded,
                $"Shards {shards[i - 1].Range} and {shards[i].Range} leave a gap or overlap.");
        Assert.True(shards[^1].Range.IsUnbounded, $"The last shard {shards[^1].Range} does not reach the end of the key space.");
    }

    // ---------------------------------------------------------------- reading

    [Fact]
    public async Task ReadListsEveryShardInRangeOrderWithoutOwners()
    {
        var name = NewStoreName();
        var directory = await OpenDirectoryAsync(name);
        try
        {
            Assert.Empty((await directory.ReadAsync(_ct)).Shards);

            await CreateShardsAsync(name, Layout);
            var map = await directory.ReadAsync(_ct);

            Assert.Equal(ThreeShards, map.Shards.Select(s => s.Range));
            Assert.Equal([30L, 10L, 20L], map.Shards.Select(s => s.ShardId));
            AssertCoversTheKeySpace(map.Shards);
            Assert.All(map.Shards, s =>
            {
                Assert.Null(s.Owner);
                Assert.Equal(0, s.Epoch);
                Assert.Equal(0, s.Version);
                Assert.Equal(0, s.KeyCount);
            });
            foreach (var shard in map.Shards) Assert.Equal(shard, await directory.GetAsync(shard.ShardId, _ct));
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    [Fact]
    public async Task AnUnknownShardIsUnknownShard()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            var before = await directory.ReadAsync(_ct);
            Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(() => directory.GetAsync(99, _ct)));
            Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(() => directory.ClaimAsync(99, A, 0, _ct)));
            Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(() => directory.ReleaseAsync(99, A, 0, _ct)));
            Assert.Equal(before, await directory.ReadAsync(_ct), SnapshotComparer.Instance);
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    // ---------------------------------------------------------------- claims

    [Fact]
    public async Task AClaimMakesTheSiloTheOwnerAtTheNextEpoch()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            var before = await directory.ReadAsync(_ct);
            var claimed = await directory.ClaimAsync(10, A, 0, _ct);

            Assert.Equal(new ShardOwnership(10, ThreeShards[1], A, 1, 0, 0), claimed);
            Assert.Equal(claimed, await directory.GetAsync(10, _ct));
            var after = await directory.ReadAsync(_ct);
            Assert.True(after.Generation > before.Generation, $"The generation stayed at {before.Generation} across a claim.");
            Assert.Equal(claimed, after.Shards.Single(s => s.ShardId == 10));
            // The other shards did not move.
            Assert.Equal(before.Shards.Where(s => s.ShardId != 10), after.Shards.Where(s => s.ShardId != 10));
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    [Fact]
    public async Task AClaimAtAStaleEpochIsAConflictThatNamesTheOwnerAndEpochAndChangesNothing()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            await directory.ClaimAsync(10, A, 0, _ct);
            var before = await directory.ReadAsync(_ct);

            var e = await Assert.ThrowsAsync<GridException>(() => directory.ClaimAsync(10, B, 0, _ct));
            Assert.Equal(GridErrorCode.Conflict, e.Code);
            Assert.Contains(A.ToString(), e.Message);
            Assert.Contains("epoch 1", e.Message);
            // An epoch from the future is as stale as one from the past.
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ClaimAsync(10, B, 5, _ct)));

            Assert.Equal(before, await directory.ReadAsync(_ct), SnapshotComparer.Instance);
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    [Fact]
    public async Task AHandoverIsTheOldOwnerClaimingForTheNewOneAndFencesTheOldEpoch()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            var mine = await directory.ClaimAsync(30, A, 0, _ct);
            var handedOver = await directory.ClaimAsync(30, B, mine.Epoch, _ct);
            Assert.Equal(B, handedOver.Owner);
            Assert.Equal(mine.Epoch + 1, handedOver.Epoch);

            // The old owner's epoch is gone: it can neither release nor claim with it.
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ReleaseAsync(30, A, mine.Epoch, _ct)));
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ClaimAsync(30, A, mine.Epoch, _ct)));
            Assert.Equal(handedOver, await directory.GetAsync(30, _ct));
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    [Fact]
    public async Task ConcurrentClaimsOfOneShardAtOneEpochHaveExactlyOneWinner()
    {
        var name = NewStoreName();
        var directories = new List<IShardDirectory>();
        try
        {
            for (int i = 0; i < 4; i++) directories.Add(await OpenDirectoryAsync(name));
            await CreateShardsAsync(name, Layout);
            var before = await directories[0].ReadAsync(_ct);

            for (long epoch = 0; epoch < 3; epoch++)
            {
                const int Claimants = 32;
                long expected = epoch;
                var outcomes = await Task.WhenAll(Enumerable.Range(1, Claimants).Select(async i =>
                {
                    await Task.Yield();
                    var silo = new SiloAddress($"10.0.1.{i}:7000", 1);
                    try
                    {
                        return (Silo: silo, Row: (ShardOwnership?)await directories[i % directories.Count].ClaimAsync(20, silo, expected, _ct));
                    }
                    catch (GridException e) when (e.Code == GridErrorCode.Conflict)
                    {
                        return (Silo: silo, Row: null);
                    }
                }));

                var winner = Assert.Single(outcomes, o => o.Row is not null);
                Assert.Equal(winner.Silo, winner.Row!.Owner);
                Assert.Equal(expected + 1, winner.Row.Epoch);
                Assert.Equal(winner.Row, await directories[0].GetAsync(20, _ct));
            }

            var after = await directories[0].ReadAsync(_ct);
            Assert.True(after.Generation > before.Generation);
            Assert.Equal(before.Shards.Where(s => s.ShardId != 20), after.Shards.Where(s => s.ShardId != 20));
        }
        finally
        {
            foreach (var directory in directories) await CloseAsync(directory);
        }
    }

    // ---------------------------------------------------------------- releases

    [Fact]
    public async Task AReleasedShardHasNoOwnerAndCanBeClaimedAtTheNewEpoch()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            var claimed = await directory.ClaimAsync(10, A, 0, _ct);

            // Only the owner at its epoch may release: another silo, another generation of the owner's endpoint, or
            // another epoch lose and change nothing.
            var before = await directory.ReadAsync(_ct);
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ReleaseAsync(10, B, claimed.Epoch, _ct)));
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ReleaseAsync(10, A with { Generation = 2 }, claimed.Epoch, _ct)));
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ReleaseAsync(10, A, claimed.Epoch + 1, _ct)));
            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ReleaseAsync(10, A, 0, _ct)));
            Assert.Equal(before, await directory.ReadAsync(_ct), SnapshotComparer.Instance);

            var released = await directory.ReleaseAsync(10, A, claimed.Epoch, _ct);
            Assert.Null(released.Owner);
            Assert.Equal(claimed.Epoch + 1, released.Epoch);
            Assert.Equal(released, await directory.GetAsync(10, _ct));

            // Releasing again loses: the releasing owner's epoch is fenced too.
            var again = await Assert.ThrowsAsync<GridException>(() => directory.ReleaseAsync(10, A, claimed.Epoch, _ct));
            Assert.Equal(GridErrorCode.Conflict, again.Code);
            Assert.Contains($"epoch {released.Epoch}", again.Message);

            Assert.Equal(GridErrorCode.Conflict, await ErrorOf(() => directory.ClaimAsync(10, B, claimed.Epoch, _ct)));
            var reclaimed = await directory.ClaimAsync(10, B, released.Epoch, _ct);
            Assert.Equal(new ShardOwnership(10, ThreeShards[1], B, released.Epoch + 1, 0, 0), reclaimed);
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    [Fact]
    public async Task ClaimAndReleaseRefuseInvalidArguments()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            var before = await directory.ReadAsync(_ct);
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => directory.ClaimAsync(10, A, -1, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => directory.ClaimAsync(10, new SiloAddress("", 1), 0, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => directory.ClaimAsync(10, new SiloAddress("10.0.0.1:7000", 0), 0, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => directory.ReleaseAsync(10, A, -1, _ct)));
            Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(() => directory.ReleaseAsync(10, default, 0, _ct)));
            Assert.Equal(before, await directory.ReadAsync(_ct), SnapshotComparer.Instance);
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    // ---------------------------------------------------------------- the map's generation

    [Fact]
    public async Task TheGenerationMovesOnWithEveryChangeAndOnlyThen()
    {
        var (directory, _) = await NewDirectoryAsync();
        try
        {
            long generation = (await directory.ReadAsync(_ct)).Generation;
            async Task MovedOnAsync()
            {
                var now = (await directory.ReadAsync(_ct)).Generation;
                Assert.True(now > generation, $"The generation stayed at {generation} across a change.");
                generation = now;
            }
            async Task StayedAsync()
            {
                Assert.Equal(generation, (await directory.ReadAsync(_ct)).Generation);
            }

            await directory.ClaimAsync(10, A, 0, _ct);
            await MovedOnAsync();
            await directory.ClaimAsync(20, A, 0, _ct);
            await MovedOnAsync();
            await directory.ClaimAsync(10, B, 1, _ct);
            await MovedOnAsync();
            await directory.ReleaseAsync(20, A, 1, _ct);
            await MovedOnAsync();

            // Reads and lost races change nothing, so the generation stays.
            await directory.GetAsync(10, _ct);
            await Assert.ThrowsAsync<GridException>(() => directory.ClaimAsync(10, C, 0, _ct));
            await Assert.ThrowsAsync<GridException>(() => directory.ReleaseAsync(20, A, 1, _ct));
            await StayedAsync();
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    [Fact]
    public async Task SnapshotsAreConsistentWhileOwnershipMoves()
    {
        var name = NewStoreName();
        var layout = EightShards.Select((range, i) => ((long)(100 - i), range)).ToArray();
        var directories = new List<IShardDirectory>();
        try
        {
            for (int i = 0; i < 3; i++) directories.Add(await OpenDirectoryAsync(name));
            await CreateShardsAsync(name, layout);

            // Each mover claims and releases its own shard in turns (odd epoch: owned; even: not), on its own handle.
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var movers = layout.Select((shard, i) => Task.Run(async () =>
            {
                var silo = new SiloAddress($"10.0.2.{i}:7000", 1);
                long epoch = 0, changes = 0;
                while (!stop.IsCancellationRequested && changes < 400)
                {
                    var row = epoch % 2 == 0
                        ? await directories[i % 2].ClaimAsync(shard.Item1, silo, epoch, _ct)
                        : await directories[i % 2].ReleaseAsync(shard.Item1, silo, epoch, _ct);
                    epoch = row.Epoch;
                    changes++;
                }
                return changes;
            })).ToArray();

            var snapshots = new List<ShardDirectorySnapshot>();
            var reading = Stopwatch.StartNew();
            while (!movers.All(m => m.IsCompleted) && reading.Elapsed < TimeSpan.FromSeconds(60))
                snapshots.Add(await directories[2].ReadAsync(_ct));
            Assert.All(await Task.WhenAll(movers), changes => Assert.True(changes > 0));
            snapshots.Add(await directories[2].ReadAsync(_ct));

            foreach (var snapshot in snapshots)
            {
                Assert.Equal(EightShards, snapshot.Shards.Select(s => s.Range));
                AssertCoversTheKeySpace(snapshot.Shards);
                Assert.All(snapshot.Shards, s => Assert.Equal(s.Epoch % 2 == 1, s.Owner is not null));
            }
            // One generation, one map; a later generation never shows an older epoch of any shard.
            var ordered = snapshots.OrderBy(s => s.Generation).ToList();
            for (int i = 1; i < ordered.Count; i++)
            {
                var (earlier, later) = (ordered[i - 1], ordered[i]);
                if (earlier.Generation == later.Generation)
                {
                    Assert.Equal(earlier, later, SnapshotComparer.Instance);
                    continue;
                }
                for (int s = 0; s < later.Shards.Count; s++)
                    Assert.True(earlier.Shards[s].Epoch <= later.Shards[s].Epoch,
                        $"Generation {later.Generation} shows shard {later.Shards[s].ShardId} at epoch {later.Shards[s].Epoch}, " +
                        $"but the earlier generation {earlier.Generation} already had epoch {earlier.Shards[s].Epoch}.");
            }
            Assert.True(ordered[^1].Generation > ordered[0].Generation);
        }
        finally
        {
            foreach (var directory in directories) await CloseAsync(directory);
        }
    }

    // ---------------------------------------------------------------- durability

    [Fact]
    public async Task TheMapSurvivesReopeningTheStore()
    {
        var (directory, name) = await NewDirectoryAsync();
        ShardDirectorySnapshot before;
        try
        {
            await directory.ClaimAsync(10, A, 0, _ct);
            await directory.ClaimAsync(20, B, 0, _ct);
            await directory.ReleaseAsync(20, B, 1, _ct);
            before = await directory.ReadAsync(_ct);
        }
        finally
        {
            await CloseAsync(directory);
        }

        directory = await OpenDirectoryAsync(name);
        try
        {
            Assert.Equal(before, await directory.ReadAsync(_ct), SnapshotComparer.Instance);
            Assert.Equal(3, (await directory.ClaimAsync(20, C, 2, _ct)).Epoch);
        }
        finally
        {
            await CloseAsync(directory);
        }
    }

    /// <summary>Snapshots by value (the record's list compares by reference).</summary>
    private sealed class SnapshotComparer : IEqualityComparer<ShardDirectorySnapshot>
    {
        public static SnapshotComparer Instance { get; } = new();

        public bool Equals(ShardDirectorySnapshot? x, ShardDirectorySnapshot? y) =>
            x is not null && y is not null && x.Generation == y.Generation && x.Shards.SequenceEqual(y.Shards);

        public int GetHashCode(ShardDirectorySnapshot obj) => obj.Generation.GetHashCode();
    }
}
