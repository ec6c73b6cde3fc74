using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Grains.Cluster;

/// <summary>The silo's control grain (key 0): opens shards handed to it and moves shards it owns (see <see cref="ISiloControlGrain"/>).</summary>
[GrainPlacement(GrainPlacementKind.Local)]
public sealed class SiloControlGrain : Grain, ISiloControlGrain
{
    private readonly ShardOwnershipService _ownership;
    private readonly ClusterMembership _membership;

    /// <summary>Built by the grain runtime.</summary>
    public SiloControlGrain(ShardOwnershipService ownership, ClusterMembership membership)
    {
        _ownership = ownership;
        _membership = membership;
    }

    /// <inheritdoc />
    public Task<long> AcceptShardAsync(long shardId, CancellationToken cancellationToken) => _ownership.AcceptAsync(shardId, cancellationToken);

    /// <inheritdoc />
    public Task<ShardMoveResult> MoveShardAsync(long shardId, string targetEndpoint, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(targetEndpoint)) throw GridException.InvalidArgument("A move needs the target silo's endpoint (host:port).");
        var active = _membership.ActiveMembers;
        var target = active.FirstOrDefault(m => m.Address.Endpoint == targetEndpoint)
            ?? throw GridException.InvalidArgument(
                $"{targetEndpoint} is not an active silo; the active silos are {string.Join(", ", active.Select(m => m.Address.Endpoint))}.");
        if (target.Address == _membership.Address) throw GridException.InvalidArgument($"Shard {shardId} cannot move to the silo it is on ({targetEndpoint}).");
        return _ownership.HandOverAsync(shardId, target.Address, cancellationToken);
    }

    /// <inheritdoc />
    public Task<ShardMapEntry[]> SplitShardAsync(long shardId, CancellationToken cancellationToken) => _ownership.SplitAsync(shardId, cancellationToken);

    /// <inheritdoc />
    public Task<ShardMapEntry> MergeShardsAsync(long leftShardId, CancellationToken cancellationToken) =>
        _ownership.MergeAsync(leftShardId, cancellationToken);
}
