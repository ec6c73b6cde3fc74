using System.Text.Json;

namespace Rustorium.Grid.Cli.Tests;

public sealed class BenchCommandTests
{
    [Fact]
    public async Task Poseidon_json_reports_a_positive_rate()
    {
        var result = await Cli.RunAsync("bench", "poseidon", "--seconds", "0.05", "--inputs", "3", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        Assert.True(json.RootElement.GetProperty("hashesPerSecond").GetDouble() > 0);
        Assert.Equal(3, json.RootElement.GetProperty("inputs").GetInt32());
    }

    [Fact]
    public async Task Poseidon_text_reports_hashes_per_second()
    {
        var result = await Cli.RunAsync("bench", "poseidon", "--seconds", "0.02");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("hashes/s", result.Out);
    }

    [Fact]
    public async Task Smt_json_reports_positive_numbers_and_progress_goes_to_stderr()
    {
        var result = await Cli.RunAsync("bench", "smt", "--leaves", "40", "--inserts", "8", "--batch", "3", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.Equal(40, root.GetProperty("leaves").GetInt32());
        foreach (var field in new[] { "insertsPerSecond", "batchInsertsPerSecond", "proofBytes", "verifyMicroseconds", "proveMicroseconds", "fillSeconds" })
        {
            Assert.True(root.GetProperty(field).GetDouble() > 0, $"{field} = {root.GetProperty(field)}");
        }
        Assert.Equal(3, root.GetProperty("batch").GetInt32());
        // Not a terminal: plain progress lines, never ANSI escapes.
        Assert.Contains("filling the tree: 40/40 (100%)", result.Err);
        Assert.DoesNotContain("\u001b[", result.Err);
    }

    [Fact]
    public async Task Smt_without_batch_reports_null_batch_rate_and_text_mode_works()
    {
        var json = await Cli.RunAsync("bench", "smt", "--leaves", "5", "--inserts", "2", "--json");
        var text = await Cli.RunAsync("bench", "smt", "--leaves", "5", "--inserts", "2");

        Assert.Equal(0, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("batchInsertsPerSecond").ValueKind);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("inserts/s", text.Out);
        Assert.DoesNotContain("batch inserts", text.Out);
    }

    [Theory]
    [InlineData("--seconds must be a positive number", "poseidon", "--seconds", "0")]
    [InlineData("--seconds must be a positive number", "poseidon", "--seconds", "-1")]
    [InlineData("--seconds must be a positive number", "poseidon", "--seconds", "NaN")]
    [InlineData("--inputs must be an integer from 1 to 16", "poseidon", "--inputs", "0")]
    [InlineData("--inputs must be an integer from 1 to 16", "poseidon", "--inputs", "17")]
    [InlineData("--leaves must be a positive integer", "smt", "--leaves", "0")]
    [InlineData("--leaves must be a positive integer", "smt", "--leaves", "-5")]
    [InlineData("--leaves must be a positive integer", "smt", "--leaves", "many")]
    [InlineData("--inserts must be a positive integer", "smt", "--inserts", "0")]
    [InlineData("--batch must be a positive integer", "smt", "--batch", "0")]
    [InlineData("--batch must be a positive integer", "smt", "--batch", "-2")]
    public async Task Out_of_range_options_exit_2(string fragment, params string[] args)
    {
        var result = await Cli.RunAsync(["bench", .. args]);

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains(fragment, result.Err);
        Assert.Empty(result.Out);
    }
}
