using Microsoft.Data.Sqlite;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>Turns SQLite's failures into the grid's typed errors, naming the file so an operator knows where to look.</summary>
internal static class SqliteErrors
{
    // Primary result codes (https://sqlite.org/rescode.html).
    private const int Busy = 5, Locked = 6, ReadOnly = 8, IoError = 10, Corrupt = 11, Full = 13, CantOpen = 14, NotADatabase = 26;

    /// <summary>True for the codes that mean the file's content cannot be trusted.</summary>
    public static bool IsCorruption(SqliteException e) => (e.SqliteErrorCode & 0xFF) is Corrupt or NotADatabase;

    public static GridException Map(SqliteException e, string path, string operation) => (e.SqliteErrorCode & 0xFF) switch
    {
        Corrupt or NotADatabase => Corrupted(path, $"{operation} failed: {e.Message}", e),
        Busy or Locked => new GridException(GridErrorCode.Timeout,
            $"{operation}: the shard store {path} stayed locked by another connection or process for longer than the busy timeout ({e.Message}).", e),
        ReadOnly or IoError or Full or CantOpen => new GridException(GridErrorCode.Unavailable,
            $"{operation}: the shard store {path} cannot be written or read: {e.Message}. Check disk space, permissions and the disk itself.", e),
        _ => new GridException(GridErrorCode.Internal, $"{operation}: unexpected SQLite error on {path}: {e.Message}", e),
    };

    public static GridException Corrupted(string path, string detail, Exception? inner = null) =>
        new(GridErrorCode.Corrupted,
            $"The shard store {path} is corrupt or not a Rustorium Grid store: {detail} The file was left untouched: " +
            "restore it from a backup, or move it aside to start empty.", inner);
}
