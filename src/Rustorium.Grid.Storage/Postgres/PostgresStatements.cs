namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Every SQL statement the PostgreSQL provider runs after its schema exists, in one place. The schema itself lives in
/// the versioned scripts under <c>Postgres/Sql/</c> (applied by <see cref="PostgresMigrator"/>).
/// </summary>
/// <remarks>
/// Tables are named without a schema: every session of the store has <c>search_path</c> set to the store's schema. All
/// values are bound as parameters. Bulk statements take whole arrays (<c>unnest</c>) or one packed <c>bytea</c> of
/// fixed-width records (tree nodes), so a commit is a handful of statements whatever its size, and every statement of
/// the commit batch returns exactly one result set, so the batch's results are read in statement order.
/// </remarks>
internal static class PostgresStatements
{
    // ---------------------------------------------------------------- shards

    private const string ShardColumns = "id, range_start, range_end, version, epoch, root, key_count, updated_at";

    public const string SelectShards = "SELECT " + ShardColumns + " FROM shards ORDER BY range_start";

    public const string SelectShard = "SELECT " + ShardColumns + " FROM shards WHERE id = @id";

    public const string ShardExists = "SELECT EXISTS (SELECT 1 FROM shards WHERE id = @id)";

    /// <summary>Serialises the initialisations of one schema (silos starting together) until the end of the transaction.</summary>
    public const string LockInitialize = "SELECT pg_advisory_xact_lock(hashtext('rustorium-grid-initialize:' || @schema))";

    public const string CountShards = "SELECT count(*) FROM shards";

    /// <summary>The whole layout in one statement: ids, starts and ends (NULL = unbounded) as three parallel arrays.</summary>
    public const string InsertShards =
        "INSERT INTO shards (" + ShardColumns + ") " +
        "SELECT t.id, t.range_start, t.range_end, 0, 0, @root, 0, @updated_at FROM unnest(@ids, @starts, @ends) AS t(id, range_start, range_end)";

    public const string ClaimShard = "UPDATE shards SET epoch = epoch + 1 WHERE id = @id RETURNING " + ShardColumns;

    // ---------------------------------------------------------------- the commit batch (one round trip, in this order)

    /// <summary>
    /// 1. Locks the shard's row (the lock an UPDATE takes; a claim or another commit of the shard waits for it) and reads what
    /// the commit is checked against. No row: unknown shard.
    /// </summary>
    public const string LockShardForCommit =
        "SELECT epoch, version, range_start, range_end, key_count FROM shards WHERE id = @id FOR NO KEY UPDATE";

    /// <summary>2. Moves the shard, conditioned on its epoch and version (one row returned when it applied).</summary>
    public const string UpdateShardAfterCommit =
        "UPDATE shards SET version = @new_version, root = @root, key_count = @key_count, updated_at = @ts " +
        "WHERE id = @id AND epoch = @epoch AND version = @expected_version RETURNING 1";

    /// <summary>
    /// 3. Upserts the rows (keys and values as parallel arrays) and counts the keys that were new: a freshly inserted
    /// tuple has no <c>xmax</c>, one that replaced a stored row carries this transaction's id there.
    /// </summary>
    public const string UpsertRows =
        "WITH written AS (" +
        "INSERT INTO rows (shard_id, key, value, version, ts) " +
        "SELECT @id, t.key, t.value, @new_version, @ts FROM unnest(@keys, @values) AS t(key, value) " +
        "ON CONFLICT (shard_id, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, ts = EXCLUDED.ts " +
        "RETURNING xmax = 0 AS inserted) " +
        "SELECT count(*) FILTER (WHERE inserted) FROM written";

    /// <summary>4. Deletes rows and counts those that existed.</summary>
    public const string DeleteRows =
        "WITH deleted AS (DELETE FROM rows WHERE shard_id = @id AND key = ANY (@keys) RETURNING 1) SELECT count(*) FROM deleted";

    /// <summary>
    /// 5. Removes tree nodes; <c>@hashes</c> is the hashes packed back to back, 32 bytes each (an array, not a join, so the
    /// primary key is probed once per hash).
    /// </summary>
    public const string DeleteNodes =
        "WITH removed AS (DELETE FROM smt_nodes WHERE shard_id = @id AND hash = ANY (ARRAY(" +
        "SELECT substring(@hashes FROM i * 32 + 1 FOR 32) FROM generate_series(0, length(@hashes) / 32 - 1) AS i)) RETURNING 1) " +
        "SELECT count(*) FROM removed";

    /// <summary>Bytes of one packed node record of <see cref="InsertNodes"/>: kind (1), hash, a, b (32 each) = 97, the
    /// number written out in that statement's offsets.</summary>
    public const int NodeRecordLength = 1 + 3 * FieldBytes.Length;

    /// <summary>
    /// 6. Adds tree nodes (after the removals: a hash in both lists stays stored); <c>@nodes</c> is the nodes packed as
    /// <see cref="NodeRecordLength"/>-byte records. A node already stored under its hash has the same content by
    /// construction: it is kept.
    /// </summary>
    public const string InsertNodes =
        "WITH added AS (INSERT INTO smt_nodes (shard_id, hash, kind, a, b) " +
        "SELECT @id, substring(@nodes FROM i * 97 + 2 FOR 32), get_byte(@nodes, i * 97), " +
        "substring(@nodes FROM i * 97 + 34 FOR 32), substring(@nodes FROM i * 97 + 66 FOR 32) " +
        "FROM generate_series(0, length(@nodes) / 97 - 1) AS i " +
        "ON CONFLICT (shard_id, hash) DO NOTHING RETURNING 1) " +
        "SELECT count(*) FROM added";

    // ---------------------------------------------------------------- splits and merges (two round trips: read and check, then write)

    /// <summary>
    /// Takes <c>@count</c> new shard ids from 0004's counter and returns the last of them (the ids are the <c>@count</c>
    /// numbers up to it): never an id given before, also after merges. The UPDATE locks the counter's row until the end of
    /// the transaction, so concurrent splits (and layouts) queue here and get different ids; a rolled-back split gives its
    /// id back. A split takes it after its shard's row lock and before any other (the generation row of 0002 stays the
    /// last lock). The counter only moves up; it is also raised to the largest id present, so ids inserted behind its back
    /// (by a silo of a build before 0004, during a rolling upgrade) are not handed out again.
    /// </summary>
    public const string AllocateShardIds =
        "UPDATE shard_id_counter SET last_id = greatest(last_id, (SELECT coalesce(max(id), 0) FROM shards)) + @count " +
        "WHERE singleton RETURNING last_id";

    /// <summary>Rows of a shard below and from the split key: one walk of the shard's part of the primary key.</summary>
    public const string CountRowsAroundSplit =
        "SELECT count(*) FILTER (WHERE key < @split), count(*) FILTER (WHERE key >= @split) FROM rows WHERE shard_id = @id";

    /// <summary>
    /// Locks both shards of a merge, in id order whatever their roles (so two merges of the same pair, or a merge and a
    /// reversed merge, queue instead of deadlocking), and reads what the merge is checked against. The right shard is
    /// deleted, hence FOR UPDATE.
    /// </summary>
    public const string LockShardsForMerge =
        "SELECT id, epoch, version, range_start, range_end, key_count FROM shards WHERE id IN (@left, @right) ORDER BY id FOR UPDATE";

    /// <summary>Rows of one shard.</summary>
    public const string CountRows = "SELECT count(*) FROM rows WHERE shard_id = @id";

    /// <summary>
    /// The right shard of a split, copied from the left one's row before it moves: its old end, its epoch and, in a cluster,
    /// its owner (0002's columns) — the same owner serves both halves until the directory moves one.
    /// </summary>
    public const string InsertSplitShard =
        "INSERT INTO shards (id, range_start, range_end, version, epoch, root, key_count, updated_at, owner_endpoint, owner_generation) " +
        "SELECT @new_id, @split, range_end, @new_version, epoch, @root, @key_count, @ts, owner_endpoint, owner_generation " +
        "FROM shards WHERE id = @id AND epoch = @epoch AND version = @expected_version";

    /// <summary>Hands a shard's rows from a key on (the empty key: all of them) to another shard; they keep their version and time.</summary>
    public const string MoveRowsFrom = "UPDATE rows SET shard_id = @to WHERE shard_id = @id AND key >= @from";

    /// <summary>Drops a shard's whole tree (the split or merge then stores the complete new one).</summary>
    public const string DeleteShardNodes = "DELETE FROM smt_nodes WHERE shard_id = @id";

    /// <summary>Moves a shard to its new end (NULL: unbounded), version, root and key count, conditioned on its epoch and version.</summary>
    public const string UpdateShardRange =
        "UPDATE shards SET range_end = @range_end, version = @new_version, root = @root, key_count = @key_count, updated_at = @ts " +
        "WHERE id = @id AND epoch = @epoch AND version = @expected_version";

    /// <summary>Removes the right shard of a merge, conditioned on its epoch and version.</summary>
    public const string DeleteShard = "DELETE FROM shards WHERE id = @id AND epoch = @epoch AND version = @expected_version";

    // ---------------------------------------------------------------- reads

    /// <summary>One row and whether its shard exists, in one statement: (shard id, value, version, ts), value NULL when absent.</summary>
    public const string SelectRow =
        "SELECT r.value, r.version, r.ts FROM shards s LEFT JOIN rows r ON r.shard_id = s.id AND r.key = @key WHERE s.id = @id";

    public const string ScanRows =
        "SELECT key, value, version, ts FROM rows WHERE shard_id = @id AND key >= @start AND key < @end ORDER BY key LIMIT @limit";

    public const string ScanRowsToEnd =
        "SELECT key, value, version, ts FROM rows WHERE shard_id = @id AND key >= @start ORDER BY key LIMIT @limit";

    public const string SelectNode = "SELECT kind, a, b FROM smt_nodes WHERE shard_id = @id AND hash = @hash";
}
