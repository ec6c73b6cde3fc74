using System.Text;

namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// Where a node sits in a sparse Merkle tree: its level (0 = the root) and the path that leads there from the root
/// (bit i = the child taken at level i, 1 = right; the first <see cref="Level"/> bits of every key below it).
/// </summary>
/// <remarks>
/// <para>A store that keys nodes by position instead of by hash changes a node in place when a write replaces it (the
/// replacement sits where the old node sat), and keeps a subtree's nodes next to each other; see
/// <see cref="SmtNodeBatch"/> for the positions a tree reports with its changes and <see cref="ISmtPositionedNodeStore"/>
/// for reads by position.</para>
/// <para><b>Encoding</b> (<see cref="Encode"/>, stable, persisted): the path bits packed most significant bit first
/// (bit i of the path is bit 7 − i mod 8 of byte i / 8), ⌈Level / 8⌉ bytes with the unused low bits of the last byte
/// zero, then one byte holding the level. In byte order the nodes that share their first path bits sort together, so a
/// store keyed by the encoding keeps each deep subtree on a few neighbouring pages.</para>
/// <para><c>default(SmtPosition)</c> is <see cref="None"/>: no position (a node given by a caller that does not know it).</para>
/// </remarks>
public readonly struct SmtPosition : IEquatable<SmtPosition>
{
    /// <summary>The longest encoding: 32 bytes of path and the level byte.</summary>
    public const int MaxEncodedLength = 33;

    // Path bits as four little-endian limbs (bit i = bit i % 64 of limb i / 64), bits from Level on zero.
    private readonly ulong _0, _1, _2, _3;
    private readonly int _levelPlusOne; // 0 = None

    private SmtPosition(ulong l0, ulong l1, ulong l2, ulong l3, int level)
    {
        _0 = l0; _1 = l1; _2 = l2; _3 = l3;
        _levelPlusOne = level + 1;
    }

    /// <summary>No position (<c>default</c>).</summary>
    public static SmtPosition None => default;

    /// <summary>The root's position: level 0, empty path.</summary>
    public static SmtPosition Root => new(0, 0, 0, 0, 0);

    /// <summary>False for <see cref="None"/>.</summary>
    public bool IsKnown => _levelPlusOne != 0;

    /// <summary>The level, 0 (the root) to <see cref="SparseMerkleTree.MaxDepth"/>.</summary>
    /// <exception cref="InvalidOperationException">The position is <see cref="None"/>.</exception>
    public int Level => _levelPlusOne != 0 ? _levelPlusOne - 1 : throw new InvalidOperationException("SmtPosition.None has no level.");

    /// <summary>The position at <paramref name="level"/> on the path of <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="level"/> is outside 0..<see cref="SparseMerkleTree.MaxDepth"/>.</exception>
    public static SmtPosition Of(in Fr key, int level) => Of(KeyBits.Of(key), level);

    internal static SmtPosition Of(in KeyBits bits, int level)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(level);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, SparseMerkleTree.MaxDepth);
        return new SmtPosition(
            bits.Limb(0) & Mask(level, 0), bits.Limb(1) & Mask(level, 1),
            bits.Limb(2) & Mask(level, 2), bits.Limb(3) & Mask(level, 3), level);
    }

    // The bits of limb `limb` that lie below `level`.
    private static ulong Mask(int level, int limb)
    {
        int bits = level - 64 * limb;
        return bits <= 0 ? 0 : bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;
    }

    /// <summary>Path bit <paramref name="index"/> (below <see cref="Level"/>): true = right.</summary>
    public bool Bit(int index)
    {
        if ((uint)index >= (uint)Level) throw new ArgumentOutOfRangeException(nameof(index), index, $"A position at level {Level} has path bits 0 to {Level - 1}.");
        return ((Limb(index >> 6) >> (index & 63)) & 1) != 0;
    }

    /// <summary>The left (<paramref name="right"/> false) or right child's position.</summary>
    /// <exception cref="InvalidOperationException">The position is <see cref="None"/> or at the deepest level.</exception>
    public SmtPosition Child(bool right)
    {
        int level = Level;
        if (level >= SparseMerkleTree.MaxDepth) throw new InvalidOperationException($"A node at level {level} has no children.");
        if (!right) return new SmtPosition(_0, _1, _2, _3, level + 1);
        ulong bit = 1UL << (level & 63);
        return (level >> 6) switch
        {
            0 => new SmtPosition(_0 | bit, _1, _2, _3, level + 1),
            1 => new SmtPosition(_0, _1 | bit, _2, _3, level + 1),
            2 => new SmtPosition(_0, _1, _2 | bit, _3, level + 1),
            _ => new SmtPosition(_0, _1, _2, _3 | bit, level + 1),
        };
    }

    private ulong Limb(int index) => index switch { 0 => _0, 1 => _1, 2 => _2, _ => _3 };

    /// <summary>Bytes of <see cref="Encode"/>: ⌈Level / 8⌉ + 1.</summary>
    public int EncodedLength => (Level + 7) / 8 + 1;

    /// <summary>Writes the encoding (see the type's remarks) into <paramref name="destination"/>; returns its length.</summary>
    /// <exception cref="ArgumentException">The destination is shorter than <see cref="EncodedLength"/>.</exception>
    public int Encode(Span<byte> destination)
    {
        int level = Level;
        int length = (level + 7) / 8 + 1;
        if (destination.Length < length) throw new ArgumentException($"A position at level {level} needs {length} bytes; got {destination.Length}.", nameof(destination));
        for (int b = 0; b < length - 1; b++)
        {
            // Byte b holds path bits 8b..8b+7, bit 8b in its top bit: the limb's byte, bit-reversed.
            byte raw = (byte)(Limb(b >> 3) >> (8 * (b & 7)));
            destination[b] = ReverseBits(raw);
        }
        destination[length - 1] = (byte)level;
        return length;
    }

    /// <summary>The encoding as a new array.</summary>
    public byte[] ToBytes()
    {
        var bytes = new byte[EncodedLength];
        Encode(bytes);
        return bytes;
    }

    /// <summary>Reads an encoding written by <see cref="Encode"/>, refusing anything that is not exactly one.</summary>
    /// <exception cref="FormatException">Wrong length for its level, a level above <see cref="SparseMerkleTree.MaxDepth"/>, or path bits set past the level.</exception>
    public static SmtPosition Decode(ReadOnlySpan<byte> encoded)
    {
        if (encoded.IsEmpty) throw new FormatException("An encoded tree position cannot be empty: it ends with its level byte.");
        int level = encoded[^1];
        if (level > SparseMerkleTree.MaxDepth)
            throw new FormatException($"An encoded tree position says level {level}; the deepest is {SparseMerkleTree.MaxDepth}.");
        int length = (level + 7) / 8 + 1;
        if (encoded.Length != length)
            throw new FormatException($"An encoded tree position at level {level} is {length} bytes long, not {encoded.Length}.");
        Span<ulong> limbs = stackalloc ulong[4];
        for (int b = 0; b < length - 1; b++) limbs[b >> 3] |= (ulong)ReverseBits(encoded[b]) << (8 * (b & 7));
        ulong beyond = (limbs[0] & ~Mask(level, 0)) | (limbs[1] & ~Mask(level, 1)) | (limbs[2] & ~Mask(level, 2)) | (limbs[3] & ~Mask(level, 3));
        if (beyond != 0)
            throw new FormatException($"An encoded tree position at level {level} has path bits set at level {level} or deeper.");
        return new SmtPosition(limbs[0], limbs[1], limbs[2], limbs[3], level);
    }

    private static byte ReverseBits(byte b) => (byte)((b * 0x0202020202UL & 0x010884422010UL) % 1023);

    /// <inheritdoc />
    public bool Equals(SmtPosition other) =>
        _levelPlusOne == other._levelPlusOne && _0 == other._0 && _1 == other._1 && _2 == other._2 && _3 == other._3;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is SmtPosition other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_levelPlusOne, _0, _1, _2, _3);

    /// <summary>Same level and path.</summary>
    public static bool operator ==(SmtPosition left, SmtPosition right) => left.Equals(right);

    /// <summary>Different level or path.</summary>
    public static bool operator !=(SmtPosition left, SmtPosition right) => !left.Equals(right);

    /// <summary>"level 3: 101" (the path bits from the root down; "root" for level 0, "none" for <see cref="None"/>).</summary>
    public override string ToString()
    {
        if (!IsKnown) return "none";
        int level = Level;
        if (level == 0) return "root";
        var text = new StringBuilder($"level {level}: ", 10 + level);
        for (int i = 0; i < level; i++) text.Append(Bit(i) ? '1' : '0');
        return text.ToString();
    }
}
