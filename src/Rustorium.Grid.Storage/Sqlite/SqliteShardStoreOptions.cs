namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>How much of the database <see cref="SqliteShardStore.OpenAsync"/> verifies before using it. Explicit values, append-only.</summary>
public enum SqliteIntegrityCheck
{
    /// <summary>No check: open at once. Corruption then surfaces as <see cref="GridErrorCode.Corrupted"/> on the first read that meets it.</summary>
    None = 0,

    /// <summary><c>PRAGMA quick_check</c>: every B-tree page is well formed (O(file size), no index cross-checks). The default.</summary>
    Quick = 1,

    /// <summary><c>PRAGMA integrity_check</c>: also that every index matches its table; several times slower than <see cref="Quick"/>.</summary>
    Full = 2,
}

/// <summary>
/// Options of the embedded shard store (<see cref="SqliteShardStore"/>): where the database file is and how the
/// connections are tuned. Every default is stated on its property; <see cref="Validate"/> runs when the store opens.
/// </summary>
/// <remarks>
/// The store is one SQLite file in WAL mode (plus its <c>-wal</c> and <c>-shm</c> companions beside it): give it a
/// directory of its own on a local disk. Network file systems break SQLite's locking and are not supported.
/// </remarks>
public sealed record SqliteShardStoreOptions
{
    /// <summary>File name used inside <see cref="DataDirectory"/>. Default <c>shards.db</c>.</summary>
    public const string DefaultFileName = "shards.db";

    /// <summary>
    /// Directory holding the store; created when the store opens if it does not exist. The file is
    /// <see cref="FileName"/> inside it. Exactly one of <see cref="DataDirectory"/> and <see cref="FilePath"/> must be set.
    /// </summary>
    public string? DataDirectory { get; init; }

    /// <summary>The database file's name inside <see cref="DataDirectory"/>. Default <see cref="DefaultFileName"/>.</summary>
    public string FileName { get; init; } = DefaultFileName;

    /// <summary>The database file's full path, instead of <see cref="DataDirectory"/> (its directory must exist or be creatable).</summary>
    public string? FilePath { get; init; }

    /// <summary>
    /// How long a statement waits for a lock held by another connection or process before failing with
    /// <see cref="GridErrorCode.Timeout"/>. Default 5 s; 0 to 10 min.
    /// </summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Told about long work while the store opens, one line per step: a migration that copies every shard's tree (into
    /// nodes keyed by position) reports each shard and the total. Default none.
    /// </summary>
    public Action<string>? Progress { get; init; }

    /// <summary>
    /// Page cache of each connection, in KiB (the writer and every reader have one). Default 16,384 (16 MiB),
    /// so the default store caches at most 16 MiB × (1 + <see cref="ReaderConnections"/>) = 80 MiB; 256 KiB to 16 GiB.
    /// </summary>
    public int CacheSizeKiB { get; init; } = 16 * 1024;

    /// <summary>
    /// Read-only connections for reads (rows, scans, tree nodes), which in WAL mode never block or wait for the
    /// writer. A read waits when all are busy. Default 4; 1 to 64.
    /// </summary>
    public int ReaderConnections { get; init; } = 4;

    /// <summary>
    /// Most commits (of any shards) the writer folds into one SQLite transaction, and so into one fsync, when they
    /// queue up together. Each keeps its own outcome (a savepoint per commit). Default 64; 1 (no folding) to 4,096.
    /// </summary>
    public int MaxCommitsPerTransaction { get; init; } = 64;

    /// <summary>The check run when the store opens. Default <see cref="SqliteIntegrityCheck.Quick"/>.</summary>
    public SqliteIntegrityCheck IntegrityCheck { get; init; } = SqliteIntegrityCheck.Quick;

    /// <summary>The database file this configuration names (full path). Call <see cref="Validate"/> first.</summary>
    public string ResolveFilePath() =>
        Path.GetFullPath(FilePath ?? Path.Combine(DataDirectory ?? throw Invalid("Set DataDirectory or FilePath."), FileName));

    /// <summary>
    /// Checks every option and that the file's directory is (or can be created) and is writable; creates nothing
    /// (a probe file is created and deleted at once).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the option and what is wrong with it.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory) == string.IsNullOrWhiteSpace(FilePath))
            throw Invalid(DataDirectory is null && FilePath is null
                ? "Set DataDirectory (the store's directory) or FilePath (the database file); neither is set."
                : "Set either DataDirectory or FilePath, not both.");
        if (DataDirectory is not null && (string.IsNullOrWhiteSpace(FileName) || FileName.IndexOfAny(['/', '\\']) >= 0 || FileName is "." or ".."))
            throw Invalid($"FileName must be a plain file name inside DataDirectory; got \"{FileName}\".");
        if (BusyTimeout < TimeSpan.Zero || BusyTimeout > TimeSpan.FromMinutes(10))
            throw Invalid($"BusyTimeout must be between 0 and 10 minutes; got {BusyTimeout}.");
        if (CacheSizeKiB is < 256 or > 16 * 1024 * 1024)
            throw Invalid($"CacheSizeKiB must be between 256 (256 KiB) and 16777216 (16 GiB); got {CacheSizeKiB}.");
        if (ReaderConnections is < 1 or > 64)
            throw Invalid($"ReaderConnections must be between 1 and 64; got {ReaderConnections}.");
        if (MaxCommitsPerTransaction is < 1 or > 4096)
            throw Invalid($"MaxCommitsPerTransaction must be between 1 and 4096; got {MaxCommitsPerTransaction}.");
        if (!Enum.IsDefined(IntegrityCheck))
            throw Invalid($"IntegrityCheck {(int)IntegrityCheck} is not a defined SqliteIntegrityCheck.");

        string file;
        try
        {
            file = ResolveFilePath();
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw Invalid($"The store path is not a valid path: {e.Message}");
        }
        if (Directory.Exists(file))
            throw Invalid($"The store file {file} is a directory; {(FilePath is null ? "FileName" : "FilePath")} must name a file.");
        CheckDirectoryWritable(Path.GetDirectoryName(file)!);
    }

    private static void CheckDirectoryWritable(string directory)
    {
        // The directory may not exist yet (OpenAsync creates it): then its nearest existing ancestor must be writable.
        var existing = directory;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing))
                throw Invalid($"The store directory {directory} cannot be created: {existing} is a file.");
            var parent = Path.GetDirectoryName(existing);
            if (parent is null) throw Invalid($"The store directory {directory} cannot be created: no part of it exists.");
            existing = parent;
        }
        // SQLite needs to create the -wal and -shm files next to the database, so the directory itself must be writable.
        var probe = Path.Combine(existing, $".rustorium-write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Invalid($"The store directory {existing} is not writable ({e.Message}); SQLite must create the database and its -wal and -shm files there.");
        }
    }

    private static GridException Invalid(string message) => GridException.InvalidArgument($"SqliteShardStoreOptions: {message}");
}
