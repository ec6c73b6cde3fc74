using System.Globalization;
using System.Numerics;
using Rustorium.Grid.Crypto.Poseidon;
using Xunit.Abstractions;

namespace Rustorium.Grid.Crypto.Tests.CrossCheck;

/// <summary>Poseidon and PoseidonBytes against circomlibjs 0.1.7 on random and edge inputs.</summary>
[Collection(CircomlibjsCollection.Name)]
[Trait("Category", "CrossCheck")]
public sealed class PoseidonCrossCheckTests(CircomlibjsReference reference, ITestOutputHelper output)
{
    private const int RandomCasesPerWidth = 40;

    [Fact(Timeout = 120_000)]
    public async Task PoseidonMatchesCircomlibjsForEveryWidth()
    {
        foreach (int seed in CrossCheckSeeds.All)
        {
            var cases = PoseidonCases(new CrossCheckRandom(seed));
            var (ours, expected, timing) = await CrossCheckClock.BothAsync(
                () => reference.PoseidonAsync(cases), () => cases.Select(OursPoseidon).ToArray());
            output.WriteLine($"{CrossCheckSeeds.Describe(seed)}: {cases.Count} Poseidon cases, widths 1..16; {timing}");

            var mismatches = Enumerable.Range(0, cases.Count)
                .Where(i => ours[i] != expected[i])
                .Select(i => $"Poseidon([{string.Join(", ", cases[i])}]) (width {cases[i].Length}): ours {ours[i]}, circomlibjs {expected[i]}")
                .ToList();
            Assert.True(mismatches.Count == 0, Report(seed, mismatches, cases.Count));
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task PoseidonBytesMatchesItsDefinitionComputedWithCircomlibjs()
    {
        foreach (int seed in CrossCheckSeeds.All)
        {
            var cases = BytesCases(new CrossCheckRandom(seed));
            var (ours, expected, timing) = await CrossCheckClock.BothAsync(
                () => reference.PoseidonBytesAsync(cases), () => cases.Select(c => PoseidonBytes.Hash(c).ToString()).ToArray());
            output.WriteLine($"{CrossCheckSeeds.Describe(seed)}: {cases.Count} byte strings, lengths 0..{cases.Max(c => c.Length)}; {timing}");

            var mismatches = Enumerable.Range(0, cases.Count)
                .Where(i => ours[i] != expected[i])
                .Select(i => $"PoseidonBytes({cases[i].Length} bytes: {Abbreviate(Convert.ToHexString(cases[i]))}): ours {ours[i]}, reference {expected[i]}")
                .ToList();
            Assert.True(mismatches.Count == 0, Report(seed, mismatches, cases.Count));
        }
    }

    /// <summary>Per width: all 0, all 1, all p−1, every edge value in every position, then random mixes.</summary>
    private static List<string[]> PoseidonCases(CrossCheckRandom random)
    {
        var cases = new List<string[]>();
        for (int width = PoseidonHash.MinInputs; width <= PoseidonHash.MaxInputs; width++)
        {
            foreach (var edge in new[] { BigInteger.Zero, BigInteger.One, Fr.Modulus - 1 })
                cases.Add(Enumerable.Repeat(Decimal(edge), width).ToArray());
            foreach (var edge in CrossCheckRandom.Edges)
            {
                var inputs = Enumerable.Range(0, width).Select(_ => Decimal(random.Uniform())).ToArray();
                inputs[random.Random.Next(width)] = Decimal(edge);
                cases.Add(inputs);
            }
            for (int i = 0; i < RandomCasesPerWidth; i++)
                cases.Add(Enumerable.Range(0, width).Select(_ => Decimal(random.Element())).ToArray());
        }
        return cases;
    }

    /// <summary>
    /// Every length 0..600 (so every chunk boundary 30/31/32, … and the block boundary 465/466) with random
    /// bytes, the boundaries once more with all-0x00 and all-0xFF bytes (smallest and largest chunks), and a
    /// few lengths past the second block boundary (930/931).
    /// </summary>
    private static List<byte[]> BytesCases(CrossCheckRandom random)
    {
        var cases = new List<byte[]>();
        for (int length = 0; length <= 600; length++) cases.Add(random.Bytes(length));
        int[] boundaries = [1, 30, 31, 32, 61, 62, 63, 464, 465, 466, 495, 496, 929, 930, 931, 1000];
        foreach (int length in boundaries)
        {
            cases.Add(new byte[length]);
            cases.Add(Enumerable.Repeat((byte)0xFF, length).ToArray());
            if (length > 600) cases.Add(random.Bytes(length));
        }
        return cases;
    }

    /// <summary>Ours, through the public API a caller uses: decimal text in, decimal text out.</summary>
    private static string OursPoseidon(string[] inputs)
    {
        var elements = inputs.Select(Fr.Parse).ToArray();
        var generic = PoseidonHash.Hash(elements);
        // The fixed-width overloads are separate code paths: they must agree with the span one.
        var special = elements.Length switch
        {
            1 => PoseidonHash.Hash(elements[0]),
            2 => PoseidonHash.Hash(elements[0], elements[1]),
            3 => PoseidonHash.Hash(elements[0], elements[1], elements[2]),
            _ => generic,
        };
        return special == generic ? generic.ToString() : $"{generic} (but the {elements.Length}-input overload gives {special})";
    }

    private static string Decimal(BigInteger value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Abbreviate(string hex) => hex.Length <= 80 ? hex : $"{hex[..40]}…{hex[^40..]}";

    private static string Report(int seed, List<string> mismatches, int total) =>
        $"{CrossCheckSeeds.Describe(seed)}: {mismatches.Count} of {total} cases differ from circomlibjs 0.1.7:\n" +
        string.Join("\n", mismatches.Take(10)) + (mismatches.Count > 10 ? $"\n… and {mismatches.Count - 10} more" : "");
}
