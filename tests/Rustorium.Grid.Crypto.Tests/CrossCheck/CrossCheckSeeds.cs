using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;

namespace Rustorium.Grid.Crypto.Tests.CrossCheck;

/// <summary>
/// Every cross-check runs twice: once with a fixed seed (the same cases on every run and machine) and once
/// with a seed drawn per test run, so the cases keep changing. Failure messages name the seed; set
/// <c>GRID_CROSSCHECK_SEED</c> to replay a run seed.
/// </summary>
internal static class CrossCheckSeeds
{
    public const string SeedVariable = "GRID_CROSSCHECK_SEED";

    public const int Fixed = 20_251_121;

    public static readonly int Run = int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out int s)
        ? s
        : RandomNumberGenerator.GetInt32(int.MaxValue);

    public static IReadOnlyList<int> All { get; } = [Fixed, Run];

    public static string Describe(int seed) =>
        seed == Fixed ? $"fixed seed {seed}" : $"run seed {seed} (replay with {SeedVariable}={seed})";
}

/// <summary>Random field elements and byte strings for the cross-checks, biased toward the edges.</summary>
internal sealed class CrossCheckRandom(int seed)
{
    private static readonly BigInteger P = Fr.Modulus;

    /// <summary>Values where arithmetic, encodings or bit walks break first.</summary>
    public static readonly BigInteger[] Edges =
    [
        BigInteger.Zero, BigInteger.One, new(2), P - 1, P - 2, (P - 1) / 2, (P + 1) / 2,
        ulong.MaxValue, BigInteger.One << 64, (BigInteger.One << 248) - 1, BigInteger.One << 253, (BigInteger.One << 253) - 1,
    ];

    public Random Random { get; } = new(seed);

    /// <summary>Uniform over the field: 254 random bits, redrawn while ≥ p (p ≈ 0.76·2^254: 1.3 draws on average).</summary>
    public BigInteger Uniform()
    {
        Span<byte> bytes = stackalloc byte[32];
        while (true)
        {
            Random.NextBytes(bytes);
            bytes[31] &= 0x3F;
            var v = new BigInteger(bytes, isUnsigned: true);
            if (v < P) return v;
        }
    }

    /// <summary>An edge value one time in five, otherwise uniform.</summary>
    public BigInteger Element() => Random.Next(5) == 0 ? Edges[Random.Next(Edges.Length)] : Uniform();

    public byte[] Bytes(int length)
    {
        var bytes = new byte[length];
        Random.NextBytes(bytes);
        return bytes;
    }
}

/// <summary>Times the two sides of a cross-check, which run at the same time (node on one core, ours on the other).</summary>
internal static class CrossCheckClock
{
    /// <summary>Runs <paramref name="ours"/> on the thread pool while <paramref name="theirs"/> is in flight; returns both results and times.</summary>
    public static async Task<(TOurs Ours, TTheirs Theirs, string Timing)> BothAsync<TOurs, TTheirs>(Func<Task<TTheirs>> theirs, Func<TOurs> ours)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var theirsTask = TimedAsync(theirs(), clock);
        var oursResult = await Task.Run(() => (Result: ours(), Elapsed: clock.Elapsed));
        var theirsResult = await theirsTask;
        return (oursResult.Result, theirsResult.Result,
            $"ours {oursResult.Elapsed.TotalMilliseconds:0} ms, circomlibjs {theirsResult.Elapsed.TotalMilliseconds:0} ms");
    }

    private static async Task<(T Result, TimeSpan Elapsed)> TimedAsync<T>(Task<T> task, System.Diagnostics.Stopwatch clock)
    {
        var result = await task;
        return (result, clock.Elapsed);
    }
}
