using System.Numerics;
using System.Runtime.CompilerServices;

namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// The canonical value of a key as four little-endian limbs, for reading path bits without leaving
/// Montgomery form once per bit (<see cref="Fr.Bit"/> converts on every call). Bit i of the key chooses
/// the child at level i: 0 = left, 1 = right (circomlibjs <c>_splitBits</c>).
/// </summary>
internal readonly struct KeyBits
{
    private readonly ulong _0, _1, _2, _3;

    private KeyBits(ulong l0, ulong l1, ulong l2, ulong l3)
    {
        _0 = l0; _1 = l1; _2 = l2; _3 = l3;
    }

    public static KeyBits Of(in Fr key)
    {
        Span<ulong> limbs = stackalloc ulong[4];
        key.GetCanonicalLimbs(limbs);
        return new KeyBits(limbs[0], limbs[1], limbs[2], limbs[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Limb(int index) => index switch { 0 => _0, 1 => _1, 2 => _2, _ => _3 };

    /// <summary>Bit <paramref name="level"/> (0..255): true = go right.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Bit(int level) => ((Limb(level >> 6) >> (level & 63)) & 1) != 0;

    /// <summary>The lowest bit index where the two keys differ; 256 if they are equal.</summary>
    public int FirstDifference(in KeyBits other)
    {
        ulong x = _0 ^ other._0;
        if (x != 0) return BitOperations.TrailingZeroCount(x);
        x = _1 ^ other._1;
        if (x != 0) return 64 + BitOperations.TrailingZeroCount(x);
        x = _2 ^ other._2;
        if (x != 0) return 128 + BitOperations.TrailingZeroCount(x);
        x = _3 ^ other._3;
        if (x != 0) return 192 + BitOperations.TrailingZeroCount(x);
        return 256;
    }

    /// <summary>
    /// Orders keys by their bit strings read from bit 0 upwards (the tree's left-to-right leaf order), so
    /// that every subtree's keys are contiguous and split at each level into a left run and a right run.
    /// </summary>
    public static int ComparePathOrder(in KeyBits a, in KeyBits b)
    {
        int i = a.FirstDifference(b);
        if (i == 256) return 0;
        return a.Bit(i) ? 1 : -1;
    }
}
