using System.Buffers;
using System.Data;
using System.Diagnostics;
using Npgsql;
using NpgsqlTypes;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// The shard store on PostgreSQL: every shard of a grid in one schema that all silos share, so ownership (the epoch on
/// the shard's row) and data commits are checked against the same row. Open it with <see cref="OpenAsync"/>. See
/// docs/storage.md.
/// </summary>
/// <remarks>
/// <para><b>Commits.</b> One transaction and one batch (a single round trip, then COMMIT): the shard's row is locked and
/// its epoch and version checked, rows are upserted and deleted as whole arrays, tree nodes removed then added (a combined
/// commit) or the written keys recorded as unfolded (a data commit, 0005), and the shard moved. The store checks the range
/// and counts the keys itself from what the statements did; a refused commit is rolled back and changes nothing. A tree
/// commit is the same shape: nodes, root and tree version, and the unfolded keys it folded forgotten.</para>
/// <para><b>Durability.</b> Sessions run with <c>synchronous_commit=on</c>: a commit's task completes after the server
/// flushed it to its write-ahead log (and to synchronous standbys, if configured).</para>
/// <para><b>Sessions</b> come from a pool (<see cref="NpgsqlDataSource"/>) with the schema as search path, a statement
/// timeout and an idle-in-transaction timeout (<see cref="PostgresShardStoreOptions"/>), so a silo paused in the middle
/// of a commit blocks the shard's new owner for at most that long.</para>
/// <para><b>Reads</b> see every commit whose task has completed; nothing is cached here (the layer above caches).</para>
/// </remarks>
public sealed class PostgresShardStore : IShardStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _where;
    private readonly ShardStoreMeter _meter;
    private int _disposed;

    private PostgresShardStore(PostgresShardStoreOptions options, NpgsqlDataSource dataSource, string where)
    {
        Options = options;
        _dataSource = dataSource;
        _where = where;
        _meter = new ShardStoreMeter("postgres", where);
    }

    /// <summary>The options the store was opened with.</summary>
    public PostgresShardStoreOptions Options { get; }

    /// <inheritdoc />
    /// <remarks>Times are wall times of the calls on this handle once they hold a connection: the statements' round trip, then COMMIT's.</remarks>
    public ShardStoreStatistics Statistics => _meter.Snapshot();

    /// <summary>The schema version this build creates and expects (the highest embedded migration).</summary>
    public static int SchemaVersion => PostgresMigrator.LatestVersion;

    /// <summary>The sessions of the store (for tests and the tools that share its settings).</summary>
    internal NpgsqlDataSource DataSource => _dataSource;

    /// <summary>
    /// Validates the options, connects, creates the schema if needed and applies pending migrations (once, even when silos
    /// start together).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options;
    /// <see cref="GridErrorCode.Unavailable"/> if the server cannot be reached or refuses the credentials;
    /// <see cref="GridErrorCode.Corrupted"/> if the schema was migrated by a newer build or an edited script;
    /// <see cref="GridErrorCode.Timeout"/> if migrating waited too long for another silo.</exception>
    public static async Task<PostgresShardStore> OpenAsync(PostgresShardStoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = options.BuildSessionConnectionString(); // validates
        var where = options.Describe();
        var dataSource = new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
        try
        {
            await using var connection = await OpenConnectionAsync(dataSource, where, cancellationToken).ConfigureAwait(false);
            try
            {
                await PostgresMigrator.MigrateAsync(connection, options.Schema, cancellationToken, options.Progress).ConfigureAwait(false);
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, where, "Migrating the schema");
            }
            return new PostgresShardStore(options, dataSource, where);
        }
        catch
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    // ---------------------------------------------------------------- IShardStore

    /// <inheritdoc />
    /// <remarks>Safe when several silos initialise one empty schema at the same moment: the creation runs under a
    /// transaction-scoped advisory lock, so exactly one layout is created and every caller returns it.</remarks>
    public async ValueTask<IReadOnlyList<ShardState>> InitializeAsync(IReadOnlyList<KeyRange> initialLayout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(initialLayout);
        ThrowIfDisposed();
        const string operation = "Initialising the shard layout";
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Usual case (every silo start after the first): the layout exists, no lock needed.
            var existing = await ReadShardsAsync(connection, null, cancellationToken).ConfigureAwait(false);
            if (existing.Count > 0) return existing;

            await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            long count;
            await using (var batch = new NpgsqlBatch(connection, tx))
            {
                batch.BatchCommands.Add(Command(PostgresStatements.LockInitialize, Text("schema", Options.Schema)));
                batch.BatchCommands.Add(Command(PostgresStatements.CountShards));
                await using var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                count = r.GetInt64(0);
            }
            if (count == 0)
            {
                var sorted = ShardLayout.Validate(initialLayout); // refused: the transaction rolls back, nothing was written
                // The layout's ids come from the counter like a split's (1…n in a new schema), so they are never given again either.
                long firstId;
                await using (var allocate = new NpgsqlCommand(PostgresStatements.AllocateShardIds, connection, tx))
                {
                    allocate.Parameters.Add(Int64("count", sorted.Count));
                    var last = await allocate.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? throw ShardIdCounterMissing();
                    firstId = (long)last - sorted.Count + 1;
                }
                var ids = new long[sorted.Count];
                var starts = new byte[sorted.Count][];
                var ends = new byte[]?[sorted.Count];
                for (int i = 0; i < sorted.Count; i++)
                {
                    ids[i] = firstId + i;
                    starts[i] = sorted[i].Start.ToArray();
                    ends[i] = sorted[i].IsUnbounded ? null : sorted[i].End.ToArray();
                }
                await using var insert = new NpgsqlCommand(PostgresStatements.InsertShards, connection, tx);
                insert.Parameters.Add(new NpgsqlParameter<long[]>("ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = ids });
                insert.Parameters.Add(new NpgsqlParameter<byte[][]>("starts", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { TypedValue = starts });
                insert.Parameters.Add(new NpgsqlParameter<byte[]?[]>("ends", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { TypedValue = ends });
                insert.Parameters.Add(Bytes("root", FieldBytes.ToBytes(Fr.Zero)));
                insert.Parameters.Add(Int64("updated_at", NowMicros()));
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            var shards = await ReadShardsAsync(connection, tx, cancellationToken).ConfigureAwait(false);
            await tx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            return shards;
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Map(e, _where, operation);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ShardState>> ListShardsAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await ReadShardsAsync(connection, null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Map(e, _where, "Listing shards");
        }
    }

    /// <inheritdoc />
    public async ValueTask<ShardState> GetShardAsync(long shardId, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand(PostgresStatements.SelectShard, connection);
            command.Parameters.Add(Int64("id", shardId));
            await using var r = await command.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadShard(r) : throw CommitChecks.UnknownShard(shardId);
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Map(e, _where, $"Reading shard {shardId}");
        }
    }

    /// <inheritdoc />
    /// <remarks>One autocommitted statement on the shard's row: it waits for a commit of the shard in flight (which then
    /// applies under the old epoch, before the claim) and every later commit with the old epoch is refused.</remarks>
    public async ValueTask<ShardState> ClaimAsync(long shardId, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand(PostgresStatements.ClaimShard, connection);
            command.Parameters.Add(Int64("id", shardId));
            await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadShard(r) : throw CommitChecks.UnknownShard(shardId);
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Map(e, _where, $"Claiming shard {shardId}");
        }
    }

    /// <inheritdoc />
    public async ValueTask<StoredRow?> GetAsync(long shardId, ReadOnlyMemory<byte> key, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand(PostgresStatements.SelectRow, connection);
            command.Parameters.Add(Int64("id", shardId));
            command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("key", NpgsqlDbType.Bytea) { TypedValue = key });
            await using var r = await command.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) throw CommitChecks.UnknownShard(shardId);
            if (await r.IsDBNullAsync(0, cancellationToken).ConfigureAwait(false)) return null;
            // Never hand the caller's own array back inside the result.
            return new StoredRow(key.ToArray(), r.GetFieldValue<byte[]>(0), r.GetInt64(1), r.GetInt64(2));
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Map(e, _where, $"Reading a row of shard {shardId}");
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
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var rows = new List<StoredRow>();
            await using (var command = new NpgsqlCommand(end is null ? PostgresStatements.ScanRowsToEnd : PostgresStatements.ScanRows, connection))
            {
                command.Parameters.Add(Int64("id", shardId));
                command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("start", NpgsqlDbType.Bytea) { TypedValue = start });
                if (end is { } bound) command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("end", NpgsqlDbType.Bytea) { TypedValue = bound });
                command.Parameters.Add(Int64("limit", limit));
                await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    rows.Add(new StoredRow(r.GetFieldValue<byte[]>(0), r.GetFieldValue<byte[]>(1), r.GetInt64(2), r.GetInt64(3)));
            }
            if (rows.Count == 0 && !await ShardExistsAsync(connection, shardId, cancellationToken).ConfigureAwait(false))
                throw CommitChecks.UnknownShard(shardId);
            return rows;
        }
        catch (Exception ex) when (PostgresErrors.IsDatabaseFailure(ex))
        {
            throw PostgresErrors.Map(ex, _where, $"Scanning shard {shardId}");
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transaction: a batch of at most four statements in one round trip (lock and read the shard's row; write the rows
    /// as whole arrays and move the shard, counting the keys, in one statement; then a combined commit's node removal and
    /// addition as packed records, or a data commit's unfolded keys as one array), then COMMIT — or ROLLBACK when the shard
    /// is unknown, the epoch or version moved (<see cref="GridErrorCode.Conflict"/>), a key is outside the range, the key
    /// count the statements produced is not <see cref="ShardCommit.NewKeyCount"/>, or a combined commit finds the tree behind
    /// the data (<see cref="GridErrorCode.InvalidArgument"/>). Cancellation is honoured until COMMIT is sent, never during it.
    /// </remarks>
    public async ValueTask CommitAsync(ShardCommit commit, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var sorted = CommitChecks.CheckAndSortRows(commit, out int count);
        byte[]? removed = null, added = null;
        try
        {
            bool combined = commit.NewRoot is not null;
            int puts = 0;
            for (int i = 0; i < count; i++)
                if (sorted[i].Value is not null) puts++;
            byte[][] putKeys = new byte[puts][], putValues = new byte[puts][], deleteKeys = new byte[count - puts][];
            for (int i = 0, p = 0, d = 0; i < count; i++)
            {
                if (sorted[i].Value is { } value)
                {
                    putKeys[p] = sorted[i].Key;
                    putValues[p++] = value;
                }
                else
                {
                    deleteKeys[d++] = sorted[i].Key;
                }
            }
            int removedLength = PackPositions(commit.RemovedPositions, out removed);
            int addedLength = PackNodes(commit.AddedNodes, $"Commit to shard {commit.ShardId}", nameof(ShardCommit.AddedNodes), out added);

            await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            long start = Stopwatch.GetTimestamp();
            try
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using var batch = new NpgsqlBatch(connection, tx);
                batch.BatchCommands.Add(Command(PostgresStatements.LockShardForCommit, Int64("id", commit.ShardId)));
                var write = Command(combined ? PostgresStatements.WriteRowsAndMoveShardAndTree : PostgresStatements.WriteRowsAndMoveShard,
                    Int64("id", commit.ShardId), Int64("epoch", commit.Epoch), Int64("expected_version", commit.ExpectedVersion),
                    Int64("new_version", commit.NewVersion), Int64("ts", commit.TimestampMicros),
                    ByteArrays("put_keys", putKeys), ByteArrays("put_values", putValues), ByteArrays("delete_keys", deleteKeys));
                if (commit.NewRoot is { } root) write.Parameters.Add(Bytes("root", FieldBytes.ToBytes(root)));
                batch.BatchCommands.Add(write);
                if (!combined && count > 0)
                {
                    var keys = new byte[count][];
                    for (int i = 0; i < count; i++) keys[i] = sorted[i].Key;
                    batch.BatchCommands.Add(Command(PostgresStatements.RecordUnfoldedKeys,
                        Int64("id", commit.ShardId), Int64("new_version", commit.NewVersion), ByteArrays("keys", keys)));
                }
                AddNodeChanges(batch, commit.ShardId, removed, removedLength, added, addedLength);

                bool known, applied;
                long storedEpoch = 0, storedVersion = 0, storedKeyCount = 0, storedTreeVersion = 0, inserted, deleted;
                KeyRange? range = null;
                await using (var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    known = await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                    if (known)
                    {
                        storedEpoch = r.GetInt64(0);
                        storedVersion = r.GetInt64(1);
                        range = ReadRange(r, 2, commit.ShardId);
                        storedKeyCount = r.GetInt64(4);
                        storedTreeVersion = r.GetInt64(5);
                    }
                    await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                    inserted = r.GetInt64(0);
                    deleted = r.GetInt64(1);
                    applied = r.GetBoolean(2);
                }
                // Every refusal below leaves the transaction uncommitted: disposing it rolls everything back.
                if (!known) throw CommitChecks.UnknownShard(commit.ShardId);
                if (storedEpoch != commit.Epoch || storedVersion != commit.ExpectedVersion) throw CommitChecks.Conflict(commit, storedEpoch, storedVersion);
                if (!applied) throw new GridException(GridErrorCode.Internal, $"Shard {commit.ShardId} changed under its own row lock.");
                CommitChecks.CheckInRange(commit, range!, sorted.AsSpan(0, count));
                CommitChecks.CheckKeyCount(commit, storedKeyCount, inserted, deleted);
                CommitChecks.CheckCombined(commit, storedTreeVersion);
                await CommitAsync(tx, $"Committing to shard {commit.ShardId}", StoreWork.Data(commit, count, Stopwatch.GetTimestamp() - start),
                    "the commit may or may not have been applied; re-read the shard's version").ConfigureAwait(false);
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, _where, $"Committing to shard {commit.ShardId}");
            }
        }
        finally
        {
            CommitChecks.ReturnRows(sorted);
            if (removed is not null) ArrayPool<byte>.Shared.Return(removed);
            if (added is not null) ArrayPool<byte>.Shared.Return(added);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transaction: a batch of at most five statements in one round trip (the node removal and addition as packed
    /// records; then lock and read the shard's row, the conditional move of its tree version and root, the deletion of the
    /// unfolded keys up to the new tree version: the row lock the shard's data commits wait for is taken last), then
    /// COMMIT — or ROLLBACK when the shard is unknown, the epoch or tree version moved
    /// (<see cref="GridErrorCode.Conflict"/>) or the new tree version is past the shard's version
    /// (<see cref="GridErrorCode.InvalidArgument"/>). Cancellation is honoured until COMMIT is sent, never during it.
    /// </remarks>
    public async ValueTask CommitTreeAsync(ShardTreeCommit commit, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        CommitChecks.CheckTreeCommit(commit);
        string what = $"Tree commit to shard {commit.ShardId}";
        byte[]? removed = null, added = null;
        try
        {
            int removedLength = PackPositions(commit.RemovedPositions, out removed);
            int addedLength = PackNodes(commit.AddedNodes, what, nameof(ShardTreeCommit.AddedNodes), out added);
            await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            long start = Stopwatch.GetTimestamp();
            try
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using var batch = new NpgsqlBatch(connection, tx);
                // The nodes first, the shard's row last: the row lock (which the shard's data commits wait for) is then held
                // for the last statements and the COMMIT only, not while thousands of node rows are written. Nodes written
                // by a commit that is then refused are rolled back with it.
                AddNodeChanges(batch, commit.ShardId, removed, removedLength, added, addedLength);
                int nodeStatements = batch.BatchCommands.Count;
                batch.BatchCommands.Add(Command(PostgresStatements.LockShardForTreeCommit, Int64("id", commit.ShardId)));
                batch.BatchCommands.Add(Command(PostgresStatements.UpdateShardTree,
                    Int64("id", commit.ShardId), Int64("epoch", commit.Epoch), Int64("expected_tree_version", commit.ExpectedTreeVersion),
                    Int64("new_tree_version", commit.NewTreeVersion), Bytes("root", FieldBytes.ToBytes(commit.NewRoot))));
                batch.BatchCommands.Add(Command(PostgresStatements.DeleteUnfoldedThrough,
                    Int64("id", commit.ShardId), Int64("new_tree_version", commit.NewTreeVersion)));

                bool known, applied;
                long epoch = 0, version = 0, treeVersion = 0;
                await using (var r = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    for (int i = 0; i < nodeStatements; i++) await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    known = await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                    if (known)
                    {
                        epoch = r.GetInt64(0);
                        version = r.GetInt64(1);
                        treeVersion = r.GetInt64(2);
                    }
                    await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    applied = await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                }
                // Every refusal below leaves the transaction uncommitted: disposing it rolls everything back.
                if (!known) throw CommitChecks.UnknownShard(commit.ShardId);
                CommitChecks.CheckTreeCommitAgainst(commit, epoch, version, treeVersion);
                if (!applied) throw new GridException(GridErrorCode.Internal, $"Shard {commit.ShardId} changed under its own row lock.");
                await CommitAsync(tx, what, StoreWork.Tree(commit, Stopwatch.GetTimestamp() - start)).ConfigureAwait(false);
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, _where, what);
            }
        }
        finally
        {
            if (removed is not null) ArrayPool<byte>.Shared.Return(removed);
            if (added is not null) ArrayPool<byte>.Shared.Return(added);
        }
    }

    /// <inheritdoc />
    /// <remarks>One statement (so one snapshot): the shard's row, its distinct unfolded keys and their rows.</remarks>
    public async ValueTask<UnfoldedChanges> ReadUnfoldedAsync(long shardId, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand(PostgresStatements.SelectUnfolded, connection);
            command.Parameters.Add(Int64("id", shardId));
            await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) throw CommitChecks.UnknownShard(shardId);
            long treeVersion = r.GetInt64(0), version = r.GetInt64(1);
            var rows = new List<RowWrite>();
            do
            {
                if (r.IsDBNull(2)) break; // nothing unfolded: the one row the outer join gives
                rows.Add(new RowWrite(r.GetFieldValue<byte[]>(2), r.IsDBNull(3) ? null : r.GetFieldValue<byte[]>(3)));
            }
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false));
            return new UnfoldedChanges(treeVersion, version, rows);
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Map(e, _where, $"Reading the unfolded changes of shard {shardId}");
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transaction, two round trips, then COMMIT. The first locks the shard's row (as a commit does), then takes the new
    /// id from the schema's shard-id counter (0004: its row lock makes concurrent splits of different shards queue there and
    /// get different ids; an id is never given twice, also after merges) and counts the rows on each side of the split key;
    /// the store checks epoch, version, split key and counts (a refusal rolls back, the counter included: nothing was
    /// written). The second inserts the right shard (copying the left one's end, epoch and owner), re-keys its rows, replaces
    /// the left tree, stores the right one, forgets the shard's unfolded keys (both trees are complete, at the new version) and
    /// moves the left shard. 0002's deferred triggers move the shard map's generation on at COMMIT. Cancellation is honoured
    /// until COMMIT is sent, never during it.
    /// </remarks>
    public async ValueTask<(ShardState Left, ShardState Right)> SplitAsync(ShardSplit split, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        CommitChecks.CheckSplit(split);
        string what = $"Split of shard {split.ShardId}";
        byte[]? leftNodes = null, rightNodes = null;
        try
        {
            int leftLength = PackNodes(split.LeftNodes, what, nameof(ShardSplit.LeftNodes), out leftNodes);
            int rightLength = PackNodes(split.RightNodes, what, nameof(ShardSplit.RightNodes), out rightNodes);
            await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                long epoch, version, rightId, leftRows, rightRows;
                KeyRange range;
                await using (var read = new NpgsqlBatch(connection, tx))
                {
                    read.BatchCommands.Add(Command(PostgresStatements.LockShardForCommit, Int64("id", split.ShardId)));
                    read.BatchCommands.Add(Command(PostgresStatements.AllocateShardIds, Int64("count", 1)));
                    read.BatchCommands.Add(Command(PostgresStatements.CountRowsAroundSplit, Int64("id", split.ShardId), Bytes("split", split.SplitKey)));
                    await using var r = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) throw CommitChecks.UnknownShard(split.ShardId);
                    epoch = r.GetInt64(0);
                    version = r.GetInt64(1);
                    range = ReadRange(r, 2, split.ShardId);
                    rightId = await NextShardIdAsync(r, cancellationToken).ConfigureAwait(false);
                    await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                    leftRows = r.GetInt64(0);
                    rightRows = r.GetInt64(1);
                }
                // Every refusal below leaves the transaction uncommitted: disposing it rolls back (nothing was written yet).
                CommitChecks.CheckSplitAgainst(split, epoch, version, range);
                CommitChecks.CheckSplitCounts(split, leftRows, rightRows);

                await using (var write = new NpgsqlBatch(connection, tx))
                {
                    var insert = Command(PostgresStatements.InsertSplitShard, Int64("id", split.ShardId), Int64("epoch", split.Epoch),
                        Int64("expected_version", split.ExpectedVersion), Int64("new_id", rightId), Bytes("split", split.SplitKey),
                        Int64("new_version", split.NewVersion), Bytes("root", FieldBytes.ToBytes(split.RightRoot)),
                        Int64("key_count", split.RightKeyCount), Int64("ts", split.TimestampMicros));
                    var move = Command(PostgresStatements.MoveRowsFrom, Int64("id", split.ShardId), Int64("to", rightId), Bytes("from", split.SplitKey));
                    var update = Command(PostgresStatements.UpdateShardRange, Int64("id", split.ShardId), Int64("epoch", split.Epoch),
                        Int64("expected_version", split.ExpectedVersion), NullableBytes("range_end", split.SplitKey),
                        Int64("new_version", split.NewVersion), Bytes("root", FieldBytes.ToBytes(split.LeftRoot)),
                        Int64("key_count", split.LeftKeyCount), Int64("ts", split.TimestampMicros));
                    write.BatchCommands.Add(insert); // before the left row moves: it copies the old end
                    write.BatchCommands.Add(move);
                    write.BatchCommands.Add(Command(PostgresStatements.DeleteShardNodes, Int64("id", split.ShardId)));
                    write.BatchCommands.Add(Command(PostgresStatements.DeleteShardUnfolded, Int64("id", split.ShardId)));
                    if (leftLength > 0)
                        write.BatchCommands.Add(Command(PostgresStatements.InsertNodes, Int64("id", split.ShardId), Packed("nodes", leftNodes!, leftLength)));
                    if (rightLength > 0)
                        write.BatchCommands.Add(Command(PostgresStatements.InsertNodes, Int64("id", rightId), Packed("nodes", rightNodes!, rightLength)));
                    write.BatchCommands.Add(update);
                    await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    if (insert.RecordsAffected != 1 || move.RecordsAffected != rightRows || update.RecordsAffected != 1)
                        throw new GridException(GridErrorCode.Internal, $"Shard {split.ShardId} changed under its own split (row lock held).");
                }
                await CommitAsync(tx, what).ConfigureAwait(false);
                var end = range.IsUnbounded ? null : range.End.ToArray();
                return (
                    new ShardState(split.ShardId, new KeyRange(range.Start, split.SplitKey), split.NewVersion, epoch, split.LeftRoot,
                        split.LeftKeyCount, split.TimestampMicros, split.NewVersion),
                    new ShardState(rightId, new KeyRange(split.SplitKey, end), split.NewVersion, epoch, split.RightRoot, split.RightKeyCount,
                        split.TimestampMicros, split.NewVersion));
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, _where, what);
            }
        }
        finally
        {
            if (leftNodes is not null) ArrayPool<byte>.Shared.Return(leftNodes);
            if (rightNodes is not null) ArrayPool<byte>.Shared.Return(rightNodes);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transaction, two round trips, then COMMIT: the first locks both shards' rows (in id order, so opposite merges of
    /// one pair queue rather than deadlock) and counts their rows; the store checks epochs, versions, adjacency and the count
    /// (a refusal rolls back). The second re-keys the right shard's rows to the left one, deletes both trees and both shards'
    /// unfolded keys, stores the merged (complete) tree, deletes the right shard's row and moves the left one.
    /// </remarks>
    public async ValueTask<ShardState> MergeAsync(ShardMerge merge, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        CommitChecks.CheckMerge(merge);
        string what = $"Merge of shards {merge.LeftShardId} and {merge.RightShardId}";
        byte[]? nodes = null;
        try
        {
            int nodesLength = PackNodes(merge.Nodes, what, nameof(ShardMerge.Nodes), out nodes);
            await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                (long Epoch, long Version, KeyRange Range)? left = null, right = null;
                long leftRows, rightRows;
                await using (var read = new NpgsqlBatch(connection, tx))
                {
                    read.BatchCommands.Add(Command(PostgresStatements.LockShardsForMerge, Int64("left", merge.LeftShardId), Int64("right", merge.RightShardId)));
                    read.BatchCommands.Add(Command(PostgresStatements.CountRows, Int64("id", merge.LeftShardId)));
                    read.BatchCommands.Add(Command(PostgresStatements.CountRows, Int64("id", merge.RightShardId)));
                    await using var r = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        long id = r.GetInt64(0);
                        var shard = (r.GetInt64(1), r.GetInt64(2), ReadRange(r, 3, id));
                        if (id == merge.LeftShardId) left = shard;
                        else right = shard;
                    }
                    leftRows = await NextCountAsync(r, cancellationToken).ConfigureAwait(false);
                    rightRows = await NextCountAsync(r, cancellationToken).ConfigureAwait(false);
                }
                // Every refusal below leaves the transaction uncommitted: disposing it rolls back (nothing was written yet).
                if (left is not { } l) throw CommitChecks.UnknownShard(merge.LeftShardId);
                if (right is not { } rt) throw CommitChecks.UnknownShard(merge.RightShardId);
                CommitChecks.CheckMergeAgainst(merge, l.Epoch, l.Version, l.Range, rt.Epoch, rt.Version, rt.Range);
                CommitChecks.CheckMergeCount(merge, leftRows, rightRows);

                var end = rt.Range.IsUnbounded ? null : rt.Range.End.ToArray();
                await using (var write = new NpgsqlBatch(connection, tx))
                {
                    var move = Command(PostgresStatements.MoveRowsFrom, Int64("id", merge.RightShardId), Int64("to", merge.LeftShardId),
                        Bytes("from", []));
                    var delete = Command(PostgresStatements.DeleteShard, Int64("id", merge.RightShardId), Int64("epoch", merge.RightEpoch),
                        Int64("expected_version", merge.RightExpectedVersion));
                    var update = Command(PostgresStatements.UpdateShardRange, Int64("id", merge.LeftShardId), Int64("epoch", merge.LeftEpoch),
                        Int64("expected_version", merge.LeftExpectedVersion), NullableBytes("range_end", end),
                        Int64("new_version", merge.NewVersion), Bytes("root", FieldBytes.ToBytes(merge.Root)),
                        Int64("key_count", merge.KeyCount), Int64("ts", merge.TimestampMicros));
                    write.BatchCommands.Add(move);
                    write.BatchCommands.Add(Command(PostgresStatements.DeleteShardNodes, Int64("id", merge.RightShardId)));
                    write.BatchCommands.Add(Command(PostgresStatements.DeleteShardNodes, Int64("id", merge.LeftShardId)));
                    write.BatchCommands.Add(Command(PostgresStatements.DeleteShardUnfolded, Int64("id", merge.RightShardId)));
                    write.BatchCommands.Add(Command(PostgresStatements.DeleteShardUnfolded, Int64("id", merge.LeftShardId)));
                    if (nodesLength > 0)
                        write.BatchCommands.Add(Command(PostgresStatements.InsertNodes, Int64("id", merge.LeftShardId), Packed("nodes", nodes!, nodesLength)));
                    write.BatchCommands.Add(delete);
                    write.BatchCommands.Add(update);
                    await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    if (move.RecordsAffected != rightRows || delete.RecordsAffected != 1 || update.RecordsAffected != 1)
                        throw new GridException(GridErrorCode.Internal, $"{what}: a shard changed under its own merge (row locks held).");
                }
                await CommitAsync(tx, what).ConfigureAwait(false);
                return new ShardState(merge.LeftShardId, new KeyRange(l.Range.Start, end), merge.NewVersion, l.Epoch, merge.Root, merge.KeyCount,
                    merge.TimestampMicros, merge.NewVersion);
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, _where, what);
            }
        }
        finally
        {
            if (nodes is not null) ArrayPool<byte>.Shared.Return(nodes);
        }
    }

    /// <summary>
    /// COMMIT, not cancellable (a COMMIT cut short would leave its outcome unknown to the caller); a failure says so, with
    /// <paramref name="unknownOutcome"/>. Counts the transaction and the <paramref name="work"/> it held in <see cref="Statistics"/>.
    /// </summary>
    private async Task CommitAsync(NpgsqlTransaction tx, string what, StoreWork work = default,
        string unknownOutcome = "it may or may not have been applied; re-read the shard layout")
    {
        try
        {
            long start = Stopwatch.GetTimestamp();
            await tx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            _meter.Committed(work, Stopwatch.GetTimestamp() - start);
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            var failure = PostgresErrors.Map(e, _where, what);
            throw new GridException(failure.Code, $"{failure.Message} The connection failed during COMMIT: {unknownOutcome}.", e);
        }
    }

    /// <inheritdoc />
    /// <remarks>Each lookup rents a pooled session for one primary-key query, synchronously (the tree's node store is
    /// synchronous). An unknown shard simply has no nodes.</remarks>
    public IShardNodeReader OpenNodeReader(long shardId)
    {
        ThrowIfDisposed();
        return new NodeReader(this, shardId);
    }

    /// <summary>
    /// Closes the store's sessions (a session still in use closes when its call returns). Afterwards every call throws
    /// <see cref="ObjectDisposedException"/>. The data stays in PostgreSQL.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _meter.Dispose();
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- helpers

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        OpenConnectionAsync(_dataSource, _where, cancellationToken);

    private static async ValueTask<NpgsqlConnection> OpenConnectionAsync(NpgsqlDataSource dataSource, string where, CancellationToken cancellationToken)
    {
        try
        {
            return await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
        {
            throw PostgresErrors.Connect(e, where);
        }
    }

    private static async Task<List<ShardState>> ReadShardsAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(PostgresStatements.SelectShards, connection, tx);
        await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var shards = new List<ShardState>();
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) shards.Add(ReadShard(r));
        return shards;
    }

    private static async Task<bool> ShardExistsAsync(NpgsqlConnection connection, long shardId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(PostgresStatements.ShardExists, connection);
        command.Parameters.Add(Int64("id", shardId));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task<long> NextCountAsync(NpgsqlDataReader r, CancellationToken cancellationToken)
    {
        await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await r.ReadAsync(cancellationToken).ConfigureAwait(false);
        return r.GetInt64(0);
    }

    /// <summary>The next result set is <see cref="PostgresStatements.AllocateShardIds"/>': the last id it took.</summary>
    private async Task<long> NextShardIdAsync(NpgsqlDataReader r, CancellationToken cancellationToken)
    {
        await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
        if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            throw ShardIdCounterMissing();
        return r.GetInt64(0);
    }

    private GridException ShardIdCounterMissing() => new(GridErrorCode.Corrupted,
        $"The shard id counter (table shard_id_counter, 0004) of {_where} has no row; was the schema changed outside the grid?");

    /// <summary>The emptied positions and the stored nodes, as packed by <see cref="PackPositions(IReadOnlyList{SmtPosition}, out byte[])"/> and <see cref="PackNodes"/>.</summary>
    private static void AddNodeChanges(NpgsqlBatch batch, long shardId, byte[]? removed, int removedLength, byte[]? added, int addedLength)
    {
        if (removedLength > 0)
            batch.BatchCommands.Add(Command(PostgresStatements.DeleteNodes, Int64("id", shardId), Packed("positions", removed!, removedLength)));
        if (addedLength > 0)
            batch.BatchCommands.Add(Command(PostgresStatements.InsertNodes, Int64("id", shardId), Packed("nodes", added!, addedLength)));
    }

    /// <summary>Positions as packed records (length, encoding padded with zeros) in a pooled buffer; returns the used length.</summary>
    private static int PackPositions(IReadOnlyList<SmtPosition> positions, out byte[]? buffer) => positions switch
    {
        SmtPosition[] array => PackPositions(array.AsSpan(), out buffer),
        List<SmtPosition> list => PackPositions(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list), out buffer),
        _ => PackPositions(positions.ToArray().AsSpan(), out buffer),
    };

    private static int PackPositions(ReadOnlySpan<SmtPosition> positions, out byte[]? buffer)
    {
        buffer = null;
        if (positions.IsEmpty) return 0;
        const int record = PostgresStatements.PositionRecordLength;
        int length = positions.Length * record;
        buffer = ArrayPool<byte>.Shared.Rent(length);
        for (int i = 0; i < positions.Length; i++) WritePosition(positions[i], buffer.AsSpan(i * record, record));
        return length;
    }

    /// <summary>One packed position: its length, then its encoding, zero-padded to <see cref="PostgresStatements.PositionRecordLength"/> bytes.</summary>
    private static void WritePosition(in SmtPosition position, Span<byte> record)
    {
        record.Clear();
        record[0] = (byte)position.Encode(record[1..]);
    }

    /// <summary>Nodes as packed records (position, kind, hash, a, b) in a pooled buffer; returns the used length.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for an entry that is not a node.</exception>
    internal static int PackNodes(IReadOnlyList<SmtNodeEntry> nodes, string what, string list, out byte[]? buffer)
    {
        buffer = null;
        if (nodes.Count == 0) return 0;
        const int record = PostgresStatements.NodeRecordLength, field = FieldBytes.Length;
        int length = nodes.Count * record;
        buffer = ArrayPool<byte>.Shared.Rent(length);
        for (int i = 0; i < nodes.Count; i++)
        {
            var (hash, node, position) = nodes[i];
            var target = buffer.AsSpan(i * record, record);
            const int at = PostgresStatements.PositionRecordLength; // kind, then hash, a, b
            switch (node.Kind)
            {
                case SmtNodeKind.Middle:
                    node.Left.WriteBigEndian(target.Slice(at + 1 + field, field));
                    node.Right.WriteBigEndian(target.Slice(at + 1 + 2 * field, field));
                    break;
                case SmtNodeKind.Leaf:
                    node.Key.WriteBigEndian(target.Slice(at + 1 + field, field));
                    node.Value.WriteBigEndian(target.Slice(at + 1 + 2 * field, field));
                    break;
                default:
                    throw GridException.InvalidArgument($"{what} refused: {list}[{i}] ({hash}) is not a node (kind {(byte)node.Kind}).");
            }
            WritePosition(position, target[..at]);
            target[at] = (byte)node.Kind;
            hash.WriteBigEndian(target.Slice(at + 1, field));
        }
        return length;
    }

    private static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var p in parameters) command.Parameters.Add(p);
        return command;
    }

    private static NpgsqlParameter<long> Int64(string name, long value) => new(name, NpgsqlDbType.Bigint) { TypedValue = value };

    private static NpgsqlParameter<string> Text(string name, string value) => new(name, NpgsqlDbType.Text) { TypedValue = value };

    private static NpgsqlParameter<byte[]> Bytes(string name, byte[] value) => new(name, NpgsqlDbType.Bytea) { TypedValue = value };

    /// <summary>A bytea that may be NULL (an unbounded range end).</summary>
    private static NpgsqlParameter NullableBytes(string name, byte[]? value) =>
        new(name, NpgsqlDbType.Bytea) { Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter<byte[][]> ByteArrays(string name, byte[][] value) =>
        new(name, NpgsqlDbType.Array | NpgsqlDbType.Bytea) { TypedValue = value };

    internal static NpgsqlParameter<ReadOnlyMemory<byte>> Packed(string name, byte[] buffer, int length) =>
        new(name, NpgsqlDbType.Bytea) { TypedValue = buffer.AsMemory(0, length) };

    /// <summary>A shard row in <see cref="PostgresStatements"/>' shard column order.</summary>
    private static ShardState ReadShard(NpgsqlDataReader r)
    {
        long id = r.GetInt64(0);
        var range = ReadRange(r, 1, id);
        var root = FieldBytes.Read(r.GetFieldValue<byte[]>(5), $"root of shard {id}");
        return new ShardState(id, range, r.GetInt64(3), r.GetInt64(4), root, r.GetInt64(6), r.GetInt64(7), r.GetInt64(8));
    }

    /// <summary>A range from (range_start, range_end) at <paramref name="ordinal"/> and the next column.</summary>
    private static KeyRange ReadRange(NpgsqlDataReader r, int ordinal, long shardId)
    {
        var start = r.GetFieldValue<byte[]>(ordinal);
        var end = r.IsDBNull(ordinal + 1) ? null : r.GetFieldValue<byte[]>(ordinal + 1);
        try
        {
            return new KeyRange(start, end);
        }
        catch (GridException e)
        {
            throw new GridException(GridErrorCode.Corrupted, $"Stored range of shard {shardId} is invalid: {e.Message}", e);
        }
    }

    private static long NowMicros() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>The node in columns kind, a, b from <paramref name="ordinal"/> on.</summary>
    internal static SmtNode ReadNode(NpgsqlDataReader r, int ordinal, in Fr hash)
    {
        short kind = r.GetInt16(ordinal);
        var a = FieldBytes.ReadOfNode(r.GetFieldValue<byte[]>(ordinal + 1), "child/key", hash);
        var b = FieldBytes.ReadOfNode(r.GetFieldValue<byte[]>(ordinal + 2), "child/value", hash);
        return kind switch
        {
            (short)SmtNodeKind.Middle => SmtNode.Middle(a, b),
            (short)SmtNodeKind.Leaf => SmtNode.Leaf(a, b),
            _ => throw new GridException(GridErrorCode.Corrupted, $"Stored node {hash} has unknown kind {kind}: the store is corrupt."),
        };
    }

    private sealed class NodeReader(PostgresShardStore store, long shardId) : IShardNodeReader
    {
        /// <summary>Positions per statement: the packed parameter stays well under a MB.</summary>
        private const int MaxPositionsPerStatement = 16 * 1024;

        public bool TryGetNode(in Fr hash, in SmtPosition position, out SmtNode node)
        {
            using var connection = Open();
            try
            {
                using var command = new NpgsqlCommand(PostgresStatements.SelectNode, connection);
                command.Parameters.Add(Int64("id", shardId));
                command.Parameters.Add(Bytes("pos", position.ToBytes()));
                using var r = command.ExecuteReader(CommandBehavior.SingleRow);
                if (!r.Read() || FieldBytes.ReadHashAt(r.GetFieldValue<byte[]>(0), position, shardId) != hash)
                {
                    node = default;
                    return false;
                }
                node = ReadNode(r, 1, hash);
                return true;
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, store._where, $"Reading a tree node of shard {shardId}");
            }
        }

        public void GetNodes(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
        {
            NodeLookups.CheckSpans(hashes, positions, nodes, found);
            found.Clear();
            if (hashes.IsEmpty) return;
            var index = new Dictionary<SmtPosition, int>(hashes.Length);
            for (int i = 0; i < hashes.Length; i++) index.TryAdd(positions[i], i);
            using var connection = Open();
            try
            {
                for (int start = 0; start < hashes.Length; start += MaxPositionsPerStatement)
                {
                    int length = PackPositions(positions.Slice(start, Math.Min(MaxPositionsPerStatement, hashes.Length - start)), out var packed);
                    try
                    {
                        using var command = new NpgsqlCommand(PostgresStatements.SelectNodes, connection);
                        command.Parameters.Add(Int64("id", shardId));
                        command.Parameters.Add(Packed("positions", packed!, length));
                        using var r = command.ExecuteReader();
                        while (r.Read())
                        {
                            var position = DecodePosition(r.GetFieldValue<byte[]>(0));
                            if (!index.TryGetValue(position, out int i)) continue;
                            var hash = FieldBytes.ReadHashAt(r.GetFieldValue<byte[]>(1), position, shardId);
                            if (hash != hashes[i]) continue; // another node sits there: not the one asked for
                            nodes[i] = ReadNode(r, 2, hash);
                            found[i] = true;
                        }
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(packed!);
                    }
                }
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Map(e, store._where, $"Reading {hashes.Length} tree nodes of shard {shardId}");
            }
            // A position asked for twice gets its answer in each place (if the same hash was asked there).
            for (int i = 0; i < hashes.Length; i++)
            {
                if (found[i] || !index.TryGetValue(positions[i], out int first) || first == i || !found[first] || hashes[first] != hashes[i]) continue;
                nodes[i] = nodes[first];
                found[i] = true;
            }
        }

        private SmtPosition DecodePosition(byte[] encoded)
        {
            try
            {
                return SmtPosition.Decode(encoded);
            }
            catch (FormatException e)
            {
                throw new GridException(GridErrorCode.Corrupted, $"A tree node of shard {shardId} in {store._where} has a malformed position: {e.Message}", e);
            }
        }

        private NpgsqlConnection Open()
        {
            store.ThrowIfDisposed();
            try
            {
                return store._dataSource.OpenConnection();
            }
            catch (Exception e) when (PostgresErrors.IsDatabaseFailure(e))
            {
                throw PostgresErrors.Connect(e, store._where);
            }
        }

        public void Dispose()
        {
            // Holds no session of its own.
        }
    }
}
