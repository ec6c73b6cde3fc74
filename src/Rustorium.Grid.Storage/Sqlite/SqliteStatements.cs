namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>
/// Every SQL statement the SQLite provider runs after its schema exists, in one place. The schema itself lives
/// in the versioned scripts under <c>Sqlite/Sql/</c> (applied by <see cref="SqliteMigrator"/>).
/// </summary>
/// <remarks>
/// All values are bound as parameters; the only text ever formatted into SQL is the validated integers of
/// <see cref="SqliteShardStoreOptions"/> in the connection pragmas (SQLite does not bind PRAGMA arguments).
/// Keys and values are always bound as BLOBs: a TEXT value would sort before every BLOB and break the order.
/// </remarks>
internal static class SqliteStatements
{
    /// <summary>'RGSS': the <c>PRAGMA application_id</c> that 0001_initial.sql stamps on every grid store.</summary>
    public const long ApplicationId = 0x52475353;

    // ---------------------------------------------------------------- connection set-up

    public const string QuickCheck = "PRAGMA quick_check(20)";
    public const string IntegrityCheck = "PRAGMA integrity_check(20)";
    public const string ReadApplicationId = "PRAGMA application_id";
    public const string CountSchemaObjects = "SELECT count(*) FROM sqlite_schema";
    public const string EnableWal = "PRAGMA journal_mode = WAL";
    public const string DurableWrites = "PRAGMA synchronous = FULL";
    public const string EnforceForeignKeys = "PRAGMA foreign_keys = ON";
    public const string TempStoreInMemory = "PRAGMA temp_store = MEMORY";
    public const string Checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)";
    public const string Optimize = "PRAGMA optimize";

    /// <summary>SQLite waits up to this many milliseconds for a lock held by another connection.</summary>
    public static string BusyTimeout(int milliseconds) => $"PRAGMA busy_timeout = {milliseconds}";

    /// <summary>Page cache of one connection; a negative argument is in KiB.</summary>
    public static string CacheSize(int kibibytes) => $"PRAGMA cache_size = -{kibibytes}";

    // ---------------------------------------------------------------- migrations

    public const string MigrationsTableExists =
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'";

    public const string SelectMigrations = "SELECT version, name, checksum FROM schema_migrations ORDER BY version";

    public const string InsertMigration =
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($version, $name, $checksum, $applied_at)";

    // ---------------------------------------------------------------- shards

    private const string ShardColumns = "id, range_start, range_end, version, epoch, root, key_count, updated_at, tree_version";

    public const string CountShards = "SELECT count(*) FROM shards";

    public const string SelectShards = "SELECT " + ShardColumns + " FROM shards ORDER BY range_start";

    public const string SelectShard = "SELECT " + ShardColumns + " FROM shards WHERE id = $id";

    public const string ShardExists = "SELECT 1 FROM shards WHERE id = $id";

    public const string InsertShard =
        "INSERT INTO shards (" + ShardColumns + ") VALUES ($id, $range_start, $range_end, 0, 0, $root, 0, $updated_at, 0)";

    public const string ClaimShard = "UPDATE shards SET epoch = epoch + 1 WHERE id = $id RETURNING " + ShardColumns;

    /// <summary>What a commit checks its expectations against, read inside the commit's transaction.</summary>
    public const string SelectShardForCommit = "SELECT epoch, version, range_start, range_end, key_count, tree_version FROM shards WHERE id = $id";

    /// <summary>A combined commit ($root set) moves the tree with the data; a data commit ($root null) leaves root and tree version.</summary>
    public const string UpdateShardAfterCommit =
        "UPDATE shards SET version = $version, root = coalesce($root, root), " +
        "tree_version = CASE WHEN $root IS NULL THEN tree_version ELSE $version END, key_count = $key_count, updated_at = $updated_at " +
        "WHERE id = $id AND epoch = $epoch AND version = $expected_version";

    // ---------------------------------------------------------------- splits and merges (run by the writer, in one job)

    /// <summary>
    /// Takes <c>$count</c> new shard ids from 0002's counter and returns the last of them (the ids are the
    /// <c>$count</c> numbers up to it): never an id given before, also after merges. The counter only moves up; it is
    /// also raised to the largest id present, so the id of a shard inserted without it (by hand) is not given again. Runs
    /// inside the job that inserts the shards: a failed split rolls it back with the rest.
    /// </summary>
    public const string AllocateShardIds =
        "UPDATE shard_id_counter SET last_id = max(last_id, (SELECT coalesce(max(id), 0) FROM shards)) + $count " +
        "WHERE singleton = 1 RETURNING last_id";

    /// <summary>The right shard of a split: its range, the split's version, root and key count, and the left shard's epoch.</summary>
    public const string InsertSplitShard =
        "INSERT INTO shards (" + ShardColumns + ") VALUES ($id, $range_start, $range_end, $version, $epoch, $root, $key_count, $updated_at, $version)";

    /// <summary>
    /// Moves a shard to its new range, version, root and key count after a split or merge, conditioned like a commit on
    /// its epoch and version.
    /// </summary>
    public const string UpdateShardRange =
        "UPDATE shards SET range_end = $range_end, version = $version, tree_version = $version, root = $root, key_count = $key_count, " +
        "updated_at = $updated_at " +
        "WHERE id = $id AND epoch = $epoch AND version = $expected_version";

    /// <summary>Removes the right shard of a merge (its rows and nodes are gone by then), conditioned on its epoch and version.</summary>
    public const string DeleteShard = "DELETE FROM shards WHERE id = $id AND epoch = $epoch AND version = $expected_version";

    /// <summary>Rows of a shard from a key on (the empty key: all of them): a walk of the primary key's range.</summary>
    public const string CountRowsFrom = "SELECT count(*) FROM rows WHERE shard_id = $shard AND key >= $from";

    /// <summary>Hands a shard's rows from a key on (the empty key: all of them) to another shard; they keep their version and time.</summary>
    public const string MoveRowsFrom = "UPDATE rows SET shard_id = $to WHERE shard_id = $shard AND key >= $from";

    /// <summary>Drops a shard's whole tree (a split or merge then stores the complete new one).</summary>
    public const string DeleteShardNodes = "DELETE FROM tree_nodes WHERE shard_id = $shard";

    // ---------------------------------------------------------------- rows

    public const string SelectRow = "SELECT value, version, ts FROM rows WHERE shard_id = $shard AND key = $key";

    public const string ScanRows =
        "SELECT key, value, version, ts FROM rows WHERE shard_id = $shard AND key >= $start AND key < $end ORDER BY key LIMIT $limit";

    public const string ScanRowsToEnd =
        "SELECT key, value, version, ts FROM rows WHERE shard_id = $shard AND key >= $start ORDER BY key LIMIT $limit";

    /// <summary>Inserts a new key; affects 0 rows if the key exists (then <see cref="UpdateRow"/> runs), which is how a
    /// commit counts its keys exactly. Only the primary-key conflict is ignored, never a CHECK or NOT NULL failure.</summary>
    public const string InsertRowIfAbsent =
        "INSERT INTO rows (shard_id, key, value, version, ts) VALUES ($shard, $key, $value, $version, $ts) " +
        "ON CONFLICT (shard_id, key) DO NOTHING";

    public const string UpdateRow = "UPDATE rows SET value = $value, version = $version, ts = $ts WHERE shard_id = $shard AND key = $key";

    public const string DeleteRow = "DELETE FROM rows WHERE shard_id = $shard AND key = $key";

    // ---------------------------------------------------------------- tree nodes (0004_tree_nodes_by_position.sql)

    /// <summary>The node at a position, with its hash (the reader checks it is the node the tree expects there).</summary>
    public const string SelectNode = "SELECT hash, kind, a, b FROM tree_nodes WHERE shard_id = $shard AND pos = $pos";

    /// <summary>Stores a node at its position, replacing the node there: a replaced node changes in place.</summary>
    public const string UpsertNode =
        "INSERT INTO tree_nodes (shard_id, pos, hash, kind, a, b) VALUES ($shard, $pos, $hash, $kind, $a, $b) " +
        "ON CONFLICT (shard_id, pos) DO UPDATE SET hash = excluded.hash, kind = excluded.kind, a = excluded.a, b = excluded.b";

    public const string DeleteNode = "DELETE FROM tree_nodes WHERE shard_id = $shard AND pos = $pos";

    // Schema 3's content-addressed node table, read once by the migration to schema 4 and then dropped.
    public const string OldNodesExist = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'smt_nodes'";

    public const string SelectOldNode = "SELECT kind, a, b FROM smt_nodes WHERE shard_id = $shard AND hash = $hash";

    public const string SelectShardRoots = "SELECT id, root FROM shards ORDER BY id";

    public const string DropOldNodes = "DROP TABLE smt_nodes";

    // ---------------------------------------------------------------- the tree's lag (0003_unfolded_changes.sql)

    /// <summary>A key a data commit wrote, to fold into the tree later.</summary>
    public const string InsertUnfoldedKey = "INSERT INTO unfolded_keys (shard_id, version, key) VALUES ($shard, $version, $key)";

    /// <summary>Forgets the unfolded keys a tree commit folded (a prefix of the primary key).</summary>
    public const string DeleteUnfoldedThrough = "DELETE FROM unfolded_keys WHERE shard_id = $shard AND version <= $version";

    /// <summary>Forgets a shard's unfolded keys: a split or merge stores complete trees.</summary>
    public const string DeleteShardUnfolded = "DELETE FROM unfolded_keys WHERE shard_id = $shard";

    /// <summary>What a tree commit checks its expectations against.</summary>
    public const string SelectShardForTreeCommit = "SELECT epoch, version, tree_version FROM shards WHERE id = $id";

    public const string UpdateShardTree =
        "UPDATE shards SET root = $root, tree_version = $tree_version WHERE id = $id AND epoch = $epoch AND tree_version = $expected";

    /// <summary>Each unfolded key of a shard once, in key order, with its current value (NULL: deleted).</summary>
    public const string SelectUnfolded =
        "SELECT u.key, r.value FROM (SELECT DISTINCT key FROM unfolded_keys WHERE shard_id = $shard) AS u " +
        "LEFT JOIN rows AS r ON r.shard_id = $shard AND r.key = u.key ORDER BY u.key";
}
