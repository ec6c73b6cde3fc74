using Microsoft.Data.Sqlite;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>
/// Brings a store's schema up to date with the scripts embedded under <c>Sqlite/Sql/NNNN_name.sql</c>: every script
/// not yet recorded in <c>schema_migrations</c> runs, in version order, all inside one transaction, so a store is never
/// left half-migrated.
/// </summary>
/// <remarks>
/// Applied scripts are recorded with their SHA-256; a store whose recorded script differs from the embedded one (an
/// edited migration) or that has versions this build does not know (written by a newer build) is refused rather than
/// guessed at.
/// </remarks>
internal static class SqliteMigrator
{
    private const string ResourcePrefix = "Rustorium.Grid.Storage.Sqlite.Sql.";

    /// <summary>The embedded scripts, by version.</summary>
    public static IReadOnlyList<MigrationScript> All { get; } = MigrationScript.LoadEmbedded(ResourcePrefix, "SQLite");

    /// <summary>The schema version this build writes.</summary>
    public static int LatestVersion => All[^1].Version;

    /// <summary>Applies the missing migrations on <paramref name="connection"/> (which holds no transaction); returns how many ran.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> for an edited or unknown applied migration.</exception>
    public static int Migrate(SqliteConnection connection, string path, long nowMicros, Action<string>? progress = null)
    {
        using var tx = connection.BeginTransaction(); // BEGIN IMMEDIATE: a second process opening the store waits for us
        var applied = ReadApplied(connection, tx);
        foreach (var (version, (name, checksum)) in applied)
        {
            var known = All.FirstOrDefault(m => m.Version == version);
            if (known is null)
                throw SqliteErrors.Corrupted(path,
                    $"its schema has migration {version} ({name}), which this build does not know (it knows up to {LatestVersion}); " +
                    "it was written by a newer version of the grid.");
            if (known.Checksum != checksum)
                throw SqliteErrors.Corrupted(path,
                    $"its migration {version} was applied from a script with checksum {checksum}, but this build's {known.Name} has {known.Checksum}.");
        }

        int ran = 0;
        foreach (var migration in All)
        {
            if (applied.ContainsKey(migration.Version)) continue;
            using (var script = new SqliteCommand(migration.Sql, connection, tx)) script.ExecuteNonQuery();
            if (migration.Version == TreeNodesByPosition) CopyTreeNodesByPosition(connection, tx, path, progress);
            using var record = new SqliteCommand(SqliteStatements.InsertMigration, connection, tx);
            record.Parameters.AddWithValue("$version", migration.Version);
            record.Parameters.AddWithValue("$name", migration.Name);
            record.Parameters.AddWithValue("$checksum", migration.Checksum);
            record.Parameters.AddWithValue("$applied_at", nowMicros);
            record.ExecuteNonQuery();
            ran++;
        }
        tx.Commit();
        return ran;
    }

    /// <summary>The script that creates <c>tree_nodes</c>; its data step copies the trees there from <c>smt_nodes</c>.</summary>
    private const int TreeNodesByPosition = 4;

    /// <summary>
    /// Copies every shard's tree from the hash-keyed <c>smt_nodes</c> into <c>tree_nodes</c> at the positions a walk from
    /// the shard's root gives, then drops <c>smt_nodes</c> (in the migration's transaction: all or nothing).
    /// </summary>
    private static void CopyTreeNodesByPosition(SqliteConnection connection, SqliteTransaction tx, string path, Action<string>? progress)
    {
        using (var exists = new SqliteCommand(SqliteStatements.OldNodesExist, connection, tx))
        {
            if (Convert.ToInt64(exists.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0) return;
        }
        var roots = new List<(long Id, byte[] Root)>();
        using (var select = new SqliteCommand(SqliteStatements.SelectShardRoots, connection, tx))
        using (var reader = select.ExecuteReader())
        {
            while (reader.Read()) roots.Add((reader.GetInt64(0), reader.GetFieldValue<byte[]>(1)));
        }

        using var read = new SqliteCommand(SqliteStatements.SelectOldNode, connection, tx);
        var readShard = read.Parameters.Add("$shard", SqliteType.Integer);
        var readHash = read.Parameters.Add("$hash", SqliteType.Blob);
        using var write = new SqliteNodeUpsert(connection);   // inside tx: the connection's open transaction
        var migration = new TreeNodeMigration.Report(progress, path, roots.Count);
        foreach (var (id, rootBytes) in roots)
        {
            string what = $"Migrating the tree of shard {id} in {path} to nodes keyed by position";
            readShard.Value = id;
            write.BindShard(id);
            long copied = TreeNodeMigration.Copy(FieldBytes.Read(rootBytes, $"root of shard {id}"), h =>
            {
                readHash.Value = FieldBytes.ToBytes(h);
                using var r = read.ExecuteReader();
                return r.Read() ? SqliteRecords.ReadNode(r, h) : null;
            }, entry =>
            {
                if (!write.TryStore(entry)) throw new GridException(GridErrorCode.Corrupted, $"{what}: node {entry.Hash} has no valid kind.");
            }, what);
            migration.ShardDone(id, copied);
        }
        migration.Done();
        using var drop = new SqliteCommand(SqliteStatements.DropOldNodes, connection, tx);
        drop.ExecuteNonQuery();
    }

    private static Dictionary<int, (string Name, string Checksum)> ReadApplied(SqliteConnection connection, SqliteTransaction tx)
    {
        var applied = new Dictionary<int, (string, string)>();
        using (var exists = new SqliteCommand(SqliteStatements.MigrationsTableExists, connection, tx))
        {
            if (Convert.ToInt64(exists.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0) return applied;
        }
        using var select = new SqliteCommand(SqliteStatements.SelectMigrations, connection, tx);
        using var reader = select.ExecuteReader();
        while (reader.Read()) applied[reader.GetInt32(0)] = (reader.GetString(1), reader.GetString(2));
        return applied;
    }
}
