using System.CommandLine;
using System.CommandLine.Invocation;
using Rustorium.Grid.Cli.Commands;
using Rustorium.Grid.Cli.Help;

namespace Rustorium.Grid.Cli;

/// <summary>
/// The <c>grid</c> command line: builds the command tree and runs one invocation, mapping every outcome to an
/// <see cref="ExitCode"/>. In-process callers (tests, tools) use <see cref="RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/>.
/// </summary>
public static class GridCommandLine
{
    /// <summary>
    /// Runs <c>grid</c> with <paramref name="args"/>, writing results to <paramref name="stdout"/> and messages to
    /// <paramref name="stderr"/>; standard input is the process's own. Never throws: every failure is reported on
    /// <paramref name="stderr"/> and becomes the returned exit code (see <see cref="ExitCode"/>).
    /// Both writers are flushed before returning.
    /// </summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
        => RunAsync(args, GridConsole.ForProcess(stdout, stderr), ct);

    /// <summary>As <see cref="RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/>, with every stream given.</summary>
    public static async Task<int> RunAsync(string[] args, GridConsole console, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);

        int exit;
        try
        {
            exit = await InvokeAsync(args, console, ct).ConfigureAwait(false);
        }
        catch (GridCommandException e)
        {
            exit = await ReportAsync(console, (int)e.Code, $"grid: error: {e.Message}").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            exit = await ReportAsync(console, (int)ExitCode.Cancelled, "grid: interrupted").ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            exit = await ReportAsync(console, (int)ExitCode.IoError, $"grid: I/O error: {e.Message}").ConfigureAwait(false);
        }
        catch (Exception e)
        {
            exit = await ReportAsync(console, (int)ExitCode.InternalError, $"grid: internal error (please report this): {e}").ConfigureAwait(false);
        }

        await FlushQuietlyAsync(console.Out).ConfigureAwait(false);
        await FlushQuietlyAsync(console.Error).ConfigureAwait(false);
        return exit;
    }

    /// <summary>The full command tree. Each command group lives in its own file under Commands/.</summary>
    internal static RootCommand BuildRootCommand(GridConsole console)
    {
        var root = new RootCommand(
            "grid: the Rustorium Grid command line. Read and write a running grid with verified proofs, hash with " +
            "circomlib's Poseidon, replay and prove sparse Merkle trees, benchmark, operate a cluster.");
        root.Subcommands.Add(PoseidonCommand.Create(console));
        root.Subcommands.Add(SmtCommand.Create(console));
        root.Subcommands.Add(BenchCommand.Create(console));
        foreach (var command in DataCommands.Create(console)) root.Subcommands.Add(command);
        root.Subcommands.Add(AdminCommand.Create(console));
        GridHelpAction.Install(root);
        return root;
    }

    private static async Task<int> InvokeAsync(string[] args, GridConsole console, CancellationToken ct)
    {
        var root = BuildRootCommand(console);
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            // System.CommandLine exits 1 on parse errors; 1 means "negative answer" here, so report them ourselves.
            await console.Out.FlushAsync(ct).ConfigureAwait(false);
            foreach (var error in parse.Errors) await console.Error.WriteLineAsync($"grid: error: {error.Message}").ConfigureAwait(false);
            await console.Error.WriteLineAsync($"Run '{CommandPath(parse.CommandResult.Command)} --help' for usage.").ConfigureAwait(false);
            return (int)ExitCode.BadInput;
        }

        var invocation = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Error,
            EnableDefaultExceptionHandler = false, // RunAsync maps exceptions to exit codes itself
            ProcessTerminationTimeout = null,      // Ctrl+C is the caller's business (Program wires it to ct)
        };
        return await parse.InvokeAsync(invocation, ct).ConfigureAwait(false);
    }

    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
        {
            names.Add(c is RootCommand ? "grid" : c.Name);
        }
        names.Reverse();
        return string.Join(' ', names);
    }

    private static async Task<int> ReportAsync(GridConsole console, int exit, string message)
    {
        // Results already written stay written, and appear before the message.
        await FlushQuietlyAsync(console.Out).ConfigureAwait(false);
        try
        {
            await console.Error.WriteLineAsync(message).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // stderr is gone: nothing left to tell anyone, the exit code still says it.
        }
        return exit;
    }

    private static async Task FlushQuietlyAsync(TextWriter writer)
    {
        try
        {
            await writer.FlushAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
            // A closed pipe (e.g. `grid smt replay f | head`): the reader has what it wanted.
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
