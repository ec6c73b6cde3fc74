using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Rustorium.Grid.Crypto;

/// <summary>
/// An element of the BN254 scalar field F_p,
/// p = 21888242871839275222246405745257275088548364400416034343698204186575808495617
/// (the field of circom, circomlib and iden3). Immutable, 32 bytes, allocation-free.
/// </summary>
/// <remarks>
/// Stored in Montgomery form (x·2^256 mod p) as four little-endian 64-bit limbs, always fully reduced,
/// so equality is limb equality. Values that come from outside (bytes, decimal text) must already be
/// canonical (&lt; p): they are rejected with <see cref="FieldFormatException"/>, never silently reduced,
/// because two encodings of one element would let two different proofs claim the same leaf.
/// </remarks>
[SkipLocalsInit]
public readonly struct Fr : IEquatable<Fr>, IComparable<Fr>
{
    /// <summary>Size of the canonical byte encoding.</summary>
    public const int ByteLength = 32;

    // p, little-endian limbs.
    internal const ulong P0 = 0x43e1f593f0000001UL;
    internal const ulong P1 = 0x2833e84879b97091UL;
    internal const ulong P2 = 0xb85045b68181585dUL;
    internal const ulong P3 = 0x30644e72e131a029UL;

    // -p^-1 mod 2^64, the Montgomery reduction factor.
    internal const ulong PInvNeg = 0xc2e1f593efffffffUL;

    // R^2 mod p with R = 2^256: multiplying a canonical value by it (Montgomery product) enters Montgomery form.
    private const ulong R2_0 = 0x1bb8e645ae216da7UL;
    private const ulong R2_1 = 0x53fe3ab1e35c59e3UL;
    private const ulong R2_2 = 0x8c49833d53bb8085UL;
    private const ulong R2_3 = 0x0216d0b17f4e44a5UL;

    // R mod p: the Montgomery form of one.
    private const ulong R0 = 0xac96341c4ffffffbUL;
    private const ulong R1 = 0x36fc76959f60cd29UL;
    private const ulong R2 = 0x666ea36f7879462eUL;
    private const ulong R3 = 0x0e0a77c19a07df2fUL;

    /// <summary>The modulus p.</summary>
    public static readonly BigInteger Modulus = BigInteger.Parse(
        "21888242871839275222246405745257275088548364400416034343698204186575808495617", CultureInfo.InvariantCulture);

    internal readonly ulong L0, L1, L2, L3;

    /// <summary>Builds an element directly from Montgomery limbs (internal: the limbs must be &lt; p).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Fr(ulong l0, ulong l1, ulong l2, ulong l3)
    {
        L0 = l0; L1 = l1; L2 = l2; L3 = l3;
    }

    /// <summary>0.</summary>
    public static Fr Zero => default;

    /// <summary>1.</summary>
    public static Fr One => new(R0, R1, R2, R3);

    /// <summary>True for the zero element.</summary>
    public bool IsZero => (L0 | L1 | L2 | L3) == 0;

    /// <summary>The element with the given small value.</summary>
    public static Fr FromUInt64(ulong value) => FromCanonicalLimbs(value, 0, 0, 0);

    private static Fr FromCanonicalLimbs(ulong c0, ulong c1, ulong c2, ulong c3)
    {
        MontMul(c0, c1, c2, c3, R2_0, R2_1, R2_2, R2_3, out var r);
        return r;
    }

    /// <summary>The element whose canonical value is c mod p, for c below 2p (internal: batch hashing).</summary>
    internal static Fr FromLimbsBelowTwoP(ulong c0, ulong c1, ulong c2, ulong c3)
    {
        var r = ReduceOnce(c0, c1, c2, c3);
        return FromCanonicalLimbs(r.L0, r.L1, r.L2, r.L3);
    }

    private void ToCanonicalLimbs(out ulong c0, out ulong c1, out ulong c2, out ulong c3)
    {
        MontMul(L0, L1, L2, L3, 1, 0, 0, 0, out var r);
        c0 = r.L0; c1 = r.L1; c2 = r.L2; c3 = r.L3;
    }

    private static bool IsCanonical(ulong c0, ulong c1, ulong c2, ulong c3)
    {
        // c < p, compared from the most significant limb down.
        if (c3 != P3) return c3 < P3;
        if (c2 != P2) return c2 < P2;
        if (c1 != P1) return c1 < P1;
        return c0 < P0;
    }

    // ---------------------------------------------------------------- conversions

    /// <summary>Reads a canonical 32-byte big-endian encoding.</summary>
    /// <exception cref="FieldFormatException">The span is not 32 bytes or the value is ≥ p.</exception>
    public static Fr FromBytesBigEndian(ReadOnlySpan<byte> bytes)
    {
        if (!TryFromBytesBigEndian(bytes, out var r))
            throw new FieldFormatException(bytes.Length != ByteLength
                ? $"A field element is {ByteLength} bytes; got {bytes.Length}."
                : "The value is not below the BN254 scalar field modulus.");
        return r;
    }

    /// <summary>Reads a canonical 32-byte little-endian encoding.</summary>
    /// <exception cref="FieldFormatException">The span is not 32 bytes or the value is ≥ p.</exception>
    public static Fr FromBytesLittleEndian(ReadOnlySpan<byte> bytes)
    {
        if (!TryFromBytesLittleEndian(bytes, out var r))
            throw new FieldFormatException(bytes.Length != ByteLength
                ? $"A field element is {ByteLength} bytes; got {bytes.Length}."
                : "The value is not below the BN254 scalar field modulus.");
        return r;
    }

    /// <summary>Reads a canonical 32-byte big-endian encoding; false if it is not exactly that.</summary>
    public static bool TryFromBytesBigEndian(ReadOnlySpan<byte> bytes, out Fr value)
    {
        value = default;
        if (bytes.Length != ByteLength) return false;
        ulong c3 = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        ulong c2 = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        ulong c1 = BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]);
        ulong c0 = BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]);
        if (!IsCanonical(c0, c1, c2, c3)) return false;
        value = FromCanonicalLimbs(c0, c1, c2, c3);
        return true;
    }

    /// <summary>Reads a canonical 32-byte little-endian encoding; false if it is not exactly that.</summary>
    public static bool TryFromBytesLittleEndian(ReadOnlySpan<byte> bytes, out Fr value)
    {
        value = default;
        if (bytes.Length != ByteLength) return false;
        ulong c0 = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        ulong c1 = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        ulong c2 = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]);
        ulong c3 = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]);
        if (!IsCanonical(c0, c1, c2, c3)) return false;
        value = FromCanonicalLimbs(c0, c1, c2, c3);
        return true;
    }

    /// <summary>Writes the canonical value as 32 bytes big-endian.</summary>
    public void WriteBigEndian(Span<byte> destination)
    {
        if (destination.Length < ByteLength) throw new ArgumentException($"Need {ByteLength} bytes.", nameof(destination));
        ToCanonicalLimbs(out var c0, out var c1, out var c2, out var c3);
        BinaryPrimitives.WriteUInt64BigEndian(destination, c3);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], c2);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], c1);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], c0);
    }

    /// <summary>Writes the canonical value as 32 bytes little-endian.</summary>
    public void WriteLittleEndian(Span<byte> destination)
    {
        if (destination.Length < ByteLength) throw new ArgumentException($"Need {ByteLength} bytes.", nameof(destination));
        ToCanonicalLimbs(out var c0, out var c1, out var c2, out var c3);
        BinaryPrimitives.WriteUInt64LittleEndian(destination, c0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], c1);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], c2);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], c3);
    }

    /// <summary>The canonical value as 32 bytes big-endian.</summary>
    public byte[] ToBytesBigEndian()
    {
        var b = new byte[ByteLength];
        WriteBigEndian(b);
        return b;
    }

    /// <summary>Converts a non-negative integer below p.</summary>
    /// <exception cref="FieldFormatException">The integer is negative or ≥ p.</exception>
    public static Fr FromBigInteger(BigInteger value)
    {
        if (value.Sign < 0 || value >= Modulus)
            throw new FieldFormatException("The value is not in [0, p) of the BN254 scalar field.");
        Span<byte> le = stackalloc byte[ByteLength];
        le.Clear();
        value.TryWriteBytes(le, out _, isUnsigned: true, isBigEndian: false);
        return FromBytesLittleEndian(le);
    }

    /// <summary>The canonical value as an integer in [0, p).</summary>
    public BigInteger ToBigInteger()
    {
        Span<byte> le = stackalloc byte[ByteLength];
        WriteLittleEndian(le);
        return new BigInteger(le, isUnsigned: true, isBigEndian: false);
    }

    /// <summary>
    /// Parses canonical decimal text: ASCII digits only, no sign, no whitespace, no leading zeros
    /// (except "0" itself), value below p.
    /// </summary>
    /// <exception cref="FieldFormatException">The text is not such a number.</exception>
    public static Fr Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out var r, out var error)) throw new FieldFormatException(error);
        return r;
    }

    /// <summary>Parses canonical decimal text (see <see cref="Parse"/>); false if it is not canonical.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Fr value) => TryParse(text, out value, out _);

    private static bool TryParse(ReadOnlySpan<char> text, out Fr value, out string error)
    {
        value = default;
        if (text.IsEmpty) { error = "Empty number."; return false; }
        if (text.Length > 77) { error = "The number has more digits than any element of the BN254 scalar field."; return false; }
        foreach (var ch in text)
        {
            if (ch < '0' || ch > '9') { error = $"'{text}' is not a decimal number (only digits 0-9 are allowed)."; return false; }
        }
        if (text.Length > 1 && text[0] == '0') { error = $"'{text}' has leading zeros; numbers must be canonical."; return false; }
        var big = BigInteger.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        if (big >= Modulus) { error = $"{text} is not below the BN254 scalar field modulus p."; return false; }
        value = FromBigInteger(big);
        error = "";
        return true;
    }

    /// <summary>The canonical decimal representation.</summary>
    public override string ToString() => ToBigInteger().ToString(CultureInfo.InvariantCulture);

    /// <summary>The canonical value as 0x-prefixed, 64-digit lower-case hex.</summary>
    public string ToHex()
    {
        Span<byte> be = stackalloc byte[ByteLength];
        WriteBigEndian(be);
        return "0x" + Convert.ToHexStringLower(be);
    }

    /// <summary>Bit <paramref name="index"/> (0 = least significant) of the canonical value.</summary>
    public bool Bit(int index)
    {
        if ((uint)index >= 256) throw new ArgumentOutOfRangeException(nameof(index));
        ToCanonicalLimbs(out var c0, out var c1, out var c2, out var c3);
        ulong limb = (index >> 6) switch { 0 => c0, 1 => c1, 2 => c2, _ => c3 };
        return ((limb >> (index & 63)) & 1) != 0;
    }

    /// <summary>The four little-endian limbs of the canonical value (bit i of the value is bit i%64 of limb i/64).</summary>
    public void GetCanonicalLimbs(Span<ulong> destination)
    {
        if (destination.Length < 4) throw new ArgumentException("Need 4 limbs.", nameof(destination));
        ToCanonicalLimbs(out destination[0], out destination[1], out destination[2], out destination[3]);
    }

    // ---------------------------------------------------------------- arithmetic

    /// <summary>a + b mod p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Fr operator +(in Fr a, in Fr b)
    {
        // a, b < p < 2^254, so the 256-bit sum cannot overflow.
        ulong carry = 0;
        ulong s0 = AddCarry(a.L0, b.L0, ref carry);
        ulong s1 = AddCarry(a.L1, b.L1, ref carry);
        ulong s2 = AddCarry(a.L2, b.L2, ref carry);
        ulong s3 = a.L3 + b.L3 + carry;
        return ReduceOnce(s0, s1, s2, s3);
    }

    /// <summary>a − b mod p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Fr operator -(in Fr a, in Fr b)
    {
        ulong borrow = 0;
        ulong d0 = SubBorrow(a.L0, b.L0, ref borrow);
        ulong d1 = SubBorrow(a.L1, b.L1, ref borrow);
        ulong d2 = SubBorrow(a.L2, b.L2, ref borrow);
        ulong d3 = SubBorrow(a.L3, b.L3, ref borrow);
        // On borrow, add p back (mask is all ones or zero: no data-dependent branch).
        ulong mask = 0UL - borrow;
        ulong carry = 0;
        d0 = AddCarry(d0, P0 & mask, ref carry);
        d1 = AddCarry(d1, P1 & mask, ref carry);
        d2 = AddCarry(d2, P2 & mask, ref carry);
        d3 = d3 + (P3 & mask) + carry;
        return new Fr(d0, d1, d2, d3);
    }

    /// <summary>−a mod p.</summary>
    public static Fr operator -(in Fr a) => Zero - a;

    /// <summary>a · b mod p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Fr operator *(in Fr a, in Fr b)
    {
        MontMul(a.L0, a.L1, a.L2, a.L3, b.L0, b.L1, b.L2, b.L3, out var r);
        return r;
    }

    /// <summary>a == b.</summary>
    public static bool operator ==(in Fr a, in Fr b) => a.Equals(b);

    /// <summary>a != b.</summary>
    public static bool operator !=(in Fr a, in Fr b) => !a.Equals(b);

    /// <summary>this².</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Fr Square()
    {
        MontMul(L0, L1, L2, L3, L0, L1, L2, L3, out var r);
        return r;
    }

    /// <summary>this⁵, the Poseidon S-box.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Fr Pow5()
    {
        var x2 = Square();
        var x4 = x2.Square();
        return x4 * this;
    }

    /// <summary>this^exponent (exponent as a non-negative integer).</summary>
    public Fr Pow(BigInteger exponent)
    {
        if (exponent.Sign < 0) throw new ArgumentOutOfRangeException(nameof(exponent), "Use Inverse() for negative exponents.");
        var result = One;
        var b = this;
        long bits = (long)exponent.GetBitLength();
        for (long i = 0; i < bits; i++)
        {
            if (!(exponent >> (int)i).IsEven) result *= b;
            b = b.Square();
        }
        return result;
    }

    /// <summary>this^exponent.</summary>
    public Fr Pow(ulong exponent)
    {
        var result = One;
        var b = this;
        while (exponent != 0)
        {
            if ((exponent & 1) != 0) result *= b;
            b = b.Square();
            exponent >>= 1;
        }
        return result;
    }

    /// <summary>The multiplicative inverse (Fermat: this^(p−2)).</summary>
    /// <exception cref="DivideByZeroException">This is zero.</exception>
    public Fr Inverse()
    {
        if (IsZero) throw new DivideByZeroException("Zero has no inverse in F_p.");
        return Pow(Modulus - 2);
    }

    /// <inheritdoc />
    public bool Equals(Fr other) => L0 == other.L0 && L1 == other.L1 && L2 == other.L2 && L3 == other.L3;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Fr other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(L0, L1, L2, L3);

    /// <summary>Orders by canonical value.</summary>
    public int CompareTo(Fr other)
    {
        ToCanonicalLimbs(out var a0, out var a1, out var a2, out var a3);
        other.ToCanonicalLimbs(out var b0, out var b1, out var b2, out var b3);
        if (a3 != b3) return a3.CompareTo(b3);
        if (a2 != b2) return a2.CompareTo(b2);
        if (a1 != b1) return a1.CompareTo(b1);
        return a0.CompareTo(b0);
    }

    // ---------------------------------------------------------------- limb primitives

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddCarry(ulong a, ulong b, ref ulong carry)
    {
        ulong s = a + b + carry;
        carry = ((a & b) | ((a | b) & ~s)) >> 63;
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong SubBorrow(ulong a, ulong b, ref ulong borrow)
    {
        ulong d = a - b - borrow;
        borrow = ((~a & b) | (~(a ^ b) & d)) >> 63;
        return d;
    }

    /// <summary>Subtracts p once if the value (known &lt; 2p) is ≥ p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Fr ReduceOnce(ulong s0, ulong s1, ulong s2, ulong s3)
    {
        ulong borrow = 0;
        ulong d0 = SubBorrow(s0, P0, ref borrow);
        ulong d1 = SubBorrow(s1, P1, ref borrow);
        ulong d2 = SubBorrow(s2, P2, ref borrow);
        ulong d3 = SubBorrow(s3, P3, ref borrow);
        // borrow == 1 means s < p: keep s.
        ulong keep = 0UL - borrow;
        return new Fr((s0 & keep) | (d0 & ~keep), (s1 & keep) | (d1 & ~keep), (s2 & keep) | (d2 & ~keep), (s3 & keep) | (d3 & ~keep));
    }

    // High half of a*b. MULX's high-only form keeps everything in registers; the two-output form
    // (Math.BigMul with an `out` low half) makes the JIT spill every partial product to the stack.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MulHigh(ulong a, ulong b) =>
        Bmi2.X64.IsSupported ? Bmi2.X64.MultiplyNoFlags(a, b) : Math.BigMul(a, b, out _);

    // hi:lo = a*b + c; returns hi.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Madd1(ulong a, ulong b, ulong c, out ulong lo)
    {
        ulong hi = MulHigh(a, b);
        ulong l = a * b + c;
        lo = l;
        return hi + (l < c ? 1UL : 0UL);
    }

    // hi:lo = a*b + c + d; returns hi (cannot overflow 128 bits).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Madd2(ulong a, ulong b, ulong c, ulong d, out ulong lo)
    {
        ulong hi = MulHigh(a, b);
        c += d;
        hi += c < d ? 1UL : 0UL;
        ulong l = a * b + c;
        lo = l;
        return hi + (l < c ? 1UL : 0UL);
    }

    /// <summary>
    /// Σ aᵢ·bᵢ mod p with one Montgomery reduction per group of up to 5 products: the products are summed
    /// as 512-bit integers and reduced once (a sum of k products of values &lt; p stays below p·2²⁵⁶ — the
    /// bound REDC needs — while k·p &lt; 2²⁵⁶, i.e. k ≤ 5). Used by Poseidon's matrix rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // see MontMul
    internal static Fr Dot(ReadOnlySpan<Fr> a, ReadOnlySpan<Fr> b)
    {
        var result = Zero;
        for (int start = 0; start < a.Length; start += 5)
        {
            int end = Math.Min(a.Length, start + 5);
            ulong w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0;
            for (int i = start; i < end; i++)
                MulAddWide(in a[i], in b[i], ref w0, ref w1, ref w2, ref w3, ref w4, ref w5, ref w6, ref w7);
            result += ReduceWide(w0, w1, w2, w3, w4, w5, w6, w7);
        }
        return result;
    }

    /// <summary>w += x·y over 512 bits (no reduction; the caller bounds the sum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MulAddWide(in Fr x, in Fr y, ref ulong w0, ref ulong w1, ref ulong w2, ref ulong w3,
        ref ulong w4, ref ulong w5, ref ulong w6, ref ulong w7)
    {
        ulong a0 = x.L0, a1 = x.L1, a2 = x.L2, a3 = x.L3;
        ulong r0, r1, r2, r3, r4, r5, r6, r7, c;
        // Schoolbook product into r0..r7, row by row.
        c = Madd1(a0, y.L0, 0, out r0);
        c = Madd1(a1, y.L0, c, out r1);
        c = Madd1(a2, y.L0, c, out r2);
        r4 = Madd1(a3, y.L0, c, out r3);

        c = Madd1(a0, y.L1, r1, out r1);
        c = Madd2(a1, y.L1, r2, c, out r2);
        c = Madd2(a2, y.L1, r3, c, out r3);
        r5 = Madd2(a3, y.L1, r4, c, out r4);

        c = Madd1(a0, y.L2, r2, out r2);
        c = Madd2(a1, y.L2, r3, c, out r3);
        c = Madd2(a2, y.L2, r4, c, out r4);
        r6 = Madd2(a3, y.L2, r5, c, out r5);

        c = Madd1(a0, y.L3, r3, out r3);
        c = Madd2(a1, y.L3, r4, c, out r4);
        c = Madd2(a2, y.L3, r5, c, out r5);
        r7 = Madd2(a3, y.L3, r6, c, out r6);

        c = 0;
        w0 = AddCarry(w0, r0, ref c);
        w1 = AddCarry(w1, r1, ref c);
        w2 = AddCarry(w2, r2, ref c);
        w3 = AddCarry(w3, r3, ref c);
        w4 = AddCarry(w4, r4, ref c);
        w5 = AddCarry(w5, r5, ref c);
        w6 = AddCarry(w6, r6, ref c);
        w7 = w7 + r7 + c;
    }

    /// <summary>Montgomery reduction of a 512-bit value below p·2²⁵⁶: returns w·2⁻²⁵⁶ mod p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Fr ReduceWide(ulong w0, ulong w1, ulong w2, ulong w3, ulong w4, ulong w5, ulong w6, ulong w7)
    {
        // Each step clears the lowest limb by adding m·p; the carry out of the top of that 4-limb window
        // is kept in `hi` and added one limb further up in the next step (the sum never exceeds 2p·2²⁵⁶ < 2⁵¹²).
        ulong m, c, hi = 0;

        m = w0 * PInvNeg;
        c = Madd1(m, P0, w0, out _);
        c = Madd2(m, P1, w1, c, out w1);
        c = Madd2(m, P2, w2, c, out w2);
        c = Madd2(m, P3, w3, c, out w3);
        w4 = AddCarry(w4, c, ref hi);

        m = w1 * PInvNeg;
        c = Madd1(m, P0, w1, out _);
        c = Madd2(m, P1, w2, c, out w2);
        c = Madd2(m, P2, w3, c, out w3);
        c = Madd2(m, P3, w4, c, out w4);
        w5 = AddCarry(w5, c, ref hi); // hi is the carry in from the previous step and becomes the carry out

        m = w2 * PInvNeg;
        c = Madd1(m, P0, w2, out _);
        c = Madd2(m, P1, w3, c, out w3);
        c = Madd2(m, P2, w4, c, out w4);
        c = Madd2(m, P3, w5, c, out w5);
        w6 = AddCarry(w6, c, ref hi); // hi is the carry in from the previous step and becomes the carry out

        m = w3 * PInvNeg;
        c = Madd1(m, P0, w3, out _);
        c = Madd2(m, P1, w4, c, out w4);
        c = Madd2(m, P2, w5, c, out w5);
        c = Madd2(m, P3, w6, c, out w6);
        w7 = w7 + c + hi;

        return ReduceOnce(w4, w5, w6, w7);
    }

    /// <summary>
    /// Montgomery product a·b·2^-256 mod p: CIOS with the "no final carry" shortcut that holds because
    /// p's top limb is below 2^63 − 1 (as used by gnark-crypto for this field).
    /// </summary>
    /// <remarks>
    /// Not inlined, and optimised at its first call: its 32 multiply-adds are inlined only while the method being compiled
    /// has inline budget left. Inlined three times into <see cref="Pow5"/> it ran out, so some multiply-adds stayed
    /// calls to their unoptimised first-tier code, which on a busy core the tiering thread replaced only after seconds:
    /// Poseidon one-by-one ran at 0.6× of the same code compiled optimised from the start (measured with
    /// <c>DOTNET_TieredCompilation=0</c>, pinned to one core). The silo, which turns quick JIT off, did not see it.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void MontMul(ulong a0, ulong a1, ulong a2, ulong a3, ulong b0, ulong b1, ulong b2, ulong b3, out Fr r)
    {
        ulong t0, t1, t2, t3, A, C, m;

        // i = 0
        A = Madd1(a0, b0, 0, out t0);
        m = t0 * PInvNeg;
        C = Madd1(m, P0, t0, out _);
        A = Madd1(a1, b0, A, out t1);
        C = Madd2(m, P1, t1, C, out t0);
        A = Madd1(a2, b0, A, out t2);
        C = Madd2(m, P2, t2, C, out t1);
        A = Madd1(a3, b0, A, out t3);
        C = Madd2(m, P3, t3, C, out t2);
        t3 = C + A;

        // i = 1
        A = Madd1(a0, b1, t0, out t0);
        m = t0 * PInvNeg;
        C = Madd1(m, P0, t0, out _);
        A = Madd2(a1, b1, t1, A, out t1);
        C = Madd2(m, P1, t1, C, out t0);
        A = Madd2(a2, b1, t2, A, out t2);
        C = Madd2(m, P2, t2, C, out t1);
        A = Madd2(a3, b1, t3, A, out t3);
        C = Madd2(m, P3, t3, C, out t2);
        t3 = C + A;

        // i = 2
        A = Madd1(a0, b2, t0, out t0);
        m = t0 * PInvNeg;
        C = Madd1(m, P0, t0, out _);
        A = Madd2(a1, b2, t1, A, out t1);
        C = Madd2(m, P1, t1, C, out t0);
        A = Madd2(a2, b2, t2, A, out t2);
        C = Madd2(m, P2, t2, C, out t1);
        A = Madd2(a3, b2, t3, A, out t3);
        C = Madd2(m, P3, t3, C, out t2);
        t3 = C + A;

        // i = 3
        A = Madd1(a0, b3, t0, out t0);
        m = t0 * PInvNeg;
        C = Madd1(m, P0, t0, out _);
        A = Madd2(a1, b3, t1, A, out t1);
        C = Madd2(m, P1, t1, C, out t0);
        A = Madd2(a2, b3, t2, A, out t2);
        C = Madd2(m, P2, t2, C, out t1);
        A = Madd2(a3, b3, t3, A, out t3);
        C = Madd2(m, P3, t3, C, out t2);
        t3 = C + A;

        r = ReduceOnce(t0, t1, t2, t3);
    }
}

/// <summary>A field element given from outside is malformed or not canonical (e.g. ≥ p, wrong length, leading zeros).</summary>
public sealed class FieldFormatException : FormatException
{
    /// <summary>Creates the exception with a message that says what was wrong.</summary>
    public FieldFormatException(string message) : base(message) { }
}
