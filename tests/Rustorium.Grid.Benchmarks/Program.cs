using BenchmarkDotNet.Running;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// Micro-benchmarks of the verifiable core. Run all with
/// <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- --filter '*'</c>
/// or one class with e.g. <c>--filter '*Poseidon*'</c>. The grid-level figures against circomlibjs come from
/// <c>tests/crosscheck/compare-speed.sh</c>. <c>-- reactivate [keys] [directory]</c> runs <see cref="ShardReactivation"/> and
/// <c>-- store-compare [rounds]</c> <see cref="StoreComparison"/> and <c>-- node-layout [keysPerShard] [updated] [rounds]</c>
/// <see cref="NodeLayoutComparison"/> instead.
/// </summary>
public static class Program
{
    public static async Task Main(string[] args)
    {
        if (args is ["reactivate", ..])
        {
            await ShardReactivation.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000,
                args.Length > 2 ? args[2] : null);
            return;
        }
        if (args is ["store-compare", ..])
        {
            await StoreComparison.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 60);
            return;
        }
        if (args is ["node-layout", ..])
        {
            int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
            NodeLayoutComparison.Run(Arg(1, 125_000), Arg(2, 4_700), Arg(3, 4));
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
