using Rustorium.Grid.Crypto.Smt;

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

    private const string ShardColumns = "id, range_start, range_end, version, epoch, root, key_count, updated_at, tree_version";

    public const string SelectShards = "SELECT " + ShardColumns + " FROM shards ORDER BY range_start";

    public const string SelectShard = "SELECT " + ShardColumns + " FROM shards WHERE id = @id";

    public const string ShardExists = "SELECT EXISTS (SELECT 1 FROM shards WHERE id = @id)";

    /// <summary>Serialises the initialisations of one schema (silos starting together) until the end of the transaction.</summary>
    public const string LockInitialize = "SELECT pg_advisory_xact_lock(hashtext('rustorium-grid-initialize:' || @schema))";

    public const string CountShards = "SELECT count(*) FROM shards";

    /// <summary>The whole layout in one statement: ids, starts and ends (NULL = unbounded) as three parallel arrays.</summary>
    public const string InsertShards =
        "INSERT INTO shards (" + ShardColumns + ") " +
        "SELECT t.id, t.range_start, t.range_end, 0, 0, @root, 0, @updated_at, 0 FROM unnest(@ids, @starts, @ends) AS t(id, range_start, range_end)";

    public const string ClaimShard = "UPDATE shards SET epoch = epoch + 1 WHERE id = @id RETURNING " + ShardColumns;

    // ---------------------------------------------------------------- the commit batch (one round trip, in this order)

    /// <summary>
    /// 1. Locks the shard's row (the lock an UPDATE takes; a claim or another commit of the shard waits for it) and reads what
    /// the commit is checked against. No row: unknown shard.
    /// </summary>
    public const string LockShardForCommit =
        "SELECT epoch, version, range_start, range_end, key_count, tree_version FROM shards WHERE id = @id FOR NO KEY UPDATE";

    /// <summary>
    /// 2. Writes the rows and moves the shard in one statement, returning (inserted, deleted, applied). The rows are upserted
    /// (keys and values as parallel arrays) and deleted (an array of keys) whatever the shard's state — a refused commit is
    /// rolled back —, and the shard's key count moves by what they did: a freshly inserted tuple has no <c>xmax</c>, one
    /// that replaced a stored row carries this transaction's id there; a delete counts the rows that existed. So the store
    /// counts (a data commit claims no count) without a second round trip. The shard moves only if its epoch and version
    /// are the expected ones (applied = false otherwise). Upsert and delete never meet on one key (a commit writes each key
    /// once), so sharing the statement's snapshot is safe.
    /// </summary>
    private const string WriteRowsAndMoveShardPrefix =
        "WITH upserted AS (" +
        "INSERT INTO rows (shard_id, key, value, version, ts) " +
        "SELECT @id, t.key, t.value, @new_version, @ts FROM unnest(@put_keys, @put_values) AS t(key, value) " +
        "ON CONFLICT (shard_id, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, ts = EXCLUDED.ts " +
        "RETURNING xmax = 0 AS inserted), " +
        "deleted AS (DELETE FROM rows WHERE shard_id = @id AND key = ANY (@delete_keys) RETURNING 1), " +
        "counted AS (SELECT (SELECT count(*) FILTER (WHERE inserted) FROM upserted) AS inserted, (SELECT count(*) FROM deleted) AS deleted), " +
        "moved AS (UPDATE shards SET version = @new_version, key_count = key_count + counted.inserted - counted.deleted, updated_at = @ts";

    private const string WriteRowsAndMoveShardSuffix =
        " FROM counted WHERE id = @id AND epoch = @epoch AND version = @expected_version RETURNING 1) " +
        "SELECT inserted, deleted, EXISTS (SELECT 1 FROM moved) FROM counted";

    /// <summary>2, combined commit: rows and tree together; the tree moves to the new version with the new root.</summary>
    public const string WriteRowsAndMoveShardAndTree =
        WriteRowsAndMoveShardPrefix + ", root = @root, tree_version = @new_version" + WriteRowsAndMoveShardSuffix;

    /// <summary>2, data commit: rows only; the root and the tree version stay.</summary>
    public const string WriteRowsAndMoveShard = WriteRowsAndMoveShardPrefix + WriteRowsAndMoveShardSuffix;

    /// <summary>
    /// 3, data commit: records every key it wrote (upserts and deletes, one array) as unfolded at its version, until a tree
    /// commit passes that version.
    /// </summary>
    public const string RecordUnfoldedKeys =
        "WITH recorded AS (INSERT INTO unfolded_keys (shard_id, version, key) " +
        "SELECT @id, @new_version, t.key FROM unnest(@keys) AS t(key) RETURNING 1) " +
        "SELECT count(*) FROM recorded";

    /// <summary>Bytes of one packed position of <see cref="DeleteNodes"/> and <see cref="SelectNodes"/>: its encoded length (1),
    /// then the encoding padded to 33 bytes = 34, the number written out in those statements' offsets.</summary>
    public const int PositionRecordLength = 1 + SmtPosition.MaxEncodedLength;

    /// <summary>
    /// 3, combined commit (and tree commit): empties tree positions; <c>@positions</c> is the positions packed as
    /// <see cref="PositionRecordLength"/>-byte records (an array, not a join, so the primary key is probed once each).
    /// </summary>
    public const string DeleteNodes =
        "WITH removed AS (DELETE FROM tree_nodes WHERE shard_id = @id AND pos = ANY (ARRAY(" +
        "SELECT substring(@positions FROM i * 34 + 2 FOR get_byte(@positions, i * 34)) " +
        "FROM generate_series(0, length(@positions) / 34 - 1) AS i)) RETURNING 1) " +
        "SELECT count(*) FROM removed";

    /// <summary>Bytes of one packed node record of <see cref="InsertNodes"/>: position length (1), position (33, padded),
    /// kind (1), hash, a, b (32 each) = 131, the number written out in that statement's offsets.</summary>
    public const int NodeRecordLength = PositionRecordLength + 1 + 3 * FieldBytes.Length;

    /// <summary>
    /// 4, combined commit (and tree commit): stores tree nodes at their positions (after the removals), replacing the node
    /// there: a replaced node is an update of its row, which changes no indexed column (a HOT update where the page has
    /// room). <c>@nodes</c> is the nodes packed as <see cref="NodeRecordLength"/>-byte records, each position once.
    /// </summary>
    public const string InsertNodes =
        "WITH added AS (INSERT INTO tree_nodes (shard_id, pos, kind, hash, a, b) " +
        "SELECT @id, substring(@nodes FROM i * 131 + 2 FOR get_byte(@nodes, i * 131)), get_byte(@nodes, i * 131 + 34), " +
        "substring(@nodes FROM i * 131 + 36 FOR 32), substring(@nodes FROM i * 131 + 68 FOR 32), substring(@nodes FROM i * 131 + 100 FOR 32) " +
        "FROM generate_series(0, length(@nodes) / 131 - 1) AS i " +
        "ON CONFLICT (shard_id, pos) DO UPDATE SET hash = excluded.hash, kind = excluded.kind, a = excluded.a, b = excluded.b RETURNING 1) " +
        "SELECT count(*) FROM added";

    // ---------------------------------------------------------------- the tree commit batch (one round trip, in this order)

    // (after the node changes, DeleteNodes and InsertNodes as in a combined commit, so the shard's row is locked last)

    /// <summary>1. Locks the shard's row (as a commit does) and reads what a tree commit is checked against. No row: unknown shard.</summary>
    public const string LockShardForTreeCommit = "SELECT epoch, version, tree_version FROM shards WHERE id = @id FOR NO KEY UPDATE";

    /// <summary>
    /// 2. Moves the shard's tree to its new version and root, conditioned on its epoch and tree version and on the new tree
    /// version not being past the data (one row returned when it applied).
    /// </summary>
    public const string UpdateShardTree =
        "UPDATE shards SET root = @root, tree_version = @new_tree_version " +
        "WHERE id = @id AND epoch = @epoch AND tree_version = @expected_tree_version AND version >= @new_tree_version RETURNING 1";

    /// <summary>5. Forgets the unfolded keys the tree now holds: a prefix of the shard's part of the primary key.</summary>
    public const string DeleteUnfoldedThrough =
        "WITH folded AS (DELETE FROM unfolded_keys WHERE shard_id = @id AND version <= @new_tree_version RETURNING 1) SELECT count(*) FROM folded";

    /// <summary>
    /// The keys of a shard its tree does not hold yet, once each in key order, with their current values (NULL: deleted),
    /// and the shard's tree version and version: (tree_version, version, key, value). One statement, so one snapshot. No row:
    /// unknown shard; one row with a NULL key: nothing unfolded.
    /// </summary>
    public const string SelectUnfolded =
        "SELECT s.tree_version, s.version, u.key, r.value FROM shards s " +
        "LEFT JOIN (SELECT DISTINCT key FROM unfolded_keys WHERE shard_id = @id) u ON true " +
        "LEFT JOIN rows r ON r.shard_id = s.id AND r.key = u.key " +
        "WHERE s.id = @id ORDER BY u.key";

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
        "INSERT INTO shards (id, range_start, range_end, version, epoch, root, key_count, updated_at, tree_version, owner_endpoint, owner_generation) " +
        "SELECT @new_id, @split, range_end, @new_version, epoch, @root, @key_count, @ts, @new_version, owner_endpoint, owner_generation " +
        "FROM shards WHERE id = @id AND epoch = @epoch AND version = @expected_version";

    /// <summary>Hands a shard's rows from a key on (the empty key: all of them) to another shard; they keep their version and time.</summary>
    public const string MoveRowsFrom = "UPDATE rows SET shard_id = @to WHERE shard_id = @id AND key >= @from";

    /// <summary>Drops a shard's whole tree (the split or merge then stores the complete new one).</summary>
    public const string DeleteShardNodes = "DELETE FROM tree_nodes WHERE shard_id = @id";

    /// <summary>Drops a shard's unfolded keys (a split or merge stores complete trees: nothing is left to fold).</summary>
    public const string DeleteShardUnfolded = "DELETE FROM unfolded_keys WHERE shard_id = @id";

    /// <summary>Moves a shard to its new end (NULL: unbounded), version, root and key count, its tree to that version, conditioned on
    /// its epoch and version.</summary>
    public const string UpdateShardRange =
        "UPDATE shards SET range_end = @range_end, version = @new_version, root = @root, key_count = @key_count, updated_at = @ts, " +
        "tree_version = @new_version " +
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

    /// <summary>The node at a position, with its hash (the reader checks it is the node the tree expects there).</summary>
    public const string SelectNode = "SELECT hash, kind, a, b FROM tree_nodes WHERE shard_id = @id AND pos = @pos";

    /// <summary>
    /// Many nodes in one round trip (a fold reads a tree level at a time), the positions packed as <see cref="DeleteNodes"/>
    /// takes them; rows come in no particular order.
    /// </summary>
    public const string SelectNodes =
        "SELECT pos, hash, kind, a, b FROM tree_nodes WHERE shard_id = @id AND pos = ANY (ARRAY(" +
        "SELECT substring(@positions FROM i * 34 + 2 FOR get_byte(@positions, i * 34)) " +
        "FROM generate_series(0, length(@positions) / 34 - 1) AS i))";

    // Schema 6's content-addressed node table, read once by the migration to schema 7 and then dropped.
    public const string OldNodesExist = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'smt_nodes'";

    public const string SelectOldNodes = "SELECT hash, kind, a, b FROM smt_nodes WHERE shard_id = @id";

    public const string SelectShardRoots = "SELECT id, root FROM shards ORDER BY id";

    public const string DropOldNodes = "DROP TABLE smt_nodes";
}
