using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>
/// The embedded shard store, the grid's default: every shard of a silo in one SQLite database file (WAL mode,
/// synchronous=FULL), written by one writer thread with group commit and read through a small pool of read-only
/// connections. Open it with <see cref="OpenAsync"/>. See docs/storage.md.
/// </summary>
/// <remarks>
/// <para><b>Durability.</b> A commit's task completes after SQLite's COMMIT returned with the WAL fsynced, so an
/// acknowledged commit survives a crash of the process or the machine (given a disk that honours fsync).</para>
/// <para><b>Group commit.</b> Commits (of any shards) that queue up while the writer is busy go into one transaction,
/// up to <see cref="SqliteShardStoreOptions.MaxCommitsPerTransaction"/>, each in its own savepoint: one fsync for all,
/// yet each commit is checked and applied or refused on its own.</para>
/// <para><b>Reads</b> (<see cref="GetAsync"/>, <see cref="ScanAsync"/>, node readers) run synchronously on the caller's
/// thread on a pooled read-only connection: they are page-cache lookups that would cost more to hand off than to do.
/// They see every commit whose task has completed.</para>
/// <para><b>Integrity.</b> Opening checks the file (<see cref="SqliteShardStoreOptions.IntegrityCheck"/>) before writing
/// anything to it; a corrupt or foreign file is refused with <see cref="GridErrorCode.Corrupted"/> and left as it was.</para>
/// </remarks>
public sealed class SqliteShardStore : IShardStore
{
    private readonly SqliteWriter _writer;
    private readonly SqliteReaderPool _readers;
    private readonly ShardStoreMeter _meter;
    private int _disposed;

    private SqliteShardStore(SqliteShardStoreOptions options, string filePath, SqliteWriter writer, SqliteReaderPool readers, ShardStoreMeter meter)
    {
        Options = options;
        FilePath = filePath;
        _writer = writer;
        _readers = readers;
        _meter = meter;
    }

    /// <summary>The options the store was opened with.</summary>
    public SqliteShardStoreOptions Options { get; }

    /// <summary>Full path of the database file.</summary>
    public string FilePath { get; }

    /// <summary>Write transactions committed since the store opened (group commit folds several commits into one).</summary>
    internal long WriteTransactions => _meter.Snapshot().Transactions;

    /// <inheritdoc />
    public ShardStoreStatistics Statistics => _meter.Snapshot();

    /// <summary>The schema version this build creates and expects (the highest embedded migration).</summary>
    public static int SchemaVersion => SqliteMigrator.LatestVersion;

    /// <summary>
    /// Opens (creating if needed) the store file named by <paramref name="options"/>: validates the options, checks the
    /// file's integrity, switches it to WAL, applies pending migrations, and starts the writer and the readers.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options;
    /// <see cref="GridErrorCode.Corrupted"/> if the file is not a SQLite database, fails its integrity check, belongs to
    /// another application or has a schema from a newer build (the file is not modified);
    /// <see cref="GridErrorCode.Timeout"/> if another process holds it locked beyond the busy timeout;
    /// <see cref="GridErrorCode.Unavailable"/> if it cannot be read or written.</exception>
    public static async Task<SqliteShardStore> OpenAsync(SqliteShardStoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var path = options.ResolveFilePath();
        // Integrity checks read the whole file: keep them off the caller's thread.
        return await Task.Run(() => Open(options, path, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private static SqliteShardStore Open(SqliteShardStoreOptions options, string path, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false, // the store owns its connections; a pooled handle would keep the file open after disposal
            // The driver's own retry on SQLITE_BUSY, in whole seconds (0 would mean forever).
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(options.BusyTimeout.TotalSeconds)),
        };
        var connection = new SqliteConnection(builder.ToString());
        SqliteWriter? writer = null;
        ShardStoreMeter? meter = null;
        try
        {
            connection.Open();
            Execute(connection, SqliteStatements.BusyTimeout((int)options.BusyTimeout.TotalMilliseconds));
            // Read-only checks first: nothing may be written to a file we have not recognised.
            CheckIntegrity(connection, path, options.IntegrityCheck);
            cancellationToken.ThrowIfCancellationRequested();
            CheckApplication(connection, path);

            var mode = Convert.ToString(Scalar(connection, SqliteStatements.EnableWal), System.Globalization.CultureInfo.InvariantCulture);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                throw new GridException(GridErrorCode.Unavailable,
                    $"The shard store {path} cannot use write-ahead logging (journal mode stayed \"{mode}\"); put it on a local file system.");
            Execute(connection, SqliteStatements.DurableWrites);
            Execute(connection, SqliteStatements.EnforceForeignKeys);
            Execute(connection, SqliteStatements.TempStoreInMemory);
            Execute(connection, SqliteStatements.CacheSize(options.CacheSizeKiB));
            SqliteMigrator.Migrate(connection, path, SqliteRecords.NowMicros(), options.Progress);

            meter = new ShardStoreMeter("sqlite", path);
            writer = new SqliteWriter(connection, path, options.MaxCommitsPerTransaction, meter);
            builder.Mode = SqliteOpenMode.ReadOnly;
            var readers = new SqliteReaderPool(builder.ToString(), options);
            writer.Start();
            return new SqliteShardStore(options, path, writer, readers, meter);
        }
        catch (SqliteException e)
        {
            Close(connection, writer, meter);
            throw SqliteErrors.IsCorruption(e) ? SqliteErrors.Corrupted(path, e.Message, e) : SqliteErrors.Map(e, path, "Opening the shard store");
        }
        catch
        {
            Close(connection, writer, meter);
            throw;
        }
    }

    /// <summary>Closes what a failed open had opened (the writer's thread never started).</summary>
    private static void Close(SqliteConnection connection, SqliteWriter? writer, ShardStoreMeter? meter)
    {
        if (writer is null) connection.Dispose();
        else writer.Dispose();
        meter?.Dispose();
    }

    private static void CheckIntegrity(SqliteConnection connection, string path, SqliteIntegrityCheck check)
    {
        if (check == SqliteIntegrityCheck.None) return;
        using var command = new SqliteCommand(check == SqliteIntegrityCheck.Full ? SqliteStatements.IntegrityCheck : SqliteStatements.QuickCheck, connection);
        command.CommandTimeout = 0; // proportional to the file's size; it has no lock to wait for
        var problems = new List<string>();
        using (var r = command.ExecuteReader())
        {
            while (r.Read()) problems.Add(r.GetString(0));
        }
        if (problems is ["ok"]) return;
        throw SqliteErrors.Corrupted(path, $"{(check == SqliteIntegrityCheck.Full ? "integrity_check" : "quick_check")} found: {string.Join("; ", problems)}.");
    }

    private static void CheckApplication(SqliteConnection connection, string path)
    {
        long objects = Convert.ToInt64(Scalar(connection, SqliteStatements.CountSchemaObjects), System.Globalization.CultureInfo.InvariantCulture);
        long applicationId = Convert.ToInt64(Scalar(connection, SqliteStatements.ReadApplicationId), System.Globalization.CultureInfo.InvariantCulture);
        if (objects > 0 && applicationId != SqliteStatements.ApplicationId)
            throw SqliteErrors.Corrupted(path,
                $"it is a SQLite database of another application (application_id {applicationId}, a grid store has {SqliteStatements.ApplicationId}).");
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = new SqliteCommand(sql, connection);
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = new SqliteCommand(sql, connection);
        return command.ExecuteScalar();
    }

    // ---------------------------------------------------------------- IShardStore

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ShardState>> InitializeAsync(IReadOnlyList<KeyRange> initialLayout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(initialLayout);
        ThrowIfDisposed();
        var now = SqliteRecords.NowMicros();
        return await _writer.Enqueue(w => w.Initialize(initialLayout, now), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ShardState>> ListShardsAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        using var lease = await _readers.RentAsync(cancellationToken).ConfigureAwait(false);
        return Read(lease, static (s, _) => s.ListShards(), 0L, "Listing shards");
    }

    /// <inheritdoc />
    public async ValueTask<ShardState> GetShardAsync(long shardId, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        using var lease = await _readers.RentAsync(cancellationToken).ConfigureAwait(false);
        return Read(lease, static (s, id) => s.GetShard(id), shardId, "Reading a shard") ?? throw CommitChecks.UnknownShard(shardId);
    }

    /// <inheritdoc />
    public async ValueTask<ShardState> ClaimAsync(long shardId, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        return await _writer.Enqueue(w => w.Claim(shardId), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<StoredRow?> GetAsync(long shardId, ReadOnlyMemory<byte> key, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var keyBytes = SqliteRecords.AsArray(key);
        using var lease = await _readers.RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var row = lease.Session.GetRow(shardId, keyBytes);
            if (row is null && !lease.Session.ShardExists(shardId)) throw CommitChecks.UnknownShard(shardId);
            // Never hand the caller's own array back inside the result.
            return row is null ? null : row with { Key = key.ToArray() };
        }
        catch (SqliteException e)
        {
            throw SqliteErrors.Map(e, FilePath, $"Reading a row of shard {shardId}");
        }
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if <paramref name="limit"/> &lt; 1 or end &lt; start;
    /// <see cref="GridErrorCode.UnknownShard"/>.</exception>
    public async ValueTask<IReadOnlyList<StoredRow>> ScanAsync(long shardId, ReadOnlyMemory<byte> start, ReadOnlyMemory<byte>? end, int limit,
        CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (limit < 1) throw GridException.InvalidArgument($"Scan limit must be at least 1; got {limit}.");
        if (end is { } e && KeyRange.Compare(e.Span, start.Span) < 0)
            throw GridException.InvalidArgument(
                $"Scan end {Convert.ToHexStringLower(e.Span)} is before its start {Convert.ToHexStringLower(start.Span)}.");
        var startBytes = SqliteRecords.AsArray(start);
        var endBytes = end is { } bound ? SqliteRecords.AsArray(bound) : null;
        using var lease = await _readers.RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var rows = lease.Session.Scan(shardId, startBytes, endBytes, limit);
            if (rows.Count == 0 && !lease.Session.ShardExists(shardId)) throw CommitChecks.UnknownShard(shardId);
            return rows;
        }
        catch (SqliteException ex)
        {
            throw SqliteErrors.Map(ex, FilePath, $"Scanning shard {shardId}");
        }
    }

    /// <inheritdoc />
    public async ValueTask CommitAsync(ShardCommit commit, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var sorted = CommitChecks.CheckAndSortRows(commit, out int count);
        try
        {
            await _writer.Enqueue(w => w.Commit(commit, sorted, count), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Safe: the writer has finished with the rows (or never started: a cancelled job is never run).
            CommitChecks.ReturnRows(sorted);
        }
    }

    /// <inheritdoc />
    /// <remarks>One job of the writer thread, so it shares the fsync of the data commits queued with it.</remarks>
    public async ValueTask CommitTreeAsync(ShardTreeCommit commit, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        CommitChecks.CheckTreeCommit(commit);
        await _writer.Enqueue(w => w.CommitTree(commit), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Read by the writer thread, between two commits: one consistent snapshot. It runs when a shard activates.</remarks>
    public async ValueTask<UnfoldedChanges> ReadUnfoldedAsync(long shardId, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        return await _writer.Enqueue(w => w.ReadUnfolded(shardId), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>One job of the writer thread (one transaction, or one savepoint of a group commit): the shard's row is read
    /// and checked, the rows on each side of the split key counted, then the right shard inserted, its rows re-keyed to it,
    /// the left tree's nodes deleted and both new trees stored, and the left shard moved, conditioned on its epoch and version.
    /// Readers see the old layout or the new one, never a mixture (WAL snapshot per statement).</remarks>
    public async ValueTask<(ShardState Left, ShardState Right)> SplitAsync(ShardSplit split, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        CommitChecks.CheckSplit(split);
        return await _writer.Enqueue(w => w.Split(split), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>One job of the writer thread, like <see cref="SplitAsync"/>: both shard rows checked, rows counted, the right
    /// shard's rows re-keyed to the left one, both trees' nodes deleted and the merged tree stored, the right shard's row
    /// deleted and the left one moved.</remarks>
    public async ValueTask<ShardState> MergeAsync(ShardMerge merge, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        CommitChecks.CheckMerge(merge);
        return await _writer.Enqueue(w => w.Merge(merge), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Each lookup rents a pooled read-only connection for one indexed query. An unknown shard simply has no nodes.</remarks>
    public IShardNodeReader OpenNodeReader(long shardId)
    {
        ThrowIfDisposed();
        return new NodeReader(this, shardId);
    }

    /// <summary>
    /// Lets queued writes finish, waits for reads in flight, folds the WAL into the database file and closes it.
    /// Afterwards every call throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _writer.StopAsync().ConfigureAwait(false);
        // Readers close first: the last connection to close (the writer) can then checkpoint and remove the WAL.
        _readers.Dispose();
        _writer.Dispose();
        _meter.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private T Read<T, TArg>(SqliteReaderPool.Lease lease, Func<SqliteReadSession, TArg, T> read, TArg arg, string operation)
    {
        try
        {
            return read(lease.Session, arg);
        }
        catch (SqliteException e)
        {
            throw SqliteErrors.Map(e, FilePath, operation);
        }
    }

    private sealed class NodeReader(SqliteShardStore store, long shardId) : IShardNodeReader
    {
        public bool TryGetNode(in Fr hash, in SmtPosition position, out SmtNode node)
        {
            using var lease = store._readers.Rent();
            try
            {
                return lease.Session.TryGetNode(shardId, hash, position, out node);
            }
            catch (SqliteException e)
            {
                throw SqliteErrors.Map(e, store.FilePath, $"Reading a tree node of shard {shardId}");
            }
        }

        public void GetNodes(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
        {
            NodeLookups.CheckSpans(hashes, positions, nodes, found);
            // One connection and one prepared statement for the lot: a local lookup costs microseconds, a rent more.
            using var lease = store._readers.Rent();
            try
            {
                for (int i = 0; i < hashes.Length; i++) found[i] = lease.Session.TryGetNode(shardId, hashes[i], positions[i], out nodes[i]);
            }
            catch (SqliteException e)
            {
                throw SqliteErrors.Map(e, store.FilePath, $"Reading {hashes.Length} tree nodes of shard {shardId}");
            }
        }

        public void Dispose()
        {
            // Holds no connection of its own.
        }
    }
}
