using Npgsql;

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
    public static async Task<IReadOnlyList<MigrationScript>> MigrateAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
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
            await ExecuteAsync(connection, tx, "INSERT INTO schema_migrations (version, name, checksum) VALUES (@version, @name, @checksum)",
                cancellationToken, ("version", migration.Version), ("name", migration.Name), ("checksum", migration.Checksum)).ConfigureAwait(false);
            ran.Add(migration);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return ran;
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
