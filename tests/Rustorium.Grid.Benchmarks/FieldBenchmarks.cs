using BenchmarkDotNet.Attributes;
using Rustorium.Grid.Crypto;

namespace Rustorium.Grid.Benchmarks;

/// <summary>Field operations in a dependent chain (latency), 1,000 per invocation.</summary>
[MemoryDiagnoser]
public class FieldBenchmarks
{
    private const int Ops = 1000;
    private Fr _a, _b;

    [GlobalSetup]
    public void Setup()
    {
        _a = Fr.Parse("12345678901234567890123456789012345678901234567890123456789012345678901234");
        _b = Fr.Parse("9876543210987654321098765432109876543210987654321098765432109876543210987");
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public Fr Mul()
    {
        var x = _a;
        for (int i = 0; i < Ops; i++) x *= _b;
        return x;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public Fr Add()
    {
        var x = _a;
        for (int i = 0; i < Ops; i++) x += _b;
        return x;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public Fr Square()
    {
        var x = _a;
        for (int i = 0; i < Ops; i++) x = x.Square();
        return x;
    }

    [Benchmark]
    public Fr Inverse() => _a.Inverse();
}
