using System.Numerics;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Crypto.Tests.Poseidon;

public sealed class PoseidonBytesTests
{
    /// <summary>The definition of PoseidonBytes written out independently with BigInteger.</summary>
    private static Fr Spec(byte[] data)
    {
        var elements = new List<Fr> { Fr.FromUInt64((ulong)data.Length) };
        for (int o = 0; o < data.Length; o += 31)
        {
            var chunk = new byte[31];
            Array.Copy(data, o, chunk, 0, Math.Min(31, data.Length - o));
            elements.Add(Fr.FromBigInteger(new BigInteger(chunk, isUnsigned: true, isBigEndian: true)));
        }
        var h = PoseidonHash.Hash(elements.Take(16).ToArray());
        for (int i = 16; i < elements.Count; i += 15)
            h = PoseidonHash.Hash(new[] { h }.Concat(elements.Skip(i).Take(15)).ToArray());
        return h;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(30)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(100)]
    [InlineData(465)]
    [InlineData(466)]
    [InlineData(930)]
    [InlineData(931)]
    [InlineData(4096)]
    public void MatchesTheWrittenDefinition(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        Assert.Equal(Spec(data), PoseidonBytes.Hash(data));
    }

    [Fact]
    public void EmptyStringIsPoseidonOfZeroLength()
    {
        Assert.Equal(PoseidonHash.Hash(Fr.Zero), PoseidonBytes.Hash([]));
    }

    [Fact]
    public void TrailingZerosAndLengthAreDistinguished()
    {
        // Same chunk value after padding, different lengths: must differ.
        Assert.NotEqual(PoseidonBytes.Hash([1]), PoseidonBytes.Hash([1, 0]));
        Assert.NotEqual(PoseidonBytes.Hash([]), PoseidonBytes.Hash([0]));
        Assert.NotEqual(PoseidonBytes.Hash(new byte[31]), PoseidonBytes.Hash(new byte[32]));
    }
}

public sealed class PoseidonBytesManyTests
{
    [Fact]
    public void HashManyEqualsHashForMixedLengthsIncludingMultiBlock()
    {
        var rng = new Random(99);
        int[] lengths = [0, 1, 16, 16, 16, 30, 31, 32, 62, 100, 100, 100, 100, 100, 100, 100, 100, 100, 465, 466, 1000, 16, 5];
        var items = lengths.Select(n => { var b = new byte[n]; rng.NextBytes(b); return b; }).ToArray();
        var output = new Fr[items.Length];
        PoseidonBytes.HashMany(items, output);
        for (int i = 0; i < items.Length; i++) Assert.Equal(PoseidonBytes.Hash(items[i]), output[i]);
    }

    [Fact]
    public void HashManyRejectsAShortOutputAndNullItems()
    {
        Assert.Throws<ArgumentException>(() => PoseidonBytes.HashMany([new byte[1], new byte[2]], new Fr[1]));
        Assert.Throws<ArgumentException>(() => PoseidonBytes.HashMany([null!], new Fr[1]));
    }
}
