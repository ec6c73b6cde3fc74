namespace Rustorium.Grid.Cluster;

/// <summary>
/// Each silo's control grain (key 0, always local to the silo it is called on): how silos hand shards to each other and
/// how operators move them. Method ids are wire contract: append-only.
/// </summary>
[GrainType("silo-control")]
public interface ISiloControlGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Opens shard <paramref name="shardId"/> on this silo now, because the directory names it the owner (a handover or a
    /// placement just did). Returns the epoch it serves under.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> if the directory names another owner.</exception>
    [GrainMethod(1), AlwaysInterleave]
    Task<long> AcceptShardAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>
    /// Hands shard <paramref name="shardId"/>, owned by this silo, to the silo at <paramref name="targetEndpoint"/>: drains and
    /// closes it here (queued writes commit), moves ownership in the directory (epoch + 1), and opens it there. Requests in
    /// flight wait or are redirected.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> if this silo does not own the shard;
    /// <see cref="GridErrorCode.InvalidArgument"/> if the target is not an active member or is this silo.</exception>
    [GrainMethod(2), AlwaysInterleave]
    Task<ShardMoveResult> MoveShardAsync(long shardId, string targetEndpoint, CancellationToken cancellationToken);

    /// <summary>
    /// Splits shard <paramref name="shardId"/>, owned by this silo, at its median key into two shards that stay here; each gets
    /// the tree of its own rows. Calls in flight wait. Returns the two new map entries (left keeps the id).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/>; <see cref="GridErrorCode.InvalidArgument"/> if it
    /// holds fewer than 2 keys.</exception>
    [GrainMethod(3), AlwaysInterleave]
    Task<ShardMapEntry[]> SplitShardAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>
    /// Merges shard <paramref name="leftShardId"/> with the shard right after it in key order; this silo must own both (move
    /// one first if not). Calls in flight wait. Returns the merged shard's map entry.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/>; <see cref="GridErrorCode.InvalidArgument"/> for the last shard.</exception>
    [GrainMethod(4), AlwaysInterleave]
    Task<ShardMapEntry> MergeShardsAsync(long leftShardId, CancellationToken cancellationToken);
}

/// <summary>The outcome of a shard move.</summary>
/// <param name="ShardId">The shard.</param>
/// <param name="From">The silo it left (endpoint).</param>
/// <param name="To">The silo that serves it now (endpoint).</param>
/// <param name="Epoch">Its new epoch.</param>
/// <param name="Version">Its data version when it moved.</param>
/// <param name="ElapsedMicroseconds">How long the move took, from the start of the drain to the target serving.</param>
public sealed record ShardMoveResult(long ShardId, string From, string To, long Epoch, long Version, long ElapsedMicroseconds);
