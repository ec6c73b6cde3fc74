using System.Collections.Concurrent;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Cluster;

/// <summary>
/// The cluster's ownership rule for shard grains (docs/membership.md): a silo opens a shard only while the directory names
/// it the owner. A shard without a live owner (none yet, or its owner was declared dead) goes where the placement director
/// says; if that is this silo, it claims the shard with a conditional update of the directory row (epoch + 1) — the epoch
/// every commit of the shard is then checked against. Any other case is answered with <see cref="GridErrorCode.NotOwner"/>
/// and the owner's address, so the caller goes there.
/// </summary>
public sealed class ClusterShardActivation : IShardActivation
{
    private readonly IShardDirectory _directory;
    private readonly IShardStore _store;
    private readonly ClusterMembership _membership;
    private readonly IPlacementDirector _placement;
    private readonly ConcurrentDictionary<long, TaskCompletionSource> _handovers = new();

    /// <summary>Created by DI.</summary>
    public ClusterShardActivation(IShardDirectory directory, IShardStore store, ClusterMembership membership, IPlacementDirector placement)
    {
        _directory = directory;
        _store = store;
        _membership = membership;
        _placement = placement;
    }

    /// <inheritdoc />
    public void EnsureServing() => _membership.EnsureServing();

    /// <inheritdoc />
    public async Task<ShardState> AcquireAsync(long shardId, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            _membership.EnsureServing();
            // A handover of this shard is in progress here: wait for it, then the directory names the new owner.
            if (_handovers.TryGetValue(shardId, out var handover)) await handover.Task.WaitAsync(cancellationToken).ConfigureAwait(false);

            var row = await _directory.GetAsync(shardId, cancellationToken).ConfigureAwait(false);
            if (row.Owner == _membership.Address)
            {
                var state = await _store.GetShardAsync(shardId, cancellationToken).ConfigureAwait(false);
                if (state.Epoch == row.Epoch) return state;
                if (attempt < 3) continue; // the row moved between the two reads: read again
                throw NotOwner(shardId, null, state.Epoch, "its epoch moved on while it was being opened");
            }
            if (row.Owner is { } owner && await _membership.StatusOfAsync(owner, cancellationToken).ConfigureAwait(false) != SiloStatus.Dead)
                throw NotOwner(shardId, owner.Endpoint, row.Epoch, $"it is owned by {owner}");

            // No live owner: the placement director picks one among the active silos.
            var target = await ChooseAsync(shardId, row.Epoch, _membership.Address, cancellationToken).ConfigureAwait(false);
            if (target != _membership.Address)
                throw NotOwner(shardId, target.Endpoint, row.Epoch, $"it has no live owner and is being placed on {target}");
            try
            {
                var claimed = await _directory.ClaimAsync(shardId, _membership.Address, row.Epoch, cancellationToken).ConfigureAwait(false);
                var state = await _store.GetShardAsync(shardId, cancellationToken).ConfigureAwait(false);
                if (state.Epoch == claimed.Epoch) return state;
            }
            catch (GridException e) when (e.Code == GridErrorCode.Conflict && attempt < 3)
            {
                // Someone else claimed it first: read the row again.
            }
        }
    }

    /// <summary>
    /// The silo a shard without a live owner goes to, by the placement director, given the directory's current loads.
    /// </summary>
    private async Task<SiloAddress> ChooseAsync(long shardId, long epoch, SiloAddress? requester, CancellationToken cancellationToken)
    {
        var snapshot = await _directory.ReadAsync(cancellationToken).ConfigureAwait(false);
        var candidates = Candidates(snapshot, _membership.ActiveMembers);
        if (candidates.Count == 0)
            throw new GridException(GridErrorCode.Unavailable, $"Shard {shardId} has no live owner and no silo is active to take it; retry.");
        return _placement.Choose(new PlacementRequest(shardId, epoch, candidates, requester));
    }

    /// <summary>The active silos with the shards and keys each owns in <paramref name="snapshot"/> and the load each last reported, ordered by address.</summary>
    public static IReadOnlyList<PlacementCandidate> Candidates(ShardDirectorySnapshot snapshot, IReadOnlyList<SiloEntry> active) =>
        active
            .OrderBy(m => m.Address.Endpoint, StringComparer.Ordinal).ThenBy(m => m.Address.Generation)
            .Select(m =>
            {
                var owned = snapshot.Shards.Where(s => s.Owner == m.Address).ToList();
                return new PlacementCandidate(m.Address, m.Region, owned.Count, owned.Sum(s => s.KeyCount)) { Load = m.Load };
            })
            .ToList();

    /// <summary>Marks a handover of <paramref name="shardId"/> as started here: activations wait until <see cref="EndHandover"/>.</summary>
    /// <returns>False if one is already in progress.</returns>
    internal bool BeginHandover(long shardId) => _handovers.TryAdd(shardId, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Ends a handover started with <see cref="BeginHandover"/>; waiting activations read the directory again.</summary>
    internal void EndHandover(long shardId)
    {
        if (_handovers.TryRemove(shardId, out var handover)) handover.TrySetResult();
    }

    private static GridException NotOwner(long shardId, string? endpoint, long epoch, string why) =>
        new(GridErrorCode.NotOwner, $"This silo does not serve shard {shardId}: {why}.")
        {
            OwnerHint = endpoint is null ? null : new OwnerHint(shardId, endpoint, epoch),
        };
}
