namespace Rustorium.Grid;

/// <summary>
/// The grid's one family of error codes: carried on the wire, mapped to the CLI's exit codes.
/// Persisted and wire values are explicit and append-only: never renumber, never reuse.
/// </summary>
public enum GridErrorCode : ushort
{
    /// <summary>An argument is invalid: empty or oversized key, oversized value, start &gt; end, bad option. Nothing was changed.</summary>
    InvalidArgument = 1,

    /// <summary>This silo does not own the shard; <see cref="GridException.OwnerHint"/> says who does, if known.</summary>
    NotOwner = 2,

    /// <summary>The caller's token is missing, wrong or lacks the role.</summary>
    Unauthorized = 3,

    /// <summary>A conditional write lost: an epoch or version moved on underneath it.</summary>
    Conflict = 4,

    /// <summary>The shard, grain or key range is unknown.</summary>
    UnknownShard = 5,

    /// <summary>The call did not complete within its deadline.</summary>
    Timeout = 6,

    /// <summary>The silo is not reachable or is shutting down; retry elsewhere or later.</summary>
    Unavailable = 7,

    /// <summary>A proof did not verify: the answer must not be trusted.</summary>
    VerificationFailed = 8,

    /// <summary>A frame or message was malformed (bad length, unknown type, truncated payload).</summary>
    ProtocolViolation = 9,

    /// <summary>Stored data failed an integrity check (corrupt file, root mismatch).</summary>
    Corrupted = 10,

    /// <summary>The call was cancelled by its caller.</summary>
    Cancelled = 11,

    /// <summary>A bug or an unexpected failure inside the grid.</summary>
    Internal = 12,
}
