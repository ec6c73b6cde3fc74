namespace Rustorium.Grid.Cli;

/// <summary>
/// The process exit codes of every <c>grid</c> command. Scripts depend on these values: they are explicit and
/// append-only (never renumber, never reuse).
/// </summary>
public enum ExitCode
{
    /// <summary>The command did what was asked (a proof verified, a hash was printed, ...).</summary>
    Ok = 0,

    /// <summary>The command ran correctly and the answer is "no": a proof does not verify, a key is absent.</summary>
    Negative = 1,

    /// <summary>Bad input or usage: unknown option, malformed number or file content, out-of-range value.</summary>
    BadInput = 2,

    /// <summary>An I/O error: a file is missing or unreadable, a write failed.</summary>
    IoError = 3,

    /// <summary>No silo could be reached, or the call timed out: retry later or elsewhere.</summary>
    Unavailable = 4,

    /// <summary>A bug in grid itself (an unexpected exception); sysexits' EX_SOFTWARE.</summary>
    InternalError = 70,

    /// <summary>Interrupted (Ctrl+C / SIGINT), following the shell's 128 + SIGINT convention.</summary>
    Cancelled = 130,
}

/// <summary>The one-line meaning of each <see cref="ExitCode"/>, shared by <c>--help</c> and docs/cli.md.</summary>
internal static class ExitCodeDescriptions
{
    public static readonly IReadOnlyList<(ExitCode Code, string Meaning)> All =
    [
        (ExitCode.Ok, "success"),
        (ExitCode.Negative, "negative answer (e.g. the proof does not verify)"),
        (ExitCode.BadInput, "bad input or usage (message on stderr)"),
        (ExitCode.IoError, "I/O error (e.g. file missing)"),
        (ExitCode.Unavailable, "no silo reachable, or the call timed out"),
        (ExitCode.InternalError, "internal error (a bug: please report it)"),
        (ExitCode.Cancelled, "interrupted"),
    ];

    public static string Describe(ExitCode code)
    {
        foreach (var (c, meaning) in All) if (c == code) return meaning;
        return code.ToString();
    }
}
