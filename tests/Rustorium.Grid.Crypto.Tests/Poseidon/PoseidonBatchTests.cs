using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Crypto.Tests.Poseidon;

public sealed class PoseidonBatchTests
{
    private static Fr[] RandomElements(Random rng, int n, bool extremes)
    {
        var pMinus1 = Fr.FromBigInteger(Fr.Modulus - 1);
        var buf = new byte[32];
        var r = new Fr[n];
        for (int i = 0; i < n; i++)
        {
            if (extremes && i % 3 == 0) { r[i] = pMinus1; continue; }
            if (extremes && i % 3 == 1) { r[i] = Fr.Zero; continue; }
            rng.NextBytes(buf);
            buf[31] &= 0x1f;
            r[i] = Fr.FromBytesLittleEndian(buf);
        }
        return r;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(16)]
    public void HashManyEqualsOneByOne(int arity)
    {
        var rng = new Random(arity);
        foreach (int count in new[] { 1, 2, 7, 8, 9, 17 })
        {
            foreach (bool extremes in new[] { false, true })
            {
                var inputs = RandomElements(rng, count * arity, extremes);
                var outputs = new Fr[count];
                PoseidonHash.HashMany(inputs, arity, outputs);
                for (int i = 0; i < count; i++)
                    Assert.Equal(PoseidonHash.Hash(inputs.AsSpan(i * arity, arity)), outputs[i]);
            }
        }
    }

    [Fact]
    public void HashManyRejectsMismatchedSpans()
    {
        Assert.Throws<ArgumentException>(() => PoseidonHash.HashMany(new Fr[5], 2, new Fr[3]));
        Assert.Throws<ArgumentException>(() => PoseidonHash.HashMany(new Fr[17], 17, new Fr[1]));
    }

    [Fact]
    public void LaneArithmeticMatchesScalarNearTheModulus()
    {
        if (!FieldLanes.IsSupported) return; // the scalar path is what runs there, and is tested everywhere
        var rng = new Random(3);
        for (int trial = 0; trial < 50; trial++)
        {
            var a = RandomElements(rng, 8, trial % 2 == 0);
            var b = RandomElements(rng, 8, trial % 3 == 0);
            Lanes la = default, lb = default;
            FieldLanes.Load(a, ref la);
            FieldLanes.Load(b, ref lb);
            FieldLanes.Mul(la, lb, out var prod);
            FieldLanes.Add(la, lb, out var sum);
            var p = new Fr[8];
            var s = new Fr[8];
            FieldLanes.Store(prod, p);
            FieldLanes.Store(sum, s);
            for (int i = 0; i < 8; i++)
            {
                Assert.Equal(a[i] * b[i], p[i]);
                Assert.Equal(a[i] + b[i], s[i]);
            }
        }
    }
}
