using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The silo's system grain (key 0): answers the shard map from this silo's <see cref="IShardMapSource"/> (on a single silo:
/// the store, every entry pointing at this silo; in a cluster: the directory, every entry pointing at its owner).
/// </summary>
[GrainPlacement(GrainPlacementKind.Local)]
public sealed class ClusterGrain : Grain, IClusterGrain
{
    private readonly IShardMapSource _source;

    /// <summary>Built by the grain runtime.</summary>
    public ClusterGrain(IShardMapSource source) => _source = source;

    /// <inheritdoc />
    public Task<ShardMap> GetShardMapAsync(CancellationToken cancellationToken) => _source.ReadAsync(cancellationToken);
}

/// <summary>Where a silo's shard map comes from.</summary>
public interface IShardMapSource
{
    /// <summary>The current map: every shard's range, owner endpoint and epoch, covering the key space exactly once.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> if the stored ranges do not cover the key space exactly once.</exception>
    Task<ShardMap> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The single-silo map: every shard is owned here, so every entry points at this silo's advertised endpoint; ranges and
/// epochs come from the store, read on every call (a re-activated shard shows its new epoch).
/// </summary>
/// <remarks><see cref="ShardMap.Generation"/> is <see cref="SingleSiloGeneration"/> and stays so on a single silo.</remarks>
public sealed class StoreShardMapSource(IShardStore store, LocalSiloDetails silo) : IShardMapSource
{
    /// <summary>The map's generation on a single silo.</summary>
    public const long SingleSiloGeneration = 1;

    /// <inheritdoc />
    public async Task<ShardMap> ReadAsync(CancellationToken cancellationToken)
    {
        var shards = await store.ListShardsAsync(cancellationToken).ConfigureAwait(false);
        var sorted = SortAndCheck(shards, s => s.Range);
        string endpoint = silo.Endpoint;
        return new ShardMap(SingleSiloGeneration, sorted.Select(s => new ShardMapEntry(s.ShardId, s.Range, endpoint, s.Epoch)).ToArray());
    }

    /// <summary>Sorts by range start and checks that the ranges cover the key space exactly once (invariant 4).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> otherwise (stores refuse such layouts, so this means damaged data).</exception>
    public static T[] SortAndCheck<T>(IEnumerable<T> shards, Func<T, KeyRange> range)
    {
        var sorted = shards.OrderBy(s => range(s).Start.ToArray(), Comparer<byte[]>.Create((a, b) => KeyRange.Compare(a, b))).ToArray();
        try
        {
            ShardLayout.Validate(sorted.Select(range).ToArray());
        }
        catch (GridException ex) when (ex.Code == GridErrorCode.InvalidArgument)
        {
            throw new GridException(GridErrorCode.Corrupted, $"The stored shard layout is broken: {ex.Message}", ex);
        }
        return sorted;
    }
}
