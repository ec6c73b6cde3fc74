using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The silo's system grain (key 0): answers the shard map. On a single silo every shard is owned here, so every
/// entry points at this silo's advertised endpoint; the ranges and epochs come from the store.
/// </summary>
/// <remarks>
/// <see cref="ShardMap.Generation"/> is 1 and stays 1 until shards split, merge or move (a cluster-wide map then
/// counts its changes). The map is read from the store on every call, so the epochs it reports are current: a shard
/// whose grain was re-activated shows its new epoch.
/// </remarks>
public sealed class ClusterGrain : Grain, IClusterGrain
{
    /// <summary>The map's generation on a single silo.</summary>
    public const long SingleSiloGeneration = 1;

    private readonly IShardStore _store;
    private readonly LocalSiloDetails _silo;

    /// <summary>Built by the grain runtime.</summary>
    public ClusterGrain(IShardStore store, LocalSiloDetails silo)
    {
        _store = store;
        _silo = silo;
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> if the stored ranges do not cover the key
    /// space exactly once (invariant 4; the store refuses such layouts, so this means damaged data).</exception>
    public async Task<ShardMap> GetShardMapAsync(CancellationToken cancellationToken)
    {
        var shards = await _store.ListShardsAsync(cancellationToken);
        var sorted = shards.OrderBy(s => s.Range.Start.ToArray(), Comparer<byte[]>.Create((a, b) => KeyRange.Compare(a, b))).ToArray();
        try
        {
            ShardLayout.Validate(sorted.Select(s => s.Range).ToArray());
        }
        catch (GridException ex) when (ex.Code == GridErrorCode.InvalidArgument)
        {
            throw new GridException(GridErrorCode.Corrupted, $"The stored shard layout is broken: {ex.Message}", ex);
        }
        string endpoint = _silo.Endpoint;
        return new ShardMap(SingleSiloGeneration, sorted.Select(s => new ShardMapEntry(s.ShardId, s.Range, endpoint, s.Epoch)).ToArray());
    }
}
