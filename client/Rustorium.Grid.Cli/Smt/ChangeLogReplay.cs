using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Smt;

/// <summary>
/// Applies a change log (see <see cref="ChangeLogLine"/>) to a tree one line at a time, streaming the file.
/// Every failure names the file and line: the lines before it stay applied (and their roots printed).
/// </summary>
internal static class ChangeLogReplay
{
    /// <summary>
    /// Applies every line of <paramref name="path"/> ("-" = stdin) to <paramref name="tree"/>, calling
    /// <paramref name="applied"/> after each applied line.
    /// </summary>
    /// <returns>The number of changes applied.</returns>
    /// <exception cref="GridCommandException"><see cref="ExitCode.BadInput"/> for an invalid line or a change the tree
    /// refuses (insert of a present key, update/delete of an absent one); <see cref="ExitCode.IoError"/> if the file
    /// cannot be read.</exception>
    public static long Apply(GridConsole console, string path, SparseMerkleTree tree, Action<SparseMerkleTree>? applied, CancellationToken ct)
    {
        string name = InputFiles.DisplayName(path);
        using var stream = InputFiles.OpenSequential(console, path);
        using var lines = new LineReader(stream);
        long changes = 0;
        while (ReadLine(lines, name, out var line))
        {
            if (ChangeLogLine.IsBlank(line)) continue;
            if (!ChangeLogLine.TryParse(line, out var change, out var error))
            {
                throw GridCommandException.BadInput($"{name} line {lines.LineNumber}: {error}");
            }

            try
            {
                switch (change.Operation)
                {
                    case ChangeOperation.Insert: tree.Insert(change.Key, change.Value); break;
                    case ChangeOperation.Update: tree.Update(change.Key, change.Value); break;
                    case ChangeOperation.Delete: tree.Delete(change.Key); break;
                }
            }
            catch (SmtException e)
            {
                throw GridCommandException.BadInput($"{name} line {lines.LineNumber}: {Explain(change, e)}", e);
            }

            changes++;
            applied?.Invoke(tree);
            if ((changes & 0xFFF) == 0) ct.ThrowIfCancellationRequested();
        }
        return changes;
    }

    private static bool ReadLine(LineReader lines, string name, out ReadOnlySpan<byte> line)
    {
        try
        {
            return lines.TryReadLine(out line);
        }
        catch (IOException e)
        {
            throw GridCommandException.Io($"cannot read {name} after line {lines.LineNumber}: {e.Message}", e);
        }
    }

    private static string Explain(ChangeLogLine change, SmtException e) => e.Code switch
    {
        SmtErrorCode.KeyExists => $"insert of key {change.Key}, which is already in the tree (use \"op\":\"update\" to change its value).",
        SmtErrorCode.KeyNotFound => $"{ChangeLogLine.Name(change.Operation)} of key {change.Key}, which is not in the tree.",
        _ => $"{ChangeLogLine.Name(change.Operation)} of key {change.Key} failed: {e.Message}",
    };
}
