namespace Rustorium.Grid;

/// <summary>The grid's typed error, the same on the silo, on the wire and in the client.</summary>
public class GridException : Exception
{
    /// <summary>Creates an error with its code and a message that says what went wrong and what to do.</summary>
    public GridException(GridErrorCode code, string message, Exception? inner = null) : base(message, inner)
    {
        Code = code;
    }

    /// <summary>What kind of failure this is.</summary>
    public GridErrorCode Code { get; }

    /// <summary>For <see cref="GridErrorCode.NotOwner"/>: the owner's address and epoch, if the silo knows them.</summary>
    public OwnerHint? OwnerHint { get; init; }

    /// <summary>Shorthand for <see cref="GridErrorCode.InvalidArgument"/>.</summary>
    public static GridException InvalidArgument(string message) => new(GridErrorCode.InvalidArgument, message);
}

/// <summary>Where a shard's owner is: the silo's endpoint and the ownership epoch it holds.</summary>
/// <param name="ShardId">The shard.</param>
/// <param name="Endpoint">host:port of the owning silo.</param>
/// <param name="Epoch">The owner's epoch (higher wins).</param>
public sealed record OwnerHint(long ShardId, string Endpoint, long Epoch);
