using System.Diagnostics;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Cli.Bench;

/// <summary>The measurement behind <c>grid bench poseidon</c>.</summary>
internal static class PoseidonBenchmark
{
    /// <summary>The outcome: <paramref name="Hashes"/> Poseidon calls of <paramref name="Inputs"/> inputs in <paramref name="Elapsed"/>.</summary>
    public sealed record Result(int Inputs, bool Batched, long Hashes, TimeSpan Elapsed)
    {
        public double HashesPerSecond => Hashes / Elapsed.TotalSeconds;
    }

    /// <summary>Hashes for about <paramref name="duration"/> on one thread, after a short warm-up.</summary>
    public static Result Run(int inputs, TimeSpan duration, bool batched, CancellationToken ct)
    {
        if (batched) return RunBatched(inputs, duration, ct);
        var state = new Fr[inputs];
        for (int i = 0; i < inputs; i++) state[i] = Fr.FromUInt64((ulong)i + 1);

        // Warm-up: lets the tiered JIT settle on optimised code before the clock starts. Time-based, because
        // on one busy core the background re-compilation can take far longer than a fixed count of calls.
        var warmUp = Stopwatch.StartNew();
        var warmUpFor = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, duration.Ticks));
        while (warmUp.Elapsed < warmUpFor) Chain(state, 64);

        const int Round = 256;
        long hashes = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            Chain(state, Round);
            hashes += Round;
            ct.ThrowIfCancellationRequested();
        } while (clock.Elapsed < duration);
        return new Result(inputs, false, hashes, clock.Elapsed);
    }

    /// <summary>Blocks of <see cref="Block"/> independent hashes through <see cref="PoseidonHash.HashMany"/>; outputs feed the next block's inputs.</summary>
    private static Result RunBatched(int inputs, TimeSpan duration, CancellationToken ct)
    {
        const int Block = 1024;
        var input = new Fr[Block * inputs];
        var output = new Fr[Block];
        for (int i = 0; i < input.Length; i++) input[i] = Fr.FromUInt64((ulong)i + 1);

        void Step()
        {
            PoseidonHash.HashMany(input, inputs, output);
            for (int i = 0; i < Block; i++) input[i * inputs] = output[i];
        }

        var warmUp = Stopwatch.StartNew();
        var warmUpFor = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, duration.Ticks));
        while (warmUp.Elapsed < warmUpFor) Step();

        long hashes = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            Step();
            hashes += Block;
            ct.ThrowIfCancellationRequested();
        } while (clock.Elapsed < duration);
        return new Result(inputs, true, hashes, clock.Elapsed);
    }

    // Each output feeds the next input, so no call can be skipped or hoisted.
    private static void Chain(Fr[] state, int count)
    {
        for (int i = 0; i < count; i++) state[0] = PoseidonHash.Hash(state);
    }
}
