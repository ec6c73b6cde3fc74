namespace Rustorium.Grid.Cli;

/// <summary>Opens the files commands read, turning "cannot open" into a clear <see cref="ExitCode.IoError"/>.</summary>
internal static class InputFiles
{
    /// <summary>The path meaning standard input.</summary>
    public const string StandardInput = "-";

    /// <summary>A display name for messages: the path, or "stdin".</summary>
    public static string DisplayName(string path) => path == StandardInput ? "stdin" : path;

    /// <summary>
    /// Opens <paramref name="path"/> for one sequential pass ("-" is standard input).
    /// </summary>
    /// <exception cref="GridCommandException"><see cref="ExitCode.IoError"/>: missing, unreadable or a directory.</exception>
    public static Stream OpenSequential(GridConsole console, string path)
    {
        if (path == StandardInput) return console.OpenInput();
        try
        {
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read,
                Options = FileOptions.SequentialScan,
                BufferSize = 0, // the readers keep their own large buffers
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw GridCommandException.Io($"cannot open '{path}': no such file.", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw GridCommandException.Io(Directory.Exists(path)
                ? $"cannot open '{path}': it is a directory."
                : $"cannot open '{path}': permission denied.", e);
        }
        catch (IOException e)
        {
            throw GridCommandException.Io($"cannot open '{path}': {e.Message}", e);
        }
    }

    /// <summary>Reads a small file whole as UTF-8 text ("-" is standard input).</summary>
    /// <exception cref="GridCommandException"><see cref="ExitCode.IoError"/> as for <see cref="OpenSequential"/>.</exception>
    public static async Task<string> ReadAllTextAsync(GridConsole console, string path, CancellationToken ct)
    {
        await using var stream = OpenSequential(console, path);
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        try
        {
            return await reader.ReadToEndAsync(ct).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw GridCommandException.Io($"cannot read '{DisplayName(path)}': {e.Message}", e);
        }
    }
}
