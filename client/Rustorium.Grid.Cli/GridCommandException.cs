namespace Rustorium.Grid.Cli;

/// <summary>
/// An expected failure of a command: its message is for the user (printed to stderr as is, without a stack
/// trace) and its <see cref="Code"/> becomes the process exit code.
/// </summary>
public sealed class GridCommandException : Exception
{
    public GridCommandException(ExitCode code, string message, Exception? inner = null) : base(message, inner)
    {
        Code = code;
    }

    /// <summary>The exit code the process ends with.</summary>
    public ExitCode Code { get; }

    /// <summary>Bad input or usage (<see cref="ExitCode.BadInput"/>).</summary>
    public static GridCommandException BadInput(string message, Exception? inner = null) => new(ExitCode.BadInput, message, inner);

    /// <summary>An I/O failure (<see cref="ExitCode.IoError"/>).</summary>
    public static GridCommandException Io(string message, Exception? inner = null) => new(ExitCode.IoError, message, inner);
}
