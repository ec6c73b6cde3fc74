using BenchmarkDotNet.Attributes;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// Poseidon per width (n inputs, t = n + 1), the optimised permutation against the textbook one (the
/// baseline measured in the same run), and the bytes-to-field mapping for a 16-byte key and a 100-byte value.
/// </summary>
[MemoryDiagnoser]
public class PoseidonBenchmarks
{
    private Fr[] _inputs = [];
    private readonly byte[] _key = new byte[16];
    private readonly byte[] _value = new byte[100];

    [Params(1, 2, 3, 4, 8, 16)]
    public int Inputs { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _inputs = new Fr[Inputs];
        for (int i = 0; i < Inputs; i++) _inputs[i] = Fr.FromUInt64((ulong)rng.NextInt64());
        rng.NextBytes(_key);
        rng.NextBytes(_value);
    }

    [Benchmark(Baseline = true)]
    public Fr Textbook() => PoseidonReference.Hash(_inputs);

    [Benchmark]
    public Fr Optimised() => PoseidonHash.Hash(_inputs);
}

/// <summary>The bytes-to-field mapping for typical key and value sizes.</summary>
[MemoryDiagnoser]
public class PoseidonBytesBenchmarks
{
    private byte[] _data = [];

    [Params(16, 100, 1024)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Length];
        new Random(7).NextBytes(_data);
    }

    [Benchmark]
    public Fr Hash() => PoseidonBytes.Hash(_data);
}
