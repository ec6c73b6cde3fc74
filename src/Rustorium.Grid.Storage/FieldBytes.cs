using Rustorium.Grid.Crypto;

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
        Fr.TryFromBytesBigEndian(bytes, out var value)
            ? value
            : throw new GridException(GridErrorCode.Corrupted,
                $"Stored {what} is not a canonical 32-byte field element ({bytes.Length} bytes): the store is corrupt.");
}
