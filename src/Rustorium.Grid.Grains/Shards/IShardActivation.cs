using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// How a shard grain becomes the shard's owner when it activates, and whether it may serve a call. On a single silo the
/// store's epoch is simply claimed (<see cref="StoreClaimActivation"/>); in a cluster the directory decides
/// (<c>ClusterShardActivation</c>): the silo serves a shard only while the directory names it the owner.
/// </summary>
public interface IShardActivation
{
    /// <summary>Makes this silo the owner of <paramref name="shardId"/> (or confirms it is) and returns the shard's state under its epoch.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> with an <see cref="OwnerHint"/> when another silo owns it;
    /// <see cref="GridErrorCode.UnknownShard"/>; <see cref="GridErrorCode.Unavailable"/> when this silo may not serve now.</exception>
    Task<ShardState> AcquireAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>Throws unless this silo may serve calls now (cheap; called on every call).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/>.</exception>
    void EnsureServing();
}

/// <summary>The single-silo rule: activation claims the shard in the store (epoch + 1), fencing any earlier activation.</summary>
public sealed class StoreClaimActivation(IShardStore store) : IShardActivation
{
    /// <inheritdoc />
    public Task<ShardState> AcquireAsync(long shardId, CancellationToken cancellationToken) => store.ClaimAsync(shardId, cancellationToken).AsTask();

    /// <inheritdoc />
    public void EnsureServing()
    {
    }
}
