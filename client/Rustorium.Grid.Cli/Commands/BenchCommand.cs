using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Rustorium.Grid.Cli.Bench;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Client;
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
            Examples = ["grid bench poseidon --seconds 5", "grid bench smt --leaves 100000 --batch 1000 --json", "grid bench load --endpoint 127.0.0.1:7400 --duration 10"],
        };
        bench.Subcommands.Add(CreatePoseidon(console));
        bench.Subcommands.Add(CreateSmt(console));
        bench.Subcommands.Add(CreateLoad(console));
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
                console.Out.WriteLine(JsonText.Object(w =>
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
                console.Out.WriteLine(JsonText.Object(w =>
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

    private static Command CreateLoad(GridConsole console)
    {
        var endpoint = new Option<string[]>("--endpoint")
        {
            Description = "Silo endpoint(s), host:port with a numeric IP. Default 127.0.0.1:7400 (or $RGRID_ENDPOINT).",
            HelpName = "host:port",
            AllowMultipleArgumentsPerToken = true,
        };
        var concurrency = new Option<int>("--concurrency") { Description = "Concurrent workers (async, over one GridClient).", HelpName = "N", DefaultValueFactory = _ => 64 }.InRange(1, 100_000);
        var duration = new Option<double>("--duration") { Description = "Seconds to run (fractions allowed).", HelpName = "S", DefaultValueFactory = _ => 10 }.Positive();
        var readRatio = new Option<double>("--read-ratio") { Description = "Share of operations that are reads, 0 to 1 (0: writes only).", HelpName = "R", DefaultValueFactory = _ => 0 };
        readRatio.CustomParser = result =>
        {
            var token = result.Tokens.Count == 0 ? "" : result.Tokens[^1].Value;
            if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double r) && r is >= 0 and <= 1) return r;
            result.AddError($"--read-ratio must be a number from 0 to 1; got '{token}'.");
            return 0;
        };
        var limits = GridLimits.Default;
        var keySize = new Option<int>("--key-size") { Description = "Key length in bytes.", HelpName = "B", DefaultValueFactory = _ => 16 }.InRange(1, limits.MaxKeyBytes);
        var valueSize = new Option<int>("--value-size") { Description = "Value length in bytes.", HelpName = "B", DefaultValueFactory = _ => 100 }.InRange(0, limits.MaxValueBytes);
        var keys = new Option<int>("--keys") { Description = "Size of the key space the keys are drawn from (uniformly).", HelpName = "K", DefaultValueFactory = _ => 100_000 }.InRange(1, LoadBenchmark.MaxKeys);
        var sync = new Option<SyncMode?>("--sync") { Description = "Durability of the writes: Full (default), Async or None. Not with --proof (writes with proof are always Full)." };
        var proof = new Option<bool>("--proof") { Description = "Reads ask for proofs and verify them; writes are write-with-proof (durable, proof verified)." };
        var preload = new Option<bool>("--preload") { Description = "Write every key of the key space once (SyncMode.Async, untimed) before the timed run, so reads find values." };
        var readBatch = new Option<int>("--read-batch")
        {
            Description = "Most concurrent reads of a shard the client sends in one call (GridClientOptions.MaxReadBatch); 1 sends each alone, for comparison.",
            HelpName = "N",
            DefaultValueFactory = _ => new GridClientOptions().MaxReadBatch,
        }.InRange(1, 10_000);
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout (see below)." };
        var status = new Option<string[]>("--status")
        {
            Description = "Status URL(s) of the silos under load (http://host:port/status): report what their shard stores committed during the run, and their CPU time per operation.",
            HelpName = "URL",
            AllowMultipleArgumentsPerToken = true,
        };

        var command = new GridCommand("load", "Load a running grid: N concurrent workers of reads and writes for S seconds; ops/s and latency percentiles.")
        {
            Details = """
                Keys: K keys of --key-size bytes, spread evenly over the first key byte (as the silo's initial shards
                are), drawn uniformly at random; each worker writes its own random value of --value-size bytes.
                Without --proof, reads do not ask for proofs. Each worker records latencies (from the call to its
                completion, in µs, log-linear buckets: under 1.6 % error) in preallocated histograms, merged at the end.
                Progress (ops and ops/s) goes to stderr once per second. Failed calls are counted as errors, not timed.
                JSON fields: concurrency, seconds, readRatio, keys, keySize, valueSize, sync, proof, readBatch, ops,
                opsPerSecond, errors, firstError, preloadSeconds, and writes / reads objects with ops, opsPerSecond,
                meanMs, p50Ms, p99Ms, p999Ms, maxMs (latencies null when there were no such operations), and cpu:
                clientSeconds and clientMicrosecondsPerOp (this process's CPU time during the timed run, all threads),
                silosSeconds and silosMicrosecondsPerOp (the silos' processes, summed; null without --status). CPU time
                per operation is the figure to compare builds by on a busy machine: another process taking a core
                lowers ops/s far more than it changes the work each operation costs.
                With --status, each silo's GET /status is read before and after the timed run, and store (null
                without --status) holds the difference summed over them: silos, dataCommits, rowsWritten,
                treeCommits, nodesWritten, nodesDeleted, transactions, dataCommitSeconds, treeCommitSeconds,
                syncSeconds, rowsPerTransaction, nodeRowsPerRow (docs/storage.md "Statistics").
                """,
            Examples =
            [
                "grid bench load --sync Full --concurrency 64 --duration 10",
                "grid bench load --keys 10000 --preload --read-ratio 1 --json",
                "grid bench load --proof --duration 5",
                "grid bench load --keys 10000 --preload --read-ratio 1 --read-batch 1   # reads one call each, to compare",
                "grid bench load --keys 1000000 --duration 40 --status http://127.0.0.1:7480/status   # and where the store's time went",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "measured (errors, if any, are reported in the result)"),
                (ExitCode.BadInput, "an option out of range, or a key space that cannot be built"),
                (ExitCode.Unavailable, "no silo reachable"),
            ],
        };
        foreach (var option in new Option[] { endpoint, concurrency, duration, readRatio, keySize, valueSize, keys, sync, proof, preload, readBatch, json, status })
            command.Options.Add(option);

        command.SetAction(async (parse, ct) =>
        {
            bool withProof = parse.GetValue(proof);
            var syncMode = parse.GetValue(sync);
            if (withProof && syncMode is not null and not SyncMode.Full)
                throw GridCommandException.BadInput($"--proof writes are always durable (write with proof): --sync {syncMode} cannot apply.");
            if (syncMode is { } m && !Enum.IsDefined(m)) throw GridCommandException.BadInput($"--sync must be Full, Async or None; got '{m}'.");
            if (LoadBenchmark.KeySpaceProblem(parse.GetValue(keySize), parse.GetValue(keys)) is { } problem) throw GridCommandException.BadInput(problem);
            if (StoreStatusProbe.Problem(parse.GetValue(status) ?? [], out var statusUrls) is { } badUrl) throw GridCommandException.BadInput(badUrl);
            var options = new LoadOptions(
                parse.GetValue(concurrency), TimeSpan.FromSeconds(parse.GetValue(duration)), parse.GetValue(readRatio),
                parse.GetValue(keySize), parse.GetValue(valueSize), parse.GetValue(keys), syncMode ?? SyncMode.Full, withProof, parse.GetValue(preload),
                parse.GetValue(readBatch));

            return await DataCommands.ConnectAndRunAsync(parse.GetValue(endpoint), async grid =>
            {
                using var probe = statusUrls.Count > 0 ? new StoreStatusProbe(statusUrls) : null;
                StoreTotals? before = null;
                var result = await LoadBenchmark.RunAsync(console, grid, options, ct,
                    probe is null ? null : async () => before = await probe.ReadAsync(ct).ConfigureAwait(false)).ConfigureAwait(false);
                if (probe is not null && before is not null)
                    result = result with { Store = (await probe.ReadAsync(ct).ConfigureAwait(false)).Minus(before) };
                if (result.Ops == 0 && result.Errors > 0)
                    throw new GridException(GridErrorCode.Unavailable, $"every call failed ({result.Errors:N0} errors); first: {result.FirstError}");
                if (parse.GetValue(json)) console.Out.WriteLine(JsonText.Object(w => WriteLoad(w, result)));
                else WriteLoadText(console.Out, result);
                return ExitCode.Ok;
            }, ct, new GridClientOptions { MaxReadBatch = parse.GetValue(readBatch) }).ConfigureAwait(false);
        });
        return command;
    }

    private static void WriteLoad(Utf8JsonWriter w, LoadResult r)
    {
        var o = r.Options;
        w.WriteNumber("concurrency", o.Concurrency);
        w.WriteNumber("seconds", Math.Round(r.Elapsed.TotalSeconds, 3));
        w.WriteNumber("readRatio", o.ReadRatio);
        w.WriteNumber("keys", o.Keys);
        w.WriteNumber("keySize", o.KeySize);
        w.WriteNumber("valueSize", o.ValueSize);
        w.WriteString("sync", o.Proof ? "Full" : o.Sync.ToString());
        w.WriteBoolean("proof", o.Proof);
        w.WriteNumber("readBatch", o.ReadBatch);
        w.WriteNumber("ops", r.Ops);
        w.WriteNumber("opsPerSecond", Math.Round(r.OpsPerSecond, 1));
        w.WriteNumber("errors", r.Errors);
        if (r.FirstError is null) w.WriteNull("firstError"); else w.WriteString("firstError", r.FirstError);
        if (r.PreloadTime is { } p) w.WriteNumber("preloadSeconds", Math.Round(p.TotalSeconds, 3)); else w.WriteNull("preloadSeconds");
        WriteOps(w, "writes", r.Writes);
        WriteOps(w, "reads", r.Reads);
        w.WriteStartObject("cpu");
        w.WriteNumber("clientSeconds", Math.Round(r.ClientCpu.TotalSeconds, 3));
        WriteNullable(w, "clientMicrosecondsPerOp", r.ClientCpuPerOp?.TotalMicroseconds, 1);
        WriteNullable(w, "silosSeconds", r.Store?.CpuSeconds, 3);
        WriteNullable(w, "silosMicrosecondsPerOp", r.SilosCpuPerOp?.TotalMicroseconds, 1);
        w.WriteEndObject();
        if (r.Store is not { } st)
        {
            w.WriteNull("store");
            return;
        }
        w.WriteStartObject("store");
        w.WriteNumber("silos", st.Silos);
        w.WriteNumber("dataCommits", st.DataCommits);
        w.WriteNumber("rowsWritten", st.RowsWritten);
        w.WriteNumber("treeCommits", st.TreeCommits);
        w.WriteNumber("nodesWritten", st.NodesWritten);
        w.WriteNumber("nodesDeleted", st.NodesDeleted);
        w.WriteNumber("transactions", st.Transactions);
        w.WriteNumber("dataCommitSeconds", Math.Round(st.DataCommitSeconds, 3));
        w.WriteNumber("treeCommitSeconds", Math.Round(st.TreeCommitSeconds, 3));
        w.WriteNumber("syncSeconds", Math.Round(st.SyncSeconds, 3));
        if (st.RowsPerTransaction is { } rpt) w.WriteNumber("rowsPerTransaction", Math.Round(rpt, 2)); else w.WriteNull("rowsPerTransaction");
        if (st.NodeRowsPerRow is { } nrr) w.WriteNumber("nodeRowsPerRow", Math.Round(nrr, 2)); else w.WriteNull("nodeRowsPerRow");
        w.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, double? value, int decimals)
    {
        if (value is { } v) w.WriteNumber(name, Math.Round(v, decimals)); else w.WriteNull(name);
    }

    private static void WriteOps(Utf8JsonWriter w, string name, LoadOpStats s)
    {
        w.WriteStartObject(name);
        w.WriteNumber("ops", s.Ops);
        w.WriteNumber("opsPerSecond", Math.Round(s.OpsPerSecond, 1));
        foreach (var (field, value) in new[] { ("meanMs", s.MeanMs), ("p50Ms", s.P50Ms), ("p99Ms", s.P99Ms), ("p999Ms", s.P999Ms), ("maxMs", s.MaxMs) })
        {
            if (value is { } v) w.WriteNumber(field, v); else w.WriteNull(field);
        }
        w.WriteEndObject();
    }

    private static void WriteLoadText(TextWriter o, LoadResult r)
    {
        var opt = r.Options;
        o.WriteLine(Invariant($"load:   {opt.Concurrency} workers, {r.Elapsed.TotalSeconds:F2} s, read ratio {opt.ReadRatio}, {opt.Keys:N0} keys of {opt.KeySize} B, values {opt.ValueSize} B, reads batched by up to {opt.ReadBatch}, {(opt.Proof ? "with proofs (writes Full)" : $"sync {opt.Sync}")}"));
        o.WriteLine(Invariant($"total:  {r.OpsPerSecond:N0} ops/s ({r.Ops:N0} ops, {r.Errors:N0} errors)"));
        foreach (var (name, s) in new[] { ("writes", r.Writes), ("reads", r.Reads) })
        {
            if (s.Ops == 0) continue;
            o.WriteLine(Invariant($"{name + ":",-7} {s.OpsPerSecond:N0} ops/s ({s.Ops:N0}), latency ms: p50 {s.P50Ms:F3}  p99 {s.P99Ms:F3}  p99.9 {s.P999Ms:F3}  max {s.MaxMs:F3}  mean {s.MeanMs:F3}"));
        }
        if (r.Ops > 0)
        {
            double seconds = r.Elapsed.TotalSeconds;
            string silos = r.Store?.CpuSeconds is { } silosCpu
                ? Invariant($"; silos {r.SilosCpuPerOp!.Value.TotalMicroseconds:F1} µs an op ({silosCpu / seconds:F2} cores)")
                : "";
            o.WriteLine(Invariant($"cpu:    client {r.ClientCpuPerOp!.Value.TotalMicroseconds:F1} µs an op ({r.ClientCpu.TotalSeconds / seconds:F2} cores){silos}"));
        }
        if (r.Store is { } st)
        {
            o.WriteLine(Invariant($"store:  {st.RowsWritten:N0} rows in {st.DataCommits:N0} commits and {st.Transactions:N0} transactions ({st.RowsPerTransaction ?? 0:F1} rows a transaction) on {st.Silos} silo(s); {st.TreeCommits:N0} tree commits, {st.NodesWritten:N0} node rows stored and {st.NodesDeleted:N0} deleted ({st.NodeRowsPerRow ?? 0:F1} per row)"));
            o.WriteLine(Invariant($"        time in data commits {st.DataCommitSeconds:F1} s, tree commits {st.TreeCommitSeconds:F1} s, COMMIT {st.SyncSeconds:F1} s"));
        }
        if (r.FirstError is not null) o.WriteLine($"first error: {r.FirstError}");
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
