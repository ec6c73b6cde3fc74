using System.Diagnostics;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Bench;

/// <summary>The measurement behind <c>grid bench smt</c> (see that command's help for the phases).</summary>
internal static class SmtBenchmark
{
    public const int DefaultLeaves = 1_000_000;
    public const int DefaultInserts = 10_000;

    /// <summary>Changes per ApplyBatch call while filling (also the progress granularity).</summary>
    public const int FillBatch = 10_000;

    /// <summary>Most proofs sampled for proofBytes / verifyMicroseconds.</summary>
    public const int MaxSampledProofs = 1_000;

    /// <summary>Keys and values come from this seed, so every run builds the same tree.</summary>
    private const int Seed = 0x5EED_0001;

    public sealed record Result(
        int Leaves,
        TimeSpan Fill,
        int Inserts,
        double InsertsPerSecond,
        int? Batch,
        double? BatchInsertsPerSecond,
        int Proofs,
        double ProofBytes,
        double ProveMicroseconds,
        double VerifyMicroseconds);

    public static async Task<Result> RunAsync(GridConsole console, int leaves, int inserts, int? batch, CancellationToken ct)
    {
        var random = new Random(Seed);
        var tree = new SparseMerkleTree();

        // Every (leaves / sample)-th filled key is proved at the end: proofs spread over the whole tree.
        int proofs = Math.Min(MaxSampledProofs, leaves);
        int stride = leaves / proofs;
        var sampled = new Fr[proofs];

        var fill = Stopwatch.StartNew();
        await BenchProgress.RunAsync(console, "filling the tree", leaves, report =>
        {
            var changes = new SmtChange[Math.Min(FillBatch, leaves)];
            int done = 0;
            while (done < leaves)
            {
                int n = Math.Min(changes.Length, leaves - done);
                for (int i = 0; i < n; i++)
                {
                    var key = RandomElement(random);
                    int index = done + i;
                    if (index % stride == 0 && index / stride < proofs) sampled[index / stride] = key;
                    changes[i] = SmtChange.Insert(key, RandomElement(random));
                }
                tree.ApplyBatch(changes.AsSpan(0, n));
                done += n;
                report(done);
                ct.ThrowIfCancellationRequested();
            }
            return done;
        }).ConfigureAwait(false);
        fill.Stop();

        var singleKeys = RandomElements(random, inserts);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < singleKeys.Length; i++)
        {
            tree.Insert(singleKeys[i], singleKeys[i]);
            if ((i & 1023) == 0) ct.ThrowIfCancellationRequested();
        }
        double insertsPerSecond = inserts / clock.Elapsed.TotalSeconds;

        double? batchInsertsPerSecond = null;
        if (batch is { } size)
        {
            var changes = RandomElements(random, inserts).Select(k => SmtChange.Insert(k, k)).ToArray();
            clock.Restart();
            for (int start = 0; start < changes.Length; start += size)
            {
                tree.ApplyBatch(changes.AsSpan(start, Math.Min(size, changes.Length - start)));
                ct.ThrowIfCancellationRequested();
            }
            batchInsertsPerSecond = inserts / clock.Elapsed.TotalSeconds;
        }

        long proofBytes = 0;
        TimeSpan prove = default, verify = default;
        foreach (var key in sampled)
        {
            clock.Restart();
            var proof = tree.Prove(key);
            prove += clock.Elapsed;
            proofBytes += proof.Encode().Length;
            clock.Restart();
            bool valid = proof.Verify();
            verify += clock.Elapsed;
            if (!valid) throw new InvalidOperationException($"The proof of key {key} does not verify.");
        }

        return new Result(
            leaves, fill.Elapsed, inserts, insertsPerSecond, batch, batchInsertsPerSecond, proofs,
            (double)proofBytes / proofs,
            prove.TotalMicroseconds / proofs,
            verify.TotalMicroseconds / proofs);
    }

    private static Fr[] RandomElements(Random random, int count)
    {
        var elements = new Fr[count];
        for (int i = 0; i < count; i++) elements[i] = RandomElement(random);
        return elements;
    }

    // 31 random bytes: uniform below 2^248 < p. Collisions among a few million are a ~2^-200 event.
    private static Fr RandomElement(Random random)
    {
        Span<byte> bytes = stackalloc byte[Fr.ByteLength];
        random.NextBytes(bytes[..31]);
        bytes[31] = 0;
        return Fr.FromBytesLittleEndian(bytes);
    }
}
