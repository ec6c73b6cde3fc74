using BenchmarkDotNet.Running;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// Micro-benchmarks of the verifiable core. Run all with
/// <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- --filter '*'</c>
/// or one class with e.g. <c>--filter '*Poseidon*'</c>. The grid-level figures against circomlibjs come from
/// <c>tests/crosscheck/compare-speed.sh</c>.
/// </summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
