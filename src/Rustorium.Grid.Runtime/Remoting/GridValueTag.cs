namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// The type tag that starts every value encoded by <see cref="GridValueCodec"/> (a <c>varuint32</c> on the wire). Explicit
/// and append-only: a tag is never renumbered or reused, and the body layout behind a tag never changes (a record that
/// gains a field gets a new tag; readers then accept both). Every byte is described in docs/protocol.md.
/// </summary>
/// <remarks>
/// Tags 0..63 belong to the runtime's built-in types; tags from <see cref="FirstApplicationTag"/> on are for codecs
/// registered with <see cref="GridValueCodec.Register{T}"/>.
/// </remarks>
public enum GridValueTag : uint
{
    /// <summary>No value (a null reference or an empty <see cref="Nullable{T}"/>); no body.</summary>
    Null = 0,

    /// <summary><see cref="bool"/>: one byte, <c>00</c> or <c>01</c>.</summary>
    Bool = 1,

    /// <summary><see cref="int"/>: zigzag <c>varint</c> (at most 5 bytes).</summary>
    Int32 = 2,

    /// <summary><see cref="long"/>: zigzag <c>varint</c> (at most 10 bytes).</summary>
    Int64 = 3,

    /// <summary><see cref="ulong"/>: <c>varuint</c> (at most 10 bytes).</summary>
    UInt64 = 4,

    /// <summary><see cref="string"/>: <c>string</c> (UTF-8, length-prefixed).</summary>
    String = 5,

    /// <summary><c>byte[]</c>: <c>bytes</c> (length-prefixed).</summary>
    Bytes = 6,

    /// <summary>
    /// Any enum: its underlying value, zigzag <c>varint</c> for signed underlying types, <c>varuint</c> for unsigned ones.
    /// The enum type is the declared one; the value must be defined (or, for <c>[Flags]</c> enums, made of defined bits).
    /// </summary>
    Enum = 7,

    /// <summary>A <c>T[]</c> or <c>IReadOnlyList&lt;T&gt;</c> (other than <c>byte[]</c>): <c>varuint32</c> count, then each element as a value.</summary>
    Array = 8,

    /// <summary><see cref="KeyRange"/>.</summary>
    KeyRange = 32,

    /// <summary><see cref="Grid.BatchOperation"/>.</summary>
    BatchOperation = 33,

    /// <summary><see cref="Grid.WriteResult"/>.</summary>
    WriteResult = 34,

    /// <summary><see cref="Grid.ProvenWriteResult"/>.</summary>
    ProvenWriteResult = 35,

    /// <summary><see cref="Grid.ReadResult"/>.</summary>
    ReadResult = 36,

    /// <summary><see cref="Grid.KeyValue"/>.</summary>
    KeyValue = 37,

    /// <summary><see cref="Grid.ScanPage"/>.</summary>
    ScanPage = 38,

    /// <summary><see cref="Grid.ShardProof"/>.</summary>
    ShardProof = 39,

    /// <summary><see cref="Grid.ShardStatus"/>.</summary>
    ShardStatus = 40,

    /// <summary><see cref="Grid.ShardMap"/>.</summary>
    ShardMap = 41,

    /// <summary><see cref="Grid.ShardMapEntry"/>.</summary>
    ShardMapEntry = 42,

    /// <summary><see cref="Grid.OwnerHint"/>.</summary>
    OwnerHint = 43,

    /// <summary><see cref="Grid.Cluster.ShardMoveResult"/>.</summary>
    ShardMoveResult = 44,

    /// <summary>The first tag available to codecs registered with <see cref="GridValueCodec.Register{T}"/>.</summary>
    FirstApplicationTag = 64,
}
