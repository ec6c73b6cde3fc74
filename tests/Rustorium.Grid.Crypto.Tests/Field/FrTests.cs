using System.Globalization;
using System.Numerics;
using FsCheck;
using FsCheck.Fluent;

namespace Rustorium.Grid.Crypto.Tests.Field;

public sealed class FrTests
{
    private static readonly BigInteger P = Fr.Modulus;

    /// <summary>Random field elements as BigIntegers, biased toward the edges (0, 1, p-1, p-2, powers of two).</summary>
    private static Arbitrary<BigInteger> Elements()
    {
        var edges = Gen.Elements(BigInteger.Zero, BigInteger.One, P - 1, P - 2, BigInteger.Pow(2, 64) - 1, BigInteger.Pow(2, 253), (P - 1) / 2);
        var random = Gen.ArrayOf(Gen.Choose(0, 255), 32).Select(bytes =>
            new BigInteger(bytes.Select(b => (byte)b).ToArray(), isUnsigned: true) % P);
        return Gen.Frequency((1, edges), (4, random)).ToArbitrary();
    }

    private static readonly Config Quick = Config.QuickThrowOnFailure.WithMaxTest(500);

    [Fact]
    public void ModulusAndMontgomeryConstantsAreConsistent()
    {
        Assert.Equal(P, new BigInteger(Fr.P0) + (new BigInteger(Fr.P1) << 64) + (new BigInteger(Fr.P2) << 128) + (new BigInteger(Fr.P3) << 192));
        Assert.Equal(ulong.MaxValue, unchecked(Fr.P0 * Fr.PInvNeg)); // p·(−p⁻¹) ≡ −1 mod 2^64
        Assert.Equal(BigInteger.One, Fr.One.ToBigInteger());
        Assert.Equal(BigInteger.Zero, Fr.Zero.ToBigInteger());
        Assert.True(Fr.Zero.IsZero);
        Assert.False(Fr.One.IsZero);
    }

    [Fact]
    public void ArithmeticMatchesBigIntegerModP()
    {
        Prop.ForAll(Elements(), Elements(), (a, b) =>
        {
            var x = Fr.FromBigInteger(a);
            var y = Fr.FromBigInteger(b);
            return (x + y).ToBigInteger() == (a + b) % P
                && (x - y).ToBigInteger() == ((a - b) % P + P) % P
                && (x * y).ToBigInteger() == a * b % P
                && x.Square().ToBigInteger() == a * a % P
                && x.Pow5().ToBigInteger() == BigInteger.ModPow(a, 5, P)
                && (-x).ToBigInteger() == (P - a) % P;
        }).Check(Quick);
    }

    [Fact]
    public void InverseAndPow()
    {
        Prop.ForAll(Elements(), a =>
        {
            var x = Fr.FromBigInteger(a);
            if (a.IsZero) return true;
            return (x * x.Inverse()) == Fr.One
                && x.Pow(12345UL).ToBigInteger() == BigInteger.ModPow(a, 12345, P)
                && x.Pow(P - 1) == Fr.One;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(100));
        Assert.Throws<DivideByZeroException>(() => Fr.Zero.Inverse());
    }

    [Fact]
    public void ByteEncodingsRoundTripAndAgreeWithBigInteger()
    {
        Prop.ForAll(Elements(), a =>
        {
            var x = Fr.FromBigInteger(a);
            var be = x.ToBytesBigEndian();
            Span<byte> le = stackalloc byte[32];
            x.WriteLittleEndian(le);
            var fromBe = new BigInteger(be, isUnsigned: true, isBigEndian: true);
            var fromLe = new BigInteger(le, isUnsigned: true, isBigEndian: false);
            return fromBe == a && fromLe == a
                && Fr.FromBytesBigEndian(be) == x
                && Fr.FromBytesLittleEndian(le) == x
                && Fr.Parse(x.ToString()) == x
                && x.ToString() == a.ToString(CultureInfo.InvariantCulture);
        }).Check(Quick);
    }

    [Fact]
    public void ValuesAtOrAboveModulusAreRejectedNotReduced()
    {
        foreach (var v in new[] { P, P + 1, BigInteger.Pow(2, 256) - 1 })
        {
            var be = new byte[32];
            v.TryWriteBytes(be, out _, isUnsigned: true, isBigEndian: true);
            Assert.Throws<FieldFormatException>(() => Fr.FromBytesBigEndian(be));
            Assert.False(Fr.TryFromBytesBigEndian(be, out _));
            var le = be.Reverse().ToArray();
            Assert.Throws<FieldFormatException>(() => Fr.FromBytesLittleEndian(le));
            Assert.Throws<FieldFormatException>(() => Fr.Parse(v.ToString(CultureInfo.InvariantCulture)));
            Assert.Throws<FieldFormatException>(() => Fr.FromBigInteger(v));
        }
        Assert.Throws<FieldFormatException>(() => Fr.FromBigInteger(BigInteger.MinusOne));
        Assert.Equal(P - 1, Fr.Parse((P - 1).ToString(CultureInfo.InvariantCulture)).ToBigInteger());
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("01")]
    [InlineData("00")]
    [InlineData("0x10")]
    [InlineData("1e3")]
    [InlineData("1.0")]
    [InlineData("１")] // full-width digit
    [InlineData("21888242871839275222246405745257275088548364400416034343698204186575808495617")] // p
    [InlineData("999999999999999999999999999999999999999999999999999999999999999999999999999999999")]
    public void NonCanonicalDecimalIsRejectedWithAClearMessage(string text)
    {
        var ex = Assert.Throws<FieldFormatException>(() => Fr.Parse(text));
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
        Assert.False(Fr.TryParse(text, out _));
    }

    [Fact]
    public void WrongLengthBytesAreRejected()
    {
        Assert.Throws<FieldFormatException>(() => Fr.FromBytesBigEndian(new byte[31]));
        Assert.Throws<FieldFormatException>(() => Fr.FromBytesBigEndian(new byte[33]));
        Assert.Throws<FieldFormatException>(() => Fr.FromBytesLittleEndian(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void BitsAreThoseOfTheCanonicalValue()
    {
        Prop.ForAll(Elements(), a =>
        {
            var x = Fr.FromBigInteger(a);
            for (int i = 0; i < 256; i++)
                if (x.Bit(i) != !((a >> i) & 1).IsZero) return false;
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(100));
    }

    [Fact]
    public void OrderingAndEqualityFollowCanonicalValue()
    {
        Prop.ForAll(Elements(), Elements(), (a, b) =>
        {
            var x = Fr.FromBigInteger(a);
            var y = Fr.FromBigInteger(b);
            return Math.Sign(x.CompareTo(y)) == a.CompareTo(b)
                && (x == y) == (a == b)
                && (x.GetHashCode() == y.GetHashCode() || a != b);
        }).Check(Quick);
    }
}

public sealed class FrDotTests
{
    [Fact]
    public void DotEqualsSumOfProductsForEveryLengthIncludingExtremes()
    {
        var rng = new Random(5);
        var buf = new byte[32];
        var pMinus1 = Fr.FromBigInteger(Fr.Modulus - 1);
        for (int n = 1; n <= 17; n++)
        {
            for (int trial = 0; trial < 20; trial++)
            {
                var a = new Fr[n];
                var b = new Fr[n];
                for (int i = 0; i < n; i++)
                {
                    // Trial 0: every value p-1 (the largest sum REDC must take); otherwise random.
                    if (trial == 0) { a[i] = pMinus1; b[i] = pMinus1; continue; }
                    rng.NextBytes(buf); buf[31] &= 0x1f; a[i] = Fr.FromBytesLittleEndian(buf);
                    rng.NextBytes(buf); buf[31] &= 0x1f; b[i] = Fr.FromBytesLittleEndian(buf);
                }
                var expected = Fr.Zero;
                for (int i = 0; i < n; i++) expected += a[i] * b[i];
                Assert.Equal(expected, Fr.Dot(a, b));
            }
        }
    }
}
