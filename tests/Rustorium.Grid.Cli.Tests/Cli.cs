using System.Text;

namespace Rustorium.Grid.Cli.Tests;

/// <summary>What one in-process run of <c>grid</c> produced.</summary>
internal sealed record CliResult(int ExitCode, string Out, string Err)
{
    public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Err}";
}

/// <summary>Runs <c>grid</c> in-process through <see cref="GridCommandLine.RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/>.</summary>
internal static class Cli
{
    /// <summary>No single command in these tests should come near this; it bounds a hung run.</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    public static async Task<CliResult> RunAsync(params string[] args)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await GridCommandLine.RunAsync(args, stdout, stderr, deadline.Token);
        return new CliResult(exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs with <paramref name="stdin"/> (UTF-8) as standard input.</summary>
    public static async Task<CliResult> RunWithStdinAsync(string stdin, params string[] args)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var console = new GridConsole(() => new MemoryStream(Encoding.UTF8.GetBytes(stdin)), stdout, stderr, errorIsTerminal: false);
        int exit = await GridCommandLine.RunAsync(args, console, deadline.Token);
        return new CliResult(exit, stdout.ToString(), stderr.ToString());
    }
}

/// <summary>A directory of files for one test, deleted afterwards.</summary>
internal sealed class TempFiles : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("grid-cli-tests-").FullName;

    public string PathOf(string name) => Path.Combine(_directory, name);

    public string Write(string name, string content)
    {
        var path = PathOf(name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    public string Write(string name, byte[] content)
    {
        var path = PathOf(name);
        File.WriteAllBytes(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
