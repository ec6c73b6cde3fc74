using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>
/// One reusable buffer per encoded length of a <see cref="SmtPosition"/> (1 to 33 bytes): a driver binds a whole
/// byte array, so a position is encoded into the buffer of exactly its length instead of a new array per statement.
/// Not thread-safe: one per connection or writer.
/// </summary>
internal sealed class PositionBuffers
{
    private readonly byte[][] _byLength = new byte[SmtPosition.MaxEncodedLength + 1][];

    /// <summary>The encoding of <paramref name="position"/> in the buffer of its length (valid until the next call with that length).</summary>
    /// <exception cref="InvalidOperationException">The position is <see cref="SmtPosition.None"/>.</exception>
    public byte[] Encode(in SmtPosition position)
    {
        int length = position.EncodedLength;
        var buffer = _byLength[length] ??= new byte[length];
        position.Encode(buffer);
        return buffer;
    }
}
