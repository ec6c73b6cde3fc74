namespace Rustorium.Grid.Cluster;

/// <summary>A shard's row in the cluster's shard map: its range, its owner and the owner's epoch.</summary>
/// <param name="ShardId">The shard.</param>
/// <param name="Range">Its keys.</param>
/// <param name="Owner">The silo that owns it, or null when nobody does (new, released, or never claimed).</param>
/// <param name="Epoch">The ownership epoch: every claim moves it on, and every durable write of the shard is conditioned on it.</param>
/// <param name="Version">The shard's data version (for placement and status; not a claim condition).</param>
/// <param name="KeyCount">Keys it holds (for placement and split decisions).</param>
public sealed record ShardOwnership(long ShardId, KeyRange Range, SiloAddress? Owner, long Epoch, long Version, long KeyCount);

/// <summary>The whole shard map as one consistent read.</summary>
/// <param name="Generation">Moves on with every change of ownership or ranges; a client keeps the map with the larger generation.</param>
/// <param name="Shards">Every shard, ordered by range start; the ranges cover the key space with no gap and no overlap.</param>
public sealed record ShardDirectorySnapshot(long Generation, IReadOnlyList<ShardOwnership> Shards);

/// <summary>
/// The directory of shard grains: who owns each shard, under which epoch. Single owner (invariant 1): ownership moves only
/// by a conditional update of the shard's row (epoch + 1), and the shard store refuses every commit whose epoch is not the
/// row's current one — the row the claim changed — so a silo that lost a shard can no longer change it.
/// </summary>
/// <remarks>
/// Policy (who may claim a shard whose owner is alive, dead or shutting down) is the runtime's; the directory only makes
/// each move atomic and conditional. Implementations are thread-safe and durable.
/// </remarks>
public interface IShardDirectory
{
    /// <summary>The map: every shard with its owner and epoch, and the map's generation, from one snapshot.</summary>
    Task<ShardDirectorySnapshot> ReadAsync(CancellationToken cancellationToken);

    /// <summary>One shard's row.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/>.</exception>
    Task<ShardOwnership> GetAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>
    /// Makes <paramref name="newOwner"/> the owner with epoch <paramref name="expectedEpoch"/> + 1, if the shard's epoch is
    /// still <paramref name="expectedEpoch"/>. A handover is the old owner claiming on the new owner's behalf. Returns the new row.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if the epoch moved on (nothing changes; the message
    /// names the current owner and epoch); <see cref="GridErrorCode.UnknownShard"/>.</exception>
    Task<ShardOwnership> ClaimAsync(long shardId, SiloAddress newOwner, long expectedEpoch, CancellationToken cancellationToken);

    /// <summary>
    /// Leaves the shard without an owner (epoch + 1, so the releasing owner's epoch is fenced too), if its owner is
    /// <paramref name="owner"/> at <paramref name="epoch"/>. Returns the new row.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if the owner or epoch differ; <see cref="GridErrorCode.UnknownShard"/>.</exception>
    Task<ShardOwnership> ReleaseAsync(long shardId, SiloAddress owner, long epoch, CancellationToken cancellationToken);
}
