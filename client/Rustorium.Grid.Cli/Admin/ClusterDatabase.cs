using Rustorium.Grid.Storage;
using System.Net.Sockets;
using Npgsql;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Storage.Postgres;

namespace Rustorium.Grid.Cli.Admin;

/// <summary>
/// The cluster's PostgreSQL database as <c>grid admin</c> sees it: checks the connection string and schema before
/// connecting, runs the migrations, reads the membership table. Every failure is a <see cref="GridCommandException"/>
/// whose message names the server as host:port/database and schema, never by its connection string (it may hold a password).
/// </summary>
internal sealed class ClusterDatabase
{
    private readonly string _connectionString;

    private ClusterDatabase(string connectionString, string schema, string description)
    {
        _connectionString = connectionString;
        Schema = schema;
        Description = description;
    }

    /// <summary>The schema that holds the grid's tables.</summary>
    public string Schema { get; }

    /// <summary><c>PostgreSQL host:port/database schema s</c>, for messages.</summary>
    public string Description { get; }

    /// <summary>Checks <paramref name="connectionString"/> (Npgsql syntax, with a Host) and <paramref name="schema"/>; connects to nothing.</summary>
    /// <exception cref="GridCommandException"><see cref="ExitCode.BadInput"/> naming the option that is wrong.</exception>
    public static ClusterDatabase Parse(string? connectionString, string? schema)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw GridCommandException.BadInput("--postgres needs a connection string, e.g. \"Host=127.0.0.1;Port=55432;Username=postgres;Database=grid\".");
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
        {
            // Npgsql's messages name the keyword or the malformed part, not the values, so they are safe to show.
            throw GridCommandException.BadInput($"--postgres is not a valid Npgsql connection string: {e.Message}");
        }
        if (string.IsNullOrWhiteSpace(builder.Host)) throw GridCommandException.BadInput("--postgres names no Host.");
        schema ??= PostgresClusterStoreOptions.DefaultSchema;
        try
        {
            PostgresMigrator.QuoteSchema(schema);
        }
        catch (GridException e)
        {
            throw GridCommandException.BadInput($"--schema: {e.Message}");
        }
        if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = "grid-admin";
        var description = $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database ?? builder.Username ?? "?"} schema {schema}";
        return new ClusterDatabase(builder.ConnectionString, schema, description);
    }

    /// <summary>Applies the migrations this build knows that the schema lacks (creating the schema if needed); returns those that ran.</summary>
    public async Task<IReadOnlyList<MigrationScript>> MigrateAsync(CancellationToken ct, Action<string>? progress = null)
    {
        await using var connection = await OpenAsync(ct).ConfigureAwait(false);
        try
        {
            return await PostgresMigrator.MigrateAsync(connection, Schema, ct, progress).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            throw Failure(e, "Migrating");
        }
        catch (GridException e)
        {
            throw Failure(e);
        }
    }

    /// <summary>Every row of the membership table, ordered by endpoint then generation. Changes nothing.</summary>
    /// <exception cref="GridCommandException"><see cref="ExitCode.BadInput"/> if the schema has no membership table (not migrated, or a misspelt schema).</exception>
    public async Task<IReadOnlyList<SiloEntry>> ReadMembersAsync(CancellationToken ct)
    {
        // Look before opening the cluster store: opening it migrates, and a misspelt --schema must not create an empty schema.
        await using (var connection = await OpenAsync(ct).ConfigureAwait(false))
        {
            System.Data.DataTable tables;
            try
            {
                tables = await connection.GetSchemaAsync("Tables", [null, Schema, "silos", null], ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                throw Failure(e, "Looking for the membership table");
            }
            if (tables.Rows.Count == 0)
                throw GridCommandException.BadInput(
                    $"{Description} has no membership table: is the schema right, and has it been migrated (grid admin migrate, or a silo started with --store postgres)?");
        }
        try
        {
            await using var store = await PostgresClusterStore.OpenAsync(
                new PostgresClusterStoreOptions { ConnectionString = _connectionString, Schema = Schema }, ct).ConfigureAwait(false);
            return await store.ReadAllAsync(ct).ConfigureAwait(false);
        }
        catch (GridException e)
        {
            throw Failure(e);
        }
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new NpgsqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            return connection;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw Failure(e, "Connecting");
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A failure of the driver or the server: the database cannot be used now (exit 4), unless the server says the input was wrong.</summary>
    private GridCommandException Failure(Exception e, string operation)
    {
        if (e is PostgresException pg)
        {
            // Syntax errors, invalid names and the like: the server refused what it was asked; anything else it cannot do now.
            bool badInput = pg.SqlState.StartsWith("42", StringComparison.Ordinal) && pg.SqlState != PostgresErrorCodes.InsufficientPrivilege;
            return new GridCommandException(badInput ? ExitCode.BadInput : ExitCode.Unavailable,
                $"{operation}: {Description} answered {pg.SqlState} {pg.MessageText}{Hint(pg.SqlState)}", e);
        }
        string why = Innermost(e) switch
        {
            SocketException s => $"{s.SocketErrorCode} ({s.Message}); is PostgreSQL running there, and are Host and Port right?",
            TimeoutException => "no answer within the connect timeout (Timeout in the connection string).",
            _ => e.Message,
        };
        return new GridCommandException(ExitCode.Unavailable, $"{operation}: cannot reach {Description}: {why}", e);
    }

    /// <summary>A typed failure of the stores (already described by host, port, database and schema).</summary>
    private static GridCommandException Failure(GridException e) => new(e.Code switch
    {
        GridErrorCode.InvalidArgument => ExitCode.BadInput,
        GridErrorCode.Unavailable or GridErrorCode.Timeout => ExitCode.Unavailable,
        // A schema migrated by a newer build, or from edited scripts: this build cannot use it.
        GridErrorCode.Corrupted => ExitCode.IoError,
        _ => ExitCode.InternalError,
    }, $"{e.Code}: {e.Message}", e);

    private static string Hint(string state) => state switch
    {
        PostgresErrorCodes.InvalidCatalogName => " (create the database, or fix Database in --postgres)",
        PostgresErrorCodes.InsufficientPrivilege => " (the user must own or be granted the schema)",
        _ when state.StartsWith("28", StringComparison.Ordinal) => " (check Username and Password in --postgres)",
        _ => "",
    };

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
