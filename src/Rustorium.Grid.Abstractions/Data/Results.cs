namespace Rustorium.Grid;

/// <summary>What an acknowledged write returns.</summary>
/// <param name="ShardId">The shard that took the write.</param>
/// <param name="Version">The shard version that contains the write.</param>
/// <param name="TimestampMicros">Commit time, Unix microseconds.</param>
public sealed record WriteResult(long ShardId, long Version, long TimestampMicros);

/// <summary>A write together with the proof that the shard's root at <see cref="WriteResult.Version"/> holds it.</summary>
public sealed record ProvenWriteResult(WriteResult Write, ShardProof Proof);

/// <summary>A read: the value (null if absent), the version it was read at, where it came from, and its proof.</summary>
/// <param name="Value">The stored value, or null if the key is absent.</param>
/// <param name="Version">The shard version the read observed.</param>
/// <param name="TimestampMicros">Commit time of that version, Unix microseconds.</param>
/// <param name="Region">The region of the silo that answered.</param>
/// <param name="Proof">Inclusion (or non-inclusion) proof at <paramref name="Version"/>; null only if the caller did not ask for one.</param>
public sealed record ReadResult(byte[]? Value, long Version, long TimestampMicros, string Region, ShardProof? Proof);

/// <summary>One operation of an atomic batch. Wire values are explicit and append-only.</summary>
public enum BatchOperationKind : byte
{
    /// <summary>Set the key to the value.</summary>
    Put = 1,

    /// <summary>Remove the key (absent keys are fine).</summary>
    Delete = 2,
}

/// <summary>One operation of an atomic batch: put (with a value) or delete.</summary>
public readonly record struct BatchOperation(BatchOperationKind Kind, byte[] Key, byte[]? Value)
{
    /// <summary>A put.</summary>
    public static BatchOperation Put(byte[] key, byte[] value) => new(BatchOperationKind.Put, key, value);

    /// <summary>A delete.</summary>
    public static BatchOperation Delete(byte[] key) => new(BatchOperationKind.Delete, key, null);
}

/// <summary>A stored key and value.</summary>
public sealed record KeyValue(byte[] Key, byte[] Value, long Version);

/// <summary>One page of an ordered scan; <see cref="NextKey"/> is where the next page starts (null: done).</summary>
public sealed record ScanPage(IReadOnlyList<KeyValue> Items, byte[]? NextKey);
