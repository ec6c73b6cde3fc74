using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>The stored form of field elements (roots, node hashes, children, leaf keys and values): 32 bytes, canonical, big-endian.</summary>
/// <remarks>Big-endian so that a BLOB comparison orders elements as numbers and a hex dump reads as the number.</remarks>
internal static class FieldBytes
{
    public const int Length = Fr.ByteLength;

    public static byte[] ToBytes(in Fr value) => value.ToBytesBigEndian();

    public static void Write(in Fr value, byte[] destination) => value.WriteBigEndian(destination);

    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> if the bytes are not a canonical element.</exception>
    public static Fr Read(ReadOnlySpan<byte> bytes, string what) =>
        Fr.TryFromBytesBigEndian(bytes, out var value) ? value : throw NotAnElement(what, bytes.Length);

    // The two below run for every tree node read from a store: their messages name a node by its hash or position, and
    // formatting those (a field element in decimal) cost more than the read itself, so it happens only on failure.

    /// <summary><see cref="Read"/> of a column (<paramref name="part"/>, e.g. "child/key") of the node <paramref name="node"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> if the bytes are not a canonical element.</exception>
    public static Fr ReadOfNode(ReadOnlySpan<byte> bytes, string part, in Fr node) =>
        Fr.TryFromBytesBigEndian(bytes, out var value) ? value : throw NotAnElement($"{part} of node {node}", bytes.Length);

    /// <summary><see cref="Read"/> of the hash stored with the node at <paramref name="position"/> of a shard.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> if the bytes are not a canonical element.</exception>
    public static Fr ReadHashAt(ReadOnlySpan<byte> bytes, in SmtPosition position, long shardId) =>
        Fr.TryFromBytesBigEndian(bytes, out var value)
            ? value
            : throw NotAnElement($"hash of the node at {position} of shard {shardId}", bytes.Length);

    private static GridException NotAnElement(string what, int length) =>
        new(GridErrorCode.Corrupted, $"Stored {what} is not a canonical 32-byte field element ({length} bytes): the store is corrupt.");
}
