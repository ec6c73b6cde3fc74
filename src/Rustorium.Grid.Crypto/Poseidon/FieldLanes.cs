using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>Eight field elements side by side: limb k of all eight lanes in one 512-bit vector.</summary>
[InlineArray(FieldLanes.Limbs)]
internal struct Lanes
{
    private Vector512<ulong> _limb;
}

/// <summary>
/// BN254 scalar field arithmetic on eight independent elements at once with AVX-512F, for batch hashing.
/// </summary>
/// <remarks>
/// <para>Scalar code pays for every carry with a compare and a set (C# has no add-with-carry); here limbs
/// are 29 bits wide (9 limbs, 261 bits) so a 29×29-bit product fits in 58 bits and up to 63 of them add up in
/// a 64-bit lane without any carry handling. <c>vpmuludq</c> multiplies the low 32 bits of each lane.</para>
/// <para>Values are in Montgomery form for R = 2²⁶¹ and kept <b>partially reduced</b>: every result is in
/// [0, 2p) with limbs below 2²⁹. Montgomery reduction of a sum of k products of such values gives a result
/// below 2p while 4kp &lt; R, and the accumulators do not overflow while 9k + 9 products of &lt; 2⁵⁸ fit in
/// 64 bits (k ≤ 6); <see cref="MaxDotTerms"/> enforces that.</para>
/// </remarks>
internal static class FieldLanes
{
    public const int Limbs = 9;
    public const int LimbBits = 29;
    public const int Width = 8;
    public const int MaxDotTerms = 6;
    private const ulong Mask = (1UL << LimbBits) - 1;

    /// <summary>True where the batch path runs; elsewhere callers fall back to scalar hashing.</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    // -p⁻¹ mod 2²⁹, p and 2p in 29-bit limbs, derived from the modulus so nothing is transcribed by hand.
    internal static ulong PInv29Value => PInv29;
    internal static ReadOnlySpan<ulong> P29Value => P29;
    private static readonly ulong PInv29 = (ulong)(((BigInteger.One << LimbBits) - InverseByEuclid(Fr.Modulus % (BigInteger.One << LimbBits), BigInteger.One << LimbBits)) % (BigInteger.One << LimbBits));
    private static readonly ulong[] P29 = ToLimbs29(Fr.Modulus);
    private static readonly ulong[] TwoP29 = ToLimbs29(2 * Fr.Modulus);

    /// <summary>2²⁶¹ mod p and its inverse, to move between the scalar (R = 2²⁵⁶) and lane (R = 2²⁶¹) forms.</summary>
    private static readonly Fr ToLaneFactor = Fr.FromBigInteger(BigInteger.ModPow(2, LimbBits * Limbs, Fr.Modulus));
    private static readonly Fr FromLaneFactor = ToLaneFactor.Inverse();

    private static BigInteger InverseByEuclid(BigInteger a, BigInteger m)
    {
        BigInteger t = 0, newT = 1, r = m, newR = a;
        while (!newR.IsZero)
        {
            var q = r / newR;
            (t, newT) = (newT, t - q * newT);
            (r, newR) = (newR, r - q * newR);
        }
        return t < 0 ? t + m : t;
    }

    public static ulong[] ToLimbs29(BigInteger v)
    {
        var limbs = new ulong[Limbs];
        for (int i = 0; i < Limbs; i++) limbs[i] = (ulong)((v >> (LimbBits * i)) & Mask);
        return limbs;
    }

    /// <summary>The lane-form limbs of one element (used for constants, which are then broadcast).</summary>
    public static ulong[] ToLaneLimbs(in Fr x)
    {
        Span<ulong> c = stackalloc ulong[4];
        (x * ToLaneFactor).GetCanonicalLimbs(c);
        return SplitLimbs(c);
    }

    private static ulong[] SplitLimbs(ReadOnlySpan<ulong> c)
    {
        var limbs = new ulong[Limbs];
        SplitLimbs(c, limbs);
        return limbs;
    }

    private static void SplitLimbs(ReadOnlySpan<ulong> c, Span<ulong> limbs)
    {
        for (int i = 0; i < Limbs; i++)
        {
            int bit = i * LimbBits, word = bit >> 6, shift = bit & 63;
            ulong v = c[word] >> shift;
            if (shift + LimbBits > 64 && word + 1 < 4) v |= c[word + 1] << (64 - shift);
            limbs[i] = v & Mask;
        }
    }

    /// <summary>Loads eight scalar elements (fewer: the rest of the lanes are zero) into lane form.</summary>
    public static void Load(ReadOnlySpan<Fr> xs, ref Lanes dst)
    {
        Span<ulong> c = stackalloc ulong[4];
        Span<ulong> limbs = stackalloc ulong[Limbs];
        Span<ulong> transposed = stackalloc ulong[Limbs * Width];
        transposed.Clear();
        for (int lane = 0; lane < xs.Length; lane++)
        {
            (xs[lane] * ToLaneFactor).GetCanonicalLimbs(c);
            SplitLimbs(c, limbs);
            for (int k = 0; k < Limbs; k++) transposed[k * Width + lane] = limbs[k];
        }
        for (int k = 0; k < Limbs; k++) dst[k] = Vector512.Create<ulong>(transposed.Slice(k * Width, Width));
    }

    /// <summary>Reads the first <c>destination.Length</c> lanes back into scalar elements.</summary>
    public static void Store(in Lanes src, Span<Fr> destination)
    {
        Span<ulong> all = stackalloc ulong[Limbs * Width];
        for (int k = 0; k < Limbs; k++) src[k].CopyTo(all.Slice(k * Width, Width));
        for (int lane = 0; lane < destination.Length; lane++)
        {
            ulong c0 = 0, c1 = 0, c2 = 0, c3 = 0;
            for (int k = 0; k < Limbs; k++)
            {
                ulong v = all[k * Width + lane];
                int bit = k * LimbBits, word = bit >> 6, shift = bit & 63;
                ulong lo = v << shift, hi = shift + LimbBits > 64 ? v >> (64 - shift) : 0;
                switch (word)
                {
                    case 0: c0 |= lo; c1 |= hi; break;
                    case 1: c1 |= lo; c2 |= hi; break;
                    case 2: c2 |= lo; c3 |= hi; break;
                    default: c3 |= lo; break;
                }
            }
            // The lane value is below 2p: reduce once, then leave the lane Montgomery form.
            destination[lane] = Fr.FromLimbsBelowTwoP(c0, c1, c2, c3) * FromLaneFactor;
        }
    }

    /// <summary>r = a·b.</summary>
    public static void Mul(in Lanes a, in Lanes b, out Lanes r) => FieldLanesKernels.Mul(a, b, out r);

    /// <summary>r = a + b, brought back into [0, 2p).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(in Lanes a, in Lanes b, out Lanes r)
    {
        var mask = Vector512.Create(Mask);
        Unsafe.SkipInit(out r);
        var carry = Vector512<ulong>.Zero;
        for (int k = 0; k < Limbs; k++)
        {
            var v = a[k] + b[k] + carry;
            r[k] = v & mask;
            carry = v >> LimbBits;
        }
        SubtractTwoPIfAbove(ref r);
    }

    /// <summary>r += c for a broadcast constant (lane-form limbs), brought back into [0, 2p).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddConstant(ref Lanes r, ReadOnlySpan<ulong> c)
    {
        Unsafe.SkipInit(out Lanes broadcast);
        for (int k = 0; k < Limbs; k++) broadcast[k] = Vector512.Create(c[k]);
        Add(r, broadcast, out r); // Add reads limb k before writing it, so r may be both input and output
    }

    // Values below 4p come in; values below 2p go out.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SubtractTwoPIfAbove(ref Lanes r)
    {
        var mask = Vector512.Create(Mask);
        Lanes d = default;
        var borrow = Vector512<long>.Zero;
        for (int k = 0; k < Limbs; k++)
        {
            var v = r[k].AsInt64() - Vector512.Create((long)TwoP29[k]) + borrow;
            d[k] = v.AsUInt64() & mask;
            borrow = Avx512F.ShiftRightArithmetic(v, LimbBits); // 0 or -1
        }
        // A final borrow means r < 2p: keep r.
        var keep = borrow.AsUInt64();
        for (int k = 0; k < Limbs; k++) r[k] = Vector512.ConditionalSelect(keep, r[k], d[k]);
    }

    /// <summary>x⁵ in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pow5(ref Lanes x)
    {
        FieldLanesKernels.Square(x, out var x2);
        FieldLanesKernels.Square(x2, out var x4);
        FieldLanesKernels.Mul(x4, x, out x);
    }
}
