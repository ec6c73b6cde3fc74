using Npgsql;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Brings a PostgreSQL schema up to date with the scripts embedded under <c>Postgres/Sql/NNNN_name.sql</c>: every
/// script not yet recorded in <c>schema_migrations</c> runs, in version order, in one transaction that holds an
/// advisory lock, so silos starting together migrate once and a schema is never left half-migrated.
/// </summary>
/// <remarks>
/// The same scripts serve the shard store and the cluster store (membership, directory): one schema holds both, so a
/// shard's ownership epoch and its data commits are checked against the same row. Applied scripts are recorded with
/// their SHA-256; an edited script or a version this build does not know (a newer build migrated the schema) is
/// refused with <see cref="GridErrorCode.Corrupted"/> rather than guessed at.
/// </remarks>
public static class PostgresMigrator
{
    private const string ResourcePrefix = "Rustorium.Grid.Storage.Postgres.Sql.";

    /// <summary>The embedded scripts, by version.</summary>
    public static IReadOnlyList<MigrationScript> All { get; } = MigrationScript.LoadEmbedded(ResourcePrefix, "PostgreSQL");

    /// <summary>The schema version this build writes.</summary>
    public static int LatestVersion => All[^1].Version;

    /// <summary>
    /// Creates <paramref name="schema"/> if needed and applies the missing migrations in it; returns the migrations that ran
    /// (empty when the schema was current).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> for an edited or unknown applied migration;
    /// <see cref="GridErrorCode.InvalidArgument"/> for a schema name that is not a plain identifier.</exception>
    /// <param name="connection">An open connection (no transaction).</param>
    /// <param name="schema">The schema to create or bring up to date.</param>
    /// <param name="cancellationToken">Cancels (the transaction then rolls back).</param>
    /// <param name="progress">Told about long steps, a line each (a migration that copies every shard's tree); may be null.</param>
    public static async Task<IReadOnlyList<MigrationScript>> MigrateAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken,
        Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var quoted = QuoteSchema(schema);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, tx, $"SELECT pg_advisory_xact_lock(hashtext('rustorium-grid-migrate:' || @schema))", cancellationToken, ("schema", schema))
            .ConfigureAwait(false);
        await ExecuteAsync(connection, tx, $"CREATE SCHEMA IF NOT EXISTS {quoted}", cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, tx, $"SET LOCAL search_path TO {quoted}", cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, tx, """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     NOT NULL PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, cancellationToken).ConfigureAwait(false);

        var applied = new Dictionary<int, (string Name, string Checksum)>();
        await using (var select = new NpgsqlCommand("SELECT version, name, checksum FROM schema_migrations", connection, tx))
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                applied[reader.GetInt32(0)] = (reader.GetString(1), reader.GetString(2));
        }
        foreach (var (version, (name, checksum)) in applied)
        {
            var known = All.FirstOrDefault(m => m.Version == version);
            if (known is null)
                throw new GridException(GridErrorCode.Corrupted,
                    $"PostgreSQL schema {schema} has migration {version} ({name}), which this build does not know (it knows up to {LatestVersion}); " +
                    "it was migrated by a newer version of the grid.");
            if (known.Checksum != checksum)
                throw new GridException(GridErrorCode.Corrupted,
                    $"PostgreSQL schema {schema}: migration {version} was applied from a script with checksum {checksum}, but this build's {known.Name} has {known.Checksum}.");
        }

        var ran = new List<MigrationScript>();
        foreach (var migration in All)
        {
            if (applied.ContainsKey(migration.Version)) continue;
            await ExecuteAsync(connection, tx, migration.Sql, cancellationToken).ConfigureAwait(false);
            if (migration.Version == TreeNodesByPosition) await CopyTreeNodesByPositionAsync(connection, tx, schema, progress, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, tx, "INSERT INTO schema_migrations (version, name, checksum) VALUES (@version, @name, @checksum)",
                cancellationToken, ("version", migration.Version), ("name", migration.Name), ("checksum", migration.Checksum)).ConfigureAwait(false);
            ran.Add(migration);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return ran;
    }

    /// <summary>The script that creates <c>tree_nodes</c>; its data step copies the trees there from <c>smt_nodes</c>.</summary>
    private const int TreeNodesByPosition = 7;

    /// <summary>Nodes per INSERT while copying a tree.</summary>
    private const int CopyChunk = 8192;

    /// <summary>
    /// Copies every shard's tree from the hash-keyed <c>smt_nodes</c> into <c>tree_nodes</c> at the positions a walk from
    /// the shard's root gives (one shard's nodes read in one query, walked in memory, written in chunks), then drops
    /// <c>smt_nodes</c>; in the migration's transaction: all or nothing.
    /// </summary>
    private static async Task CopyTreeNodesByPositionAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string schema, Action<string>? progress,
        CancellationToken cancellationToken)
    {
        await using (var exists = new NpgsqlCommand(PostgresStatements.OldNodesExist, connection, tx))
        {
            if (Convert.ToInt64(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 0)
                return;
        }
        var roots = new List<(long Id, Fr Root)>();
        await using (var select = new NpgsqlCommand(PostgresStatements.SelectShardRoots, connection, tx))
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                long id = reader.GetInt64(0);
                roots.Add((id, FieldBytes.Read(reader.GetFieldValue<byte[]>(1), $"root of shard {id}")));
            }
        }
        var report = new TreeNodeMigration.Report(progress, $"PostgreSQL schema {schema}", roots.Count);
        foreach (var (id, root) in roots)
        {
            if (root.IsZero)
            {
                report.ShardDone(id, 0);
                continue;
            }
            var old = new Dictionary<Fr, SmtNode>();
            await using (var select = new NpgsqlCommand(PostgresStatements.SelectOldNodes, connection, tx))
            {
                select.Parameters.AddWithValue("id", id);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var hash = FieldBytes.Read(reader.GetFieldValue<byte[]>(0), $"hash of a node of shard {id}");
                    old[hash] = PostgresShardStore.ReadNode(reader, 1, hash);
                }
            }
            var entries = new List<SmtNodeEntry>(old.Count);
            TreeNodeMigration.Copy(root, h => old.TryGetValue(h, out var node) ? node : null, entries.Add,
                $"Migrating the tree of shard {id} in PostgreSQL schema {schema} to nodes keyed by position");
            for (int start = 0; start < entries.Count; start += CopyChunk)
            {
                int length = PostgresShardStore.PackNodes(entries.GetRange(start, Math.Min(CopyChunk, entries.Count - start)),
                    "Migration", "nodes", out var packed);
                try
                {
                    await using var insert = new NpgsqlCommand(PostgresStatements.InsertNodes, connection, tx);
                    insert.Parameters.AddWithValue("id", id);
                    insert.Parameters.Add(PostgresShardStore.Packed("nodes", packed!, length));
                    await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(packed!);
                }
            }
            report.ShardDone(id, entries.Count);
        }
        report.Done();
        await ExecuteAsync(connection, tx, PostgresStatements.DropOldNodes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The schema name as a quoted identifier; only letters, digits and underscores (starting with a letter or underscore), at most 63 characters.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> otherwise.</exception>
    public static string QuoteSchema(string schema)
    {
        if (string.IsNullOrEmpty(schema) || schema.Length > 63 || !(char.IsAsciiLetter(schema[0]) || schema[0] == '_')
            || !schema.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw GridException.InvalidArgument(
                $"A PostgreSQL schema name must be 1 to 63 ASCII letters, digits or underscores, not starting with a digit; got '{schema}'.");
        return "\"" + schema + "\"";
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken cancellationToken,
        params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection, tx);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
