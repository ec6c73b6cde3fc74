using System.Text;

namespace Rustorium.Grid.Cli;

internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        // Console.Out flushes on every write; commands such as `smt replay` print millions of lines, so stdout
        // gets a large buffer instead (GridCommandLine flushes it before any error message and at the end).
        await using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16)
        {
            AutoFlush = false,
        };

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // First Ctrl+C: cancel gracefully (exit code 130). A second one kills the process as usual.
            if (cancel.IsCancellationRequested) return;
            e.Cancel = true;
            cancel.Cancel();
        };

        return await GridCommandLine.RunAsync(args, GridConsole.ForProcess(stdout, Console.Error), cancel.Token);
    }
}
