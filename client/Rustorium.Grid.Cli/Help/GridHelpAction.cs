using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Rustorium.Grid.Cli.Help;

/// <summary>
/// Prints System.CommandLine's generated help, then the sections a <see cref="GridCommand"/> adds
/// (details, examples, exit codes). Installed on the root's recursive <c>--help</c> option.
/// </summary>
internal sealed class GridHelpAction : SynchronousCommandLineAction
{
    private readonly HelpAction _standard;

    private GridHelpAction(HelpAction standard) => _standard = standard;

    public override bool ClearsParseErrors => true;

    /// <summary>Replaces the action of the root's help option (it applies to every subcommand).</summary>
    public static void Install(RootCommand root)
    {
        foreach (var option in root.Options)
        {
            if (option is HelpOption { Action: HelpAction standard } help) help.Action = new GridHelpAction(standard);
        }
    }

    public override int Invoke(ParseResult parseResult)
    {
        _standard.Invoke(parseResult);
        var output = parseResult.InvocationConfiguration.Output;
        var command = parseResult.CommandResult.Command as GridCommand;

        if (!string.IsNullOrWhiteSpace(command?.Details))
        {
            output.WriteLine("Details:");
            WriteIndented(output, command.Details);
            output.WriteLine();
        }

        if (command is { Examples.Count: > 0 })
        {
            output.WriteLine(command.Examples.Count == 1 ? "Example:" : "Examples:");
            foreach (var example in command.Examples) output.WriteLine("  " + example);
            output.WriteLine();
        }

        output.WriteLine("Exit codes:");
        var codes = (command?.ExitCodes ?? ExitCodeDescriptions.All).ToList();
        foreach (var always in new[] { ExitCode.InternalError, ExitCode.Cancelled })
        {
            if (!codes.Any(c => c.Code == always)) codes.Add((always, ExitCodeDescriptions.Describe(always)));
        }
        foreach (var (code, meaning) in codes.OrderBy(c => (int)c.Code)) output.WriteLine($"  {(int)code,3}  {meaning}");
        output.WriteLine();
        return (int)ExitCode.Ok;
    }

    private static void WriteIndented(TextWriter output, string text)
    {
        foreach (var line in text.Trim('\n', '\r').Split('\n')) output.WriteLine(line.Length == 0 ? "" : "  " + line.TrimEnd('\r'));
    }
}
