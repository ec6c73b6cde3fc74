namespace Rustorium.Grid;

/// <summary>
/// A key-range shard's grain, keyed by shard id. Every answer is checkable: reads carry a <see cref="ShardProof"/>
/// at the shard's published tree version, and <see cref="WriteWithProofAsync"/> proves the write at its version.
/// </summary>
/// <remarks>
/// Keys outside the shard's range are refused with <see cref="GridErrorCode.NotOwner"/> (the client's shard map is
/// stale: refresh it); oversized or empty keys, oversized values and bad batches with
/// <see cref="GridErrorCode.InvalidArgument"/>, storing nothing. Method ids are wire contract: append-only.
/// </remarks>
[GrainType("shard")]
public interface IShardGrain : IGrainWithIntegerKey
{
    /// <summary>Sets a key; acknowledged according to <paramref name="mode"/>.</summary>
    [GrainMethod(1), AlwaysInterleave]
    Task<WriteResult> PutAsync(byte[] key, byte[] value, SyncMode mode, CancellationToken cancellationToken);

    /// <summary>Removes a key (absent keys are fine).</summary>
    [GrainMethod(2), AlwaysInterleave]
    Task<WriteResult> DeleteAsync(byte[] key, SyncMode mode, CancellationToken cancellationToken);

    /// <summary>Applies the operations atomically; all keys must be in this shard.</summary>
    [GrainMethod(3), AlwaysInterleave]
    Task<WriteResult> BatchAsync(BatchOperation[] operations, SyncMode mode, CancellationToken cancellationToken);

    /// <summary>Sets a key durably and returns the inclusion proof at the version that contains the write.</summary>
    [GrainMethod(4), AlwaysInterleave]
    Task<ProvenWriteResult> WriteWithProofAsync(byte[] key, byte[] value, CancellationToken cancellationToken);

    /// <summary>Reads a key, with a proof unless <paramref name="withProof"/> is false.</summary>
    [GrainMethod(5), AlwaysInterleave]
    Task<ReadResult> ReadAsync(byte[] key, bool withProof, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="limit"/> rows with start ≤ key &lt; end (null: the shard's end), in key order.</summary>
    [GrainMethod(6), AlwaysInterleave]
    Task<ScanPage> ScanAsync(byte[] start, byte[]? end, int limit, CancellationToken cancellationToken);

    /// <summary>The shard's range, versions, root and key count.</summary>
    [GrainMethod(7), AlwaysInterleave]
    Task<ShardStatus> GetStatusAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Reads several keys of this shard in one call: the answers, in the order of <paramref name="keys"/>, are the ones
    /// <see cref="ReadAsync"/> would give for each key. Clients send the concurrent reads of one shard together this way
    /// (GridClient does it by itself), which costs the transport and the runtime one call instead of one per key.
    /// </summary>
    /// <remarks>The call fails as a whole, with the first key's error, if any key would: a key outside the shard
    /// (<see cref="GridErrorCode.NotOwner"/>), an empty or oversized key, or more keys than the silo's
    /// <see cref="GridLimits.MaxBatchOperations"/> (<see cref="GridErrorCode.InvalidArgument"/>).</remarks>
    [GrainMethod(8), AlwaysInterleave]
    Task<ReadResult[]> ReadManyAsync(byte[][] keys, bool withProof, CancellationToken cancellationToken);
}

/// <summary>A shard's public state.</summary>
/// <param name="ShardId">The shard.</param>
/// <param name="Range">Its keys.</param>
/// <param name="Version">Last committed data version.</param>
/// <param name="TreeVersion">Last published tree version (≤ <paramref name="Version"/>).</param>
/// <param name="Root">The root at <paramref name="TreeVersion"/>, decimal.</param>
/// <param name="KeyCount">Keys at <paramref name="TreeVersion"/>.</param>
/// <param name="Epoch">The owner's epoch.</param>
/// <param name="Silo">The owning silo's endpoint.</param>
public sealed record ShardStatus(long ShardId, KeyRange Range, long Version, long TreeVersion, string Root, long KeyCount, long Epoch, string Silo);

/// <summary>
/// The cluster's routing table: every shard's range and owner, covering the key space without gap or overlap.
/// Served by every silo (<see cref="IClusterGrain"/>); clients cache it and refresh it on <see cref="GridErrorCode.NotOwner"/>.
/// </summary>
public sealed record ShardMap(long Generation, ShardMapEntry[] Shards)
{
    /// <summary>The entry whose range holds <paramref name="key"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/> if no range holds it (a broken map).</exception>
    public ShardMapEntry Locate(ReadOnlySpan<byte> key)
    {
        int lo = 0, hi = Shards.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var range = Shards[mid].Range;
            if (KeyRange.Compare(key, range.Start) < 0) hi = mid - 1;
            else if (!range.IsUnbounded && KeyRange.Compare(key, range.End) >= 0) lo = mid + 1;
            else return Shards[mid];
        }
        throw new GridException(GridErrorCode.UnknownShard, $"No shard holds key {Convert.ToHexStringLower(key)}: the shard map is incomplete.");
    }
}

/// <summary>One shard in the <see cref="ShardMap"/>: its range, its owner's endpoint and epoch.</summary>
public sealed record ShardMapEntry(long ShardId, KeyRange Range, string Endpoint, long Epoch);

/// <summary>The silo-wide system grain every silo answers locally (key 0): the shard map and the silo's status.</summary>
[GrainType("cluster")]
public interface IClusterGrain : IGrainWithIntegerKey
{
    /// <summary>The current shard map.</summary>
    [GrainMethod(1), AlwaysInterleave]
    Task<ShardMap> GetShardMapAsync(CancellationToken cancellationToken);
}
