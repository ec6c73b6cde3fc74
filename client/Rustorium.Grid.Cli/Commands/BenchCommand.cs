using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Rustorium.Grid.Cli.Bench;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Cli.Commands;

/// <summary><c>grid bench</c>: quick single-thread throughput figures for the crypto, for humans or (with --json) scripts.</summary>
internal static class BenchCommand
{
    public static Command Create(GridConsole console)
    {
        var bench = new GridCommand("bench", "Measure the crypto on this machine: Poseidon hashes/s, sparse Merkle tree inserts/s, proof size and verification time.")
        {
            Details = """
                Figures are single-threaded, after a warm-up, on this machine as it is (close other work for stable
                numbers). Progress goes to stderr; results to stdout, as text or with --json as one JSON object.
                For careful micro-benchmarks use tests/Rustorium.Grid.Benchmarks (BenchmarkDotNet).
                """,
            Examples = ["grid bench poseidon --seconds 5", "grid bench smt --leaves 100000 --batch 1000 --json"],
        };
        bench.Subcommands.Add(CreatePoseidon(console));
        bench.Subcommands.Add(CreateSmt(console));
        return bench;
    }

    private static Command CreatePoseidon(GridConsole console)
    {
        var seconds = new Option<double>("--seconds")
        {
            Description = "How long to hash, in seconds (fractions allowed).",
            HelpName = "N",
            DefaultValueFactory = _ => 3,
        }.Positive();
        var inputs = new Option<int>("--inputs")
        {
            Description = $"Inputs per hash, {PoseidonHash.MinInputs} to {PoseidonHash.MaxInputs} (2 is the tree's node hash, 3 its leaf hash).",
            HelpName = "K",
            DefaultValueFactory = _ => 2,
        }.InRange(PoseidonHash.MinInputs, PoseidonHash.MaxInputs);
        var batched = new Option<bool>("--batched")
        {
            Description = "Hash independent inputs 1,024 at a time (PoseidonHash.HashMany: eight lanes at once with AVX-512), as the tree's batch updates do.",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout: {\"hashesPerSecond\", \"inputs\", \"batched\", \"hashes\", \"seconds\"}." };

        var command = new GridCommand("poseidon", "Poseidon hashes per second on one thread.")
        {
            Details = "Chains hashes (each output is the next call's first input) for the given time after a warm-up; with --batched, hashes blocks of independent inputs instead.",
            Examples = ["grid bench poseidon --seconds 5 --inputs 3", "grid bench poseidon --batched --json | jq .hashesPerSecond"],
            ExitCodes = [(ExitCode.Ok, "measured"), (ExitCode.BadInput, "an option out of range")],
        };
        command.Options.Add(seconds);
        command.Options.Add(inputs);
        command.Options.Add(batched);
        command.Options.Add(json);
        command.SetAction((parse, ct) =>
        {
            var result = PoseidonBenchmark.Run(parse.GetValue(inputs), TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(batched), ct);
            if (parse.GetValue(json))
            {
                console.Out.WriteLine(Json(w =>
                {
                    w.WriteNumber("hashesPerSecond", Math.Round(result.HashesPerSecond, 1));
                    w.WriteNumber("inputs", result.Inputs);
                    w.WriteBoolean("batched", result.Batched);
                    w.WriteNumber("hashes", result.Hashes);
                    w.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
                }));
            }
            else
            {
                console.Out.WriteLine(Invariant(
                    $"Poseidon, {result.Inputs} input(s){(result.Batched ? ", batched" : "")}: {result.HashesPerSecond:N0} hashes/s ({result.Hashes:N0} hashes in {result.Elapsed.TotalSeconds:F2} s, one thread)"));
            }
            return Task.FromResult((int)ExitCode.Ok);
        });
        return command;
    }

    private static Command CreateSmt(GridConsole console)
    {
        var leaves = new Option<int>("--leaves")
        {
            Description = "Leaves the tree gets before measuring (filled with ApplyBatch).",
            HelpName = "N",
            DefaultValueFactory = _ => SmtBenchmark.DefaultLeaves,
        }.InRange(1);
        var inserts = new Option<int>("--inserts")
        {
            Description = "Timed single inserts into the filled tree.",
            HelpName = "M",
            DefaultValueFactory = _ => SmtBenchmark.DefaultInserts,
        }.InRange(1);
        var batch = new Option<int?>("--batch")
        {
            Description = "Also time M more inserts applied in batches of B with ApplyBatch (reported as batchInsertsPerSecond).",
            HelpName = "B",
        }.InRange(1);
        var json = new Option<bool>("--json")
        {
            Description = "Print one JSON object on stdout (leaves, insertsPerSecond, batchInsertsPerSecond, proofBytes, verifyMicroseconds, ...).",
        };

        var command = new GridCommand("smt", "Sparse Merkle tree inserts per second, proof size and proof verification time.")
        {
            Details = $"""
                1. fills an empty tree with N random leaves (fixed seed, so runs are comparable) using ApplyBatch in
                   batches of {SmtBenchmark.FillBatch:N0}; the fill of the default {SmtBenchmark.DefaultLeaves:N0} leaves takes a while, so
                   progress is shown on stderr (a live bar on a terminal, a line every {BenchProgress.PlainInterval.TotalSeconds:F0} s otherwise);
                2. times M single Insert calls of new random keys (insertsPerSecond);
                3. with --batch B, times M more new keys inserted through ApplyBatch, B per call (batchInsertsPerSecond);
                4. proves up to {SmtBenchmark.MaxSampledProofs:N0} keys spread over the tree, reporting the mean size of the compact
                   encoding (proofBytes) and the mean time of Verify (verifyMicroseconds) and Prove (proveMicroseconds).
                JSON fields: leaves, fillSeconds, inserts, insertsPerSecond, batch and batchInsertsPerSecond (null
                without --batch), proofs, proofBytes, proveMicroseconds, verifyMicroseconds.
                """,
            Examples = ["grid bench smt", "grid bench smt --leaves 100000 --inserts 5000 --batch 500 --json"],
            ExitCodes = [(ExitCode.Ok, "measured"), (ExitCode.BadInput, "an option out of range (zero or negative)")],
        };
        command.Options.Add(leaves);
        command.Options.Add(inserts);
        command.Options.Add(batch);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            var result = await SmtBenchmark.RunAsync(
                console, parse.GetValue(leaves), parse.GetValue(inserts), parse.GetValue(batch), ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                console.Out.WriteLine(Json(w =>
                {
                    w.WriteNumber("leaves", result.Leaves);
                    w.WriteNumber("fillSeconds", Math.Round(result.Fill.TotalSeconds, 3));
                    w.WriteNumber("inserts", result.Inserts);
                    w.WriteNumber("insertsPerSecond", Math.Round(result.InsertsPerSecond, 1));
                    if (result.Batch is { } b) w.WriteNumber("batch", b); else w.WriteNull("batch");
                    if (result.BatchInsertsPerSecond is { } bips) w.WriteNumber("batchInsertsPerSecond", Math.Round(bips, 1));
                    else w.WriteNull("batchInsertsPerSecond");
                    w.WriteNumber("proofs", result.Proofs);
                    w.WriteNumber("proofBytes", Math.Round(result.ProofBytes, 1));
                    w.WriteNumber("proveMicroseconds", Math.Round(result.ProveMicroseconds, 2));
                    w.WriteNumber("verifyMicroseconds", Math.Round(result.VerifyMicroseconds, 2));
                }));
            }
            else
            {
                var o = console.Out;
                o.WriteLine(Invariant($"tree:           {result.Leaves:N0} leaves, filled in {result.Fill.TotalSeconds:F2} s ({result.Leaves / result.Fill.TotalSeconds:N0} leaves/s with ApplyBatch)"));
                o.WriteLine(Invariant($"single inserts: {result.InsertsPerSecond:N0} inserts/s ({result.Inserts:N0} inserts)"));
                if (result.BatchInsertsPerSecond is { } bips)
                    o.WriteLine(Invariant($"batch inserts:  {bips:N0} inserts/s ({result.Inserts:N0} inserts, {result.Batch:N0} per ApplyBatch)"));
                o.WriteLine(Invariant($"proofs:         {result.ProofBytes:N1} bytes encoded on average, prove {result.ProveMicroseconds:N1} µs, verify {result.VerifyMicroseconds:N1} µs ({result.Proofs:N0} proofs)"));
            }
            return (int)ExitCode.Ok;
        });
        return command;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string Json(Action<Utf8JsonWriter> writeProperties)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writeProperties(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
