using System.Text.Json;
using Rustorium.Grid.Cli.Bench;

namespace Rustorium.Grid.Cli.Tests;

public sealed class LoadBenchCommandTests(SiloFixture silo) : IClassFixture<SiloFixture>
{
    [Fact]
    public async Task Mixed_load_against_a_real_silo_reports_positive_rates_and_latencies()
    {
        var result = await Cli.RunAsync("bench", "load", "--endpoint", silo.Endpoint, "--duration", "2", "--concurrency", "8",
            "--read-ratio", "0.5", "--keys", "1000", "--sync", "Async", "--json");

        Assert.True(result.ExitCode == 0, result + "\n--- silo ---\n" + silo.Silo.Output);
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.True(root.GetProperty("opsPerSecond").GetDouble() > 0);
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        Assert.Equal("Async", root.GetProperty("sync").GetString());
        Assert.Equal(128, root.GetProperty("readBatch").GetInt32());
        foreach (var kind in new[] { "writes", "reads" })
        {
            var ops = root.GetProperty(kind);
            Assert.True(ops.GetProperty("ops").GetInt64() > 0, kind);
            Assert.True(ops.GetProperty("opsPerSecond").GetDouble() > 0, kind);
            double p50 = ops.GetProperty("p50Ms").GetDouble(), p99 = ops.GetProperty("p99Ms").GetDouble(), p999 = ops.GetProperty("p999Ms").GetDouble();
            Assert.True(p50 > 0 && p50 <= p99 && p99 <= p999 && p999 <= ops.GetProperty("maxMs").GetDouble(), $"{kind}: {ops}");
        }
        // The load generator's own CPU time is always measured; the silos' only with --status.
        var cpu = root.GetProperty("cpu");
        Assert.True(cpu.GetProperty("clientSeconds").GetDouble() > 0, cpu.ToString());
        Assert.True(cpu.GetProperty("clientMicrosecondsPerOp").GetDouble() > 0, cpu.ToString());
        Assert.Equal(JsonValueKind.Null, cpu.GetProperty("silosSeconds").ValueKind);
        Assert.Equal(JsonValueKind.Null, cpu.GetProperty("silosMicrosecondsPerOp").ValueKind);
        // Progress once a second; when exactly the tick lands depends on the machine's load, so check its shape.
        Assert.Matches(@"load: \d+\.\d s", result.Err);
    }

    [Fact]
    public async Task Proof_writes_only_text_output()
    {
        var result = await Cli.RunAsync("bench", "load", "--endpoint", silo.Endpoint, "--duration", "1", "--concurrency", "4", "--proof", "--keys", "50", "--preload");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("writes:", result.Out);
        Assert.DoesNotContain("reads:", result.Out);
        Assert.Contains("p99.9", result.Out);
        Assert.Contains("preload: 50 keys written", result.Err);
    }

    [Fact]
    public async Task With_status_urls_the_run_reports_what_the_silos_store_committed_during_it()
    {
        var result = await Cli.RunAsync("bench", "load", "--endpoint", silo.Endpoint, "--duration", "1", "--concurrency", "4",
            "--keys", "100000", "--sync", "Full", "--json", "--status", silo.Silo.StatusUrl);

        Assert.True(result.ExitCode == 0, result + "\n--- silo ---\n" + silo.Silo.Output);
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        long writes = root.GetProperty("writes").GetProperty("ops").GetInt64();
        var store = root.GetProperty("store");
        Assert.Equal(1, store.GetProperty("silos").GetInt32());
        // Every acknowledged write was committed between the two readings; a group keeps one row per key, and the
        // workers' last calls may land after the count stopped.
        long rows = store.GetProperty("rowsWritten").GetInt64();
        Assert.InRange(rows, 1, writes + 4);
        long commits = store.GetProperty("dataCommits").GetInt64();
        Assert.InRange(commits, 1, rows);
        Assert.InRange(store.GetProperty("transactions").GetInt64(), 1, commits + store.GetProperty("treeCommits").GetInt64() + 1000);
        Assert.True(store.GetProperty("syncSeconds").GetDouble() > 0);
        Assert.True(store.GetProperty("rowsPerTransaction").GetDouble() > 0);
        // The silo's process did the work of those writes between the two readings: its CPU time per op is the
        // difference of its process.cpuSeconds over the ops.
        var cpu = root.GetProperty("cpu");
        double silosSeconds = cpu.GetProperty("silosSeconds").GetDouble();
        Assert.True(silosSeconds > 0, cpu.ToString());
        double perOp = silosSeconds * 1e6 / root.GetProperty("ops").GetInt64();   // silosSeconds is rounded to the ms
        Assert.InRange(cpu.GetProperty("silosMicrosecondsPerOp").GetDouble(), perOp * 0.99 - 0.1, perOp * 1.01 + 0.1);

        var text = await Cli.RunAsync("bench", "load", "--endpoint", silo.Endpoint, "--duration", "0.5", "--concurrency", "2", "--status", silo.Silo.StatusUrl);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Matches(@"store:  [\d,]+ rows in [\d,]+ commits", text.Out);
        Assert.Matches(@"cpu:    client \d+\.\d µs an op \(\d\.\d\d cores\); silos \d+\.\d µs an op", text.Out);
    }

    [Fact]
    public async Task A_status_url_that_cannot_be_read_is_unavailable_and_one_that_is_no_status_is_bad_input()
    {
        var dead = await Cli.RunAsync("bench", "load", "--endpoint", silo.Endpoint, "--duration", "0.5", "--status", "http://127.0.0.1:1/status");
        Assert.True(dead.ExitCode == 4, dead.ToString());
        Assert.Contains("http://127.0.0.1:1/status", dead.Err);

        var health = silo.Silo.StatusUrl.Replace("/status", "/health");
        var wrong = await Cli.RunAsync("bench", "load", "--endpoint", silo.Endpoint, "--duration", "0.5", "--status", health);
        Assert.True(wrong.ExitCode == 2, wrong.ToString());
        Assert.Contains("not a silo's status", wrong.Err);
    }

    [Theory]
    [InlineData("--status", "not-a-url")]
    [InlineData("--status", "ftp://127.0.0.1/status")]
    [InlineData("--concurrency", "0")]
    [InlineData("--duration", "0")]
    [InlineData("--duration", "x")]
    [InlineData("--read-ratio", "1.5")]
    [InlineData("--read-ratio", "-0.1")]
    [InlineData("--key-size", "0")]
    [InlineData("--key-size", "2000")]
    [InlineData("--value-size", "-1")]
    [InlineData("--keys", "0")]
    [InlineData("--sync", "Sometimes")]
    [InlineData("--read-batch", "0")]
    [InlineData("--read-batch", "10001")]
    public async Task Bad_options_exit_2_with_the_option_named(string option, string value)
    {
        var result = await Cli.RunAsync("bench", "load", "--endpoint", "127.0.0.1:1", option, value);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("grid: error:", result.Err);
        if (option != "--sync") Assert.Contains(option, result.Err);
    }

    [Fact]
    public async Task Key_space_larger_than_the_key_size_and_sync_with_proof_are_refused()
    {
        var small = await Cli.RunAsync("bench", "load", "--endpoint", "127.0.0.1:1", "--key-size", "1", "--keys", "300");
        var proof = await Cli.RunAsync("bench", "load", "--endpoint", "127.0.0.1:1", "--proof", "--sync", "None");

        Assert.Equal(2, small.ExitCode);
        Assert.Contains("--key-size 1", small.Err);
        Assert.Equal(2, proof.ExitCode);
        Assert.Contains("--proof", proof.Err);
    }

    [Fact]
    public async Task No_silo_is_unavailable()
    {
        var result = await Cli.RunAsync("bench", "load", "--endpoint", "127.0.0.1:1", "--duration", "0.1");
        Assert.True(result.ExitCode == 4, result.ToString());
    }

    [Fact]
    public void Keys_are_distinct_and_spread_over_the_first_byte()
    {
        var keys = LoadBenchmark.BuildKeys(16, 1000);
        Assert.Equal(1000, keys.Select(Convert.ToHexString).Distinct().Count());
        Assert.All(keys, k => Assert.Equal(16, k.Length));
        Assert.True(keys.Select(k => k[0]).Distinct().Count() > 200);
        var tiny = LoadBenchmark.BuildKeys(1, 256);
        Assert.Equal(256, tiny.Select(k => k[0]).Distinct().Count());
    }

    [Fact]
    public void Histogram_quantiles_are_within_two_percent()
    {
        var h = new LatencyHistogram();
        for (int i = 1; i <= 100_000; i++) h.Record(i);
        Assert.InRange(h.QuantileMicros(0.5), 49_000, 51_000);
        Assert.InRange(h.QuantileMicros(0.99), 97_000, 101_000);
        Assert.Equal(100_000, h.MaxMicros);
        for (long v = 0; v < 1L << 40; v = v * 3 / 2 + 1) Assert.InRange(LatencyHistogram.IndexOf(v), 0, int.MaxValue);
    }
}
