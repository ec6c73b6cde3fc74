namespace Rustorium.Grid.Cli;

/// <summary>
/// The standard streams a command runs against. Commands never touch <see cref="Console"/> directly, so the
/// whole command line runs in-process in tests with captured output.
/// </summary>
public sealed class GridConsole
{
    private readonly Func<Stream> _openInput;

    /// <param name="openInput">Opens standard input (called at most once, only by commands reading "-").</param>
    /// <param name="output">Standard output: results only, so scripts can consume them.</param>
    /// <param name="error">Standard error: messages, progress and diagnostics.</param>
    /// <param name="errorIsTerminal">Whether <paramref name="error"/> is an interactive terminal (enables live progress).</param>
    public GridConsole(Func<Stream> openInput, TextWriter output, TextWriter error, bool errorIsTerminal)
    {
        ArgumentNullException.ThrowIfNull(openInput);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        _openInput = openInput;
        Out = output;
        Error = error;
        ErrorIsTerminal = errorIsTerminal;
    }

    /// <summary>Standard output.</summary>
    public TextWriter Out { get; }

    /// <summary>Standard error.</summary>
    public TextWriter Error { get; }

    /// <summary>Whether <see cref="Error"/> is an interactive terminal.</summary>
    public bool ErrorIsTerminal { get; }

    /// <summary>Opens standard input as a byte stream.</summary>
    public Stream OpenInput() => _openInput();

    /// <summary>The process's own console, with stdout/stderr replaced by the given writers.</summary>
    public static GridConsole ForProcess(TextWriter output, TextWriter error) =>
        new(Console.OpenStandardInput, output, error,
            errorIsTerminal: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);
}
