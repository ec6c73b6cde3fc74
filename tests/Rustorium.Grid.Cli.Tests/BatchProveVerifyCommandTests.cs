using System.Text.Json;

namespace Rustorium.Grid.Cli.Tests;

public sealed class BatchProveVerifyCommandTests(SiloFixture silo) : IClassFixture<SiloFixture>
{
    [Fact]
    public async Task Batch_then_prove_then_verify_offline_round_trip()
    {
        using var files = new TempFiles();
        // Keys starting with 'p' share a shard of the default 8-shard layout ([0x60, 0x80)).
        var ops = files.Write("ops.jsonl", """
            {"op":"put","key":"pk:1","value":"Ada"}

            {"op":"put","key":"pk:2","value":"Bob"}
            {"op":"delete","key":"pk:2"}
            """);
        var batch = await Cli.RunAsync("batch", ops, "--endpoint", silo.Endpoint, "--json");
        Assert.True(batch.ExitCode == 0, batch + "\n--- silo ---\n" + silo.Silo.Output);
        using (var doc = JsonDocument.Parse(batch.Out)) Assert.Equal(3, doc.RootElement.GetProperty("operations").GetInt32());

        var present = await Cli.RunAsync("prove", "pk:1", "--endpoint", silo.Endpoint);
        Assert.True(present.ExitCode == 0, present.ToString());
        using (var doc = JsonDocument.Parse(present.Out))
        {
            var r = doc.RootElement;
            Assert.Equal("706b3a31", r.GetProperty("key").GetString());
            Assert.Equal("416461", r.GetProperty("value").GetString());
            Assert.Equal(r.GetProperty("root").GetString(), r.GetProperty("proof").GetProperty("root").GetString());
            Assert.True(r.GetProperty("proof").GetProperty("exists").GetBoolean());
            Assert.True(r.GetProperty("version").GetInt64() > 0);
        }
        var presentFile = files.Write("present.json", present.Out);
        string root;
        using (var doc = JsonDocument.Parse(present.Out)) root = doc.RootElement.GetProperty("root").GetString()!;

        Assert.Equal(0, (await Cli.RunAsync("verify", presentFile)).ExitCode);
        Assert.Equal(0, (await Cli.RunAsync("verify", presentFile, "--key", "pk:1", "--value", "Ada", "--root", root)).ExitCode);
        Assert.Equal(0, (await Cli.RunAsync("verify", presentFile, "--hex", "--key", "706b3a31", "--value", "416461")).ExitCode);
        var wrongValue = await Cli.RunAsync("verify", presentFile, "--value", "Eve");
        Assert.Equal(1, wrongValue.ExitCode);
        Assert.StartsWith("invalid:", wrongValue.Out);
        Assert.Equal(1, (await Cli.RunAsync("verify", presentFile, "--absent")).ExitCode);
        Assert.Equal(1, (await Cli.RunAsync("verify", presentFile, "--key", "pk:2", "--value", "Ada")).ExitCode);
        Assert.Equal(1, (await Cli.RunAsync("verify", presentFile, "--root", "1")).ExitCode);

        // The deleted key: its absence is proved.
        var absent = await Cli.RunAsync("prove", "pk:2", "--endpoint", silo.Endpoint);
        Assert.True(absent.ExitCode == 0, absent.ToString());
        var absentFile = files.Write("absent.json", absent.Out);
        Assert.Equal(0, (await Cli.RunAsync("verify", absentFile)).ExitCode);
        Assert.Equal(0, (await Cli.RunAsync("verify", absentFile, "--absent")).ExitCode);
        Assert.Equal(1, (await Cli.RunAsync("verify", absentFile, "--value", "Bob")).ExitCode);

        // Tampering: a document whose root field disagrees with its proof, and malformed documents.
        var tampered = present.Out.Replace($"\"root\": \"{root}\",\n  \"key\"", "\"root\": \"1\",\n  \"key\"", StringComparison.Ordinal);
        Assert.NotEqual(present.Out, tampered);
        Assert.Equal(1, (await Cli.RunAsync("verify", files.Write("tampered.json", tampered))).ExitCode);
        Assert.Equal(2, (await Cli.RunAsync("verify", files.Write("bad.json", "{\"shard\": 1}"))).ExitCode);
        Assert.Equal(2, (await Cli.RunAsync("verify", files.Write("notjson.json", "nope"))).ExitCode);
        Assert.Equal(3, (await Cli.RunAsync("verify", files.PathOf("missing.json"))).ExitCode);
    }

    [Fact]
    public async Task Batch_hex_from_stdin()
    {
        var result = await Cli.RunWithStdinAsync("{\"op\":\"put\",\"key\":\"7001\",\"value\":\"00ff\"}\n", "batch", "-", "--hex", "--endpoint", silo.Endpoint);
        Assert.True(result.ExitCode == 0, result.ToString());
        var get = await Cli.RunAsync("get", "--hex", "7001", "--endpoint", silo.Endpoint);
        Assert.Equal("00ff", get.Out.Trim());
    }

    [Theory]
    [InlineData("{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\"}\nnot json\n", "2")]
    [InlineData("{\"op\":\"put\",\"key\":\"a\"}\n", "1")]
    [InlineData("\n{\"op\":\"upsert\",\"key\":\"a\",\"value\":\"1\"}\n", "2")]
    [InlineData("{\"op\":\"delete\",\"key\":\"a\",\"value\":\"1\"}\n", "1")]
    [InlineData("{\"op\":\"put\",\"key\":\"\",\"value\":\"1\"}\n", "1")]
    [InlineData("{\"op\":\"put\",\"key\":7,\"value\":\"1\"}\n", "1")]
    [InlineData("{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\",\"x\":1}\n", "1")]
    [InlineData("[1]\n", "1")]
    public async Task Bad_batch_lines_exit_2_with_the_line_number(string content, string line)
    {
        // No silo needed: the file is checked before connecting.
        var result = await Cli.RunWithStdinAsync(content, "batch", "-", "--endpoint", "127.0.0.1:1");
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"stdin:{line}:", result.Err);
    }

    [Fact]
    public async Task Batch_bad_hex_empty_file_and_keys_spanning_shards()
    {
        var hex = await Cli.RunWithStdinAsync("{\"op\":\"put\",\"key\":\"zz\",\"value\":\"00\"}\n", "batch", "-", "--hex", "--endpoint", "127.0.0.1:1");
        Assert.Equal(2, hex.ExitCode);
        Assert.Contains("stdin:1:", hex.Err);
        Assert.Equal(2, (await Cli.RunWithStdinAsync("\n\n", "batch", "-", "--endpoint", "127.0.0.1:1")).ExitCode);
        var span = await Cli.RunWithStdinAsync("{\"op\":\"put\",\"key\":\"0001\",\"value\":\"00\"}\n{\"op\":\"put\",\"key\":\"ff01\",\"value\":\"00\"}\n",
            "batch", "-", "--hex", "--endpoint", silo.Endpoint);
        Assert.True(span.ExitCode == 2, span.ToString());
        Assert.Contains("shard", span.Err);
    }
}
