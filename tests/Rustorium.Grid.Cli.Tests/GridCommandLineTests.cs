namespace Rustorium.Grid.Cli.Tests;

public sealed class GridCommandLineTests
{
    public static TheoryData<string[]> Commands => new()
    {
        Array.Empty<string>(),
        new[] { "poseidon" },
        new[] { "smt" },
        new[] { "smt", "replay" },
        new[] { "smt", "prove" },
        new[] { "smt", "verify" },
        new[] { "bench" },
        new[] { "bench", "poseidon" },
        new[] { "bench", "smt" },
        new[] { "admin" },
        new[] { "admin", "migrate" },
        new[] { "admin", "members" },
        new[] { "admin", "move" },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task Every_command_has_help_with_exit_codes_and_an_example(string[] command)
    {
        var result = await Cli.RunAsync([.. command, "--help"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Usage:", result.Out);
        Assert.Contains("Exit codes:", result.Out);
        Assert.Contains("  0  ", result.Out);
        Assert.Contains(" 70  ", result.Out);
        if (command.Length > 0) Assert.Contains("Example", result.Out);
        Assert.Empty(result.Err);
    }

    [Fact]
    public async Task Root_help_lists_every_exit_code_and_command_group()
    {
        var result = await Cli.RunAsync("--help");

        foreach (var code in Enum.GetValues<ExitCode>()) Assert.Contains($"{(int)code,3}  ", result.Out);
        foreach (var group in new[] { "poseidon", "smt", "bench", "admin" }) Assert.Contains(group, result.Out);
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("smt", "bogus")]
    [InlineData("smt")]
    [InlineData("smt", "verify", "a", "b")]
    public async Task Usage_errors_exit_2_and_point_at_help(params string[] args)
    {
        var result = await Cli.RunAsync(args);

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("grid: error:", result.Err);
        Assert.Contains("--help' for usage", result.Err);
    }

    [Fact]
    public void Exit_codes_keep_their_values()
    {
        Assert.Equal(0, (int)ExitCode.Ok);
        Assert.Equal(1, (int)ExitCode.Negative);
        Assert.Equal(2, (int)ExitCode.BadInput);
        Assert.Equal(3, (int)ExitCode.IoError);
        Assert.Equal(70, (int)ExitCode.InternalError);
        Assert.Equal(130, (int)ExitCode.Cancelled);
    }

    [Fact]
    public async Task Cancellation_exits_130()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        int exit = await GridCommandLine.RunAsync(["bench", "poseidon", "--seconds", "60"], stdout, stderr, cancelled.Token);

        Assert.Equal((int)ExitCode.Cancelled, exit);
        Assert.Contains("interrupted", stderr.ToString());
    }

    [Fact]
    public void Docs_describe_every_exit_code()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Rustorium.Grid.sln"))) directory = directory.Parent;
        Assert.NotNull(directory);
        var docs = File.ReadAllText(Path.Combine(directory.FullName, "docs", "cli.md"));

        foreach (var code in Enum.GetValues<ExitCode>()) Assert.Contains($"| {(int)code} |", docs);
    }
}
