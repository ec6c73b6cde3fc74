using System.Numerics;

namespace Rustorium.Grid.Crypto.Smt;

public sealed partial class SmtProof
{
    /// <summary>The binary format version written by <see cref="Encode"/> (byte 0).</summary>
    public const byte FormatVersion = 1;

    private const byte FlagExists = 0x01;
    private const byte FlagIsOld0 = 0x02;
    private const int HeaderLength = 3;

    /// <summary>
    /// The canonical binary encoding (each proof has exactly one): version, flags, depth, sibling bitmap,
    /// the non-zero siblings, root, key, then value (inclusion only) or oldKey and oldValue (non-inclusion
    /// ending in a leaf only). Field elements are 32 bytes big-endian. Byte-by-byte layout in docs/proofs.md.
    /// </summary>
    /// <remarks>Size: 3 + ⌈depth/8⌉ + 32·(non-zero siblings) + 64, + 32 for inclusion or + 64 for an old leaf.
    /// A tree of 10⁶ random keys has about 20 non-zero siblings per path: about 0.8 KiB.</remarks>
    public byte[] Encode()
    {
        int depth = _siblings.Length;
        int bitmapLength = (depth + 7) / 8;
        int nonZero = 0;
        foreach (var s in _siblings) if (!s.IsZero) nonZero++;

        var bytes = new byte[EncodedLength(Exists, IsOld0, depth, nonZero)];
        bytes[0] = FormatVersion;
        bytes[1] = (byte)((Exists ? FlagExists : 0) | (IsOld0 ? FlagIsOld0 : 0));
        bytes[2] = (byte)depth;
        var bitmap = bytes.AsSpan(HeaderLength, bitmapLength);
        int offset = HeaderLength + bitmapLength;
        for (int i = 0; i < depth; i++)
        {
            if (_siblings[i].IsZero) continue;
            bitmap[i >> 3] |= (byte)(1 << (i & 7));
            _siblings[i].WriteBigEndian(bytes.AsSpan(offset, Fr.ByteLength));
            offset += Fr.ByteLength;
        }
        Write(Root);
        Write(Key);
        if (Exists)
        {
            Write(Value);
        }
        else if (!IsOld0)
        {
            Write(OldKey);
            Write(OldValue);
        }
        return bytes;

        void Write(in Fr x)
        {
            x.WriteBigEndian(bytes.AsSpan(offset, Fr.ByteLength));
            offset += Fr.ByteLength;
        }
    }

    /// <summary>Reads the encoding written by <see cref="Encode"/>, accepting nothing else.</summary>
    /// <exception cref="SmtProofFormatException">The input is truncated, has trailing bytes, an unknown version
    /// or flags, a depth over <see cref="SparseMerkleTree.MaxDepth"/>, a bitmap that is not canonical (bits past
    /// the depth, last sibling absent, a listed sibling that is zero) or a field element that is not below p.</exception>
    public static SmtProof Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length < HeaderLength)
            throw new SmtProofFormatException($"Truncated SMT proof: {data.Length} bytes, the header alone is {HeaderLength}.");
        if (data[0] != FormatVersion)
            throw new SmtProofFormatException($"Unknown SMT proof format version {data[0]} (this build reads version {FormatVersion}).");
        byte flags = data[1];
        if ((flags & ~(FlagExists | FlagIsOld0)) != 0)
            throw new SmtProofFormatException($"Unknown SMT proof flags 0x{flags:x2} (only 0x01 exists and 0x02 isOld0 are defined).");
        bool exists = (flags & FlagExists) != 0;
        bool isOld0 = (flags & FlagIsOld0) != 0;
        if (exists && isOld0)
            throw new SmtProofFormatException("SMT proof flags set both exists and isOld0; an inclusion proof cannot end in an empty branch.");
        int depth = data[2];
        if (depth > SparseMerkleTree.MaxDepth)
            throw new SmtProofFormatException($"SMT proof depth {depth} exceeds the maximum {SparseMerkleTree.MaxDepth}.");

        int bitmapLength = (depth + 7) / 8;
        if (data.Length < HeaderLength + bitmapLength)
            throw new SmtProofFormatException($"Truncated SMT proof: the sibling bitmap needs {bitmapLength} bytes after the header.");
        var bitmap = data.Slice(HeaderLength, bitmapLength);
        if ((depth & 7) != 0 && (bitmap[^1] >> (depth & 7)) != 0)
            throw new SmtProofFormatException("Non-canonical SMT proof: the sibling bitmap has bits set past the depth.");
        if (depth > 0 && (bitmap[(depth - 1) >> 3] & (1 << ((depth - 1) & 7))) == 0)
            throw new SmtProofFormatException("Non-canonical SMT proof: the last sibling is zero (trailing zero siblings must be trimmed).");
        int nonZero = 0;
        foreach (var b in bitmap) nonZero += BitOperations.PopCount(b);

        int expected = EncodedLength(exists, isOld0, depth, nonZero);
        if (data.Length < expected)
            throw new SmtProofFormatException($"Truncated SMT proof: {data.Length} bytes, its header and bitmap announce {expected}.");
        if (data.Length > expected)
            throw new SmtProofFormatException($"SMT proof has {data.Length - expected} trailing bytes after its {expected} bytes.");

        int offset = HeaderLength + bitmapLength;
        var siblings = new Fr[depth];
        for (int i = 0; i < depth; i++)
        {
            if ((bitmap[i >> 3] & (1 << (i & 7))) == 0) continue;
            siblings[i] = Read(data, ref offset, $"sibling {i}");
            if (siblings[i].IsZero)
                throw new SmtProofFormatException($"Non-canonical SMT proof: sibling {i} is marked non-zero in the bitmap but is zero.");
        }
        var root = Read(data, ref offset, "root");
        var key = Read(data, ref offset, "key");
        Fr value = Fr.Zero, oldKey = Fr.Zero, oldValue = Fr.Zero;
        if (exists)
        {
            value = Read(data, ref offset, "value");
        }
        else if (!isOld0)
        {
            oldKey = Read(data, ref offset, "oldKey");
            oldValue = Read(data, ref offset, "oldValue");
        }
        return new SmtProof(root, key, exists, value, siblings, isOld0, oldKey, oldValue);
    }

    private static int EncodedLength(bool exists, bool isOld0, int depth, int nonZeroSiblings) =>
        HeaderLength + (depth + 7) / 8 + Fr.ByteLength * (nonZeroSiblings + 2 + (exists ? 1 : isOld0 ? 0 : 2));

    private static Fr Read(ReadOnlySpan<byte> data, ref int offset, string what)
    {
        if (!Fr.TryFromBytesBigEndian(data.Slice(offset, Fr.ByteLength), out var x))
            throw new SmtProofFormatException($"SMT proof {what} is not a canonical field element (it is not below p).");
        offset += Fr.ByteLength;
        return x;
    }
}
