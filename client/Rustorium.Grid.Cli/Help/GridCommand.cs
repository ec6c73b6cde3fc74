using System.CommandLine;

namespace Rustorium.Grid.Cli.Help;

/// <summary>
/// A command whose <c>--help</c> goes beyond the generated usage: input formats, an example and what each exit
/// code means for this command. Every <c>grid</c> command is one.
/// </summary>
internal class GridCommand : Command
{
    public GridCommand(string name, string description) : base(name, description) { }

    /// <summary>Free text printed after the options: formats, defaults, caveats. Lines are printed as written.</summary>
    public string? Details { get; init; }

    /// <summary>Example invocations, each a line (comments start with '#').</summary>
    public IReadOnlyList<string> Examples { get; init; } = [];

    /// <summary>
    /// The exit codes this command can end with and what each means here; null prints the generic table.
    /// <see cref="ExitCode.InternalError"/> and <see cref="ExitCode.Cancelled"/> are always listed.
    /// </summary>
    public IReadOnlyList<(ExitCode Code, string Meaning)>? ExitCodes { get; init; }
}
