using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Cluster;

namespace Rustorium.Grid.Grains.Cluster;

/// <summary>
/// The cluster's shard map, read from the directory: each entry points at its owner's endpoint; a shard without a live owner
/// points at the silo the placement director would give it to (the first request there claims it). The generation is the
/// directory's, which moves on with every change of ownership or ranges.
/// </summary>
public sealed class ClusterShardMapSource(IShardDirectory directory, ClusterMembership membership, IPlacementDirector placement) : IShardMapSource
{
    /// <inheritdoc />
    public async Task<ShardMap> ReadAsync(CancellationToken cancellationToken)
    {
        membership.EnsureServing();
        var snapshot = await directory.ReadAsync(cancellationToken).ConfigureAwait(false);
        var sorted = StoreShardMapSource.SortAndCheck(snapshot.Shards, s => s.Range);
        var candidates = ClusterShardActivation.Candidates(snapshot, membership.ActiveMembers);
        var entries = new ShardMapEntry[sorted.Length];
        for (int i = 0; i < sorted.Length; i++)
        {
            var shard = sorted[i];
            string endpoint;
            // An owner the last membership read did not list joined since: it is live.
            if (shard.Owner is { } owner && membership.StatusOf(owner) is not SiloStatus.Dead) endpoint = owner.Endpoint;
            else if (candidates.Count > 0) endpoint = placement.Choose(new PlacementRequest(shard.ShardId, shard.Epoch, candidates, null)).Endpoint;
            else endpoint = membership.Address.Endpoint;
            entries[i] = new ShardMapEntry(shard.ShardId, shard.Range, endpoint, shard.Epoch);
        }
        return new ShardMap(snapshot.Generation, entries);
    }
}
