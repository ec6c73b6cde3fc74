using Npgsql;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Options of the PostgreSQL shard store (<see cref="PostgresShardStore"/>): which server and schema, and the session
/// limits that keep one stuck silo from blocking the others. Every default is stated on its property;
/// <see cref="Validate"/> runs when the store opens.
/// </summary>
/// <remarks>
/// The store sets, on every session it opens, <c>search_path</c> (to <see cref="Schema"/>), <c>synchronous_commit=on</c>,
/// <c>statement_timeout</c> and <c>idle_in_transaction_session_timeout</c>; values for these in the connection string are
/// overridden, and pooled sessions are not reset on close (<c>No Reset On Close</c>: they hold no session state). It also
/// turns PostgreSQL's JIT compiler off (<c>jit=off</c>), which the connection string's own <c>Options</c> can turn back on.
/// Everything else in the connection string (pool size, TLS, connect timeout, keepalive…) is used as given.
/// </remarks>
public sealed record PostgresShardStoreOptions
{
    /// <summary>The schema used when none is set: <c>rgrid</c>.</summary>
    public const string DefaultSchema = "rgrid";

    /// <summary>
    /// An Npgsql connection string (<c>Host=…;Port=…;Database=…;Username=…;Password=…</c>). Required. The user needs
    /// <c>CREATE</c> on the database the first time (the store creates <see cref="Schema"/> and its tables).
    /// </summary>
    public string? ConnectionString { get; init; }

    /// <summary>
    /// The schema holding the store's tables (created if missing); silos of one grid share it. Default
    /// <see cref="DefaultSchema"/>; 1 to 63 ASCII letters, digits or underscores, not starting with a digit nor with <c>pg_</c>.
    /// </summary>
    public string Schema { get; init; } = DefaultSchema;

    /// <summary>
    /// PostgreSQL ends a session of the store that stays idle inside an open transaction longer than this
    /// (<c>idle_in_transaction_session_timeout</c>), rolling the transaction back. It bounds how long a paused or
    /// partitioned silo that was in the middle of a commit can hold a shard's row lock and block its new owner.
    /// Default 5 s; 100 ms to 1 h.
    /// </summary>
    public TimeSpan IdleInTransactionSessionTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The silo incarnation these sessions belong to, in a cluster: their <c>application_name</c> is then
    /// <see cref="PostgresSessions.ApplicationNameFor"/> of it, so that when the cluster declares the silo dead its
    /// sessions are ended (a frozen commit's lock is released). Null (the default) outside a cluster.
    /// </summary>
    public Rustorium.Grid.Cluster.SiloAddress? SessionOwner { get; init; }

    /// <summary>
    /// Told about long work while the store opens, one line per step: a migration that copies every shard's tree (into
    /// nodes keyed by position) reports each shard and the total. Default none.
    /// </summary>
    public Action<string>? Progress { get; init; }

    /// <summary>
    /// Longest a single statement of the store may run, including waiting for a lock (<c>statement_timeout</c>); then
    /// it fails with <see cref="GridErrorCode.Timeout"/> and its transaction is rolled back. The client-side command
    /// timeout is set 5 s above it, so the server's own error normally arrives first. Default 30 s; 1 s to 1 h.
    /// </summary>
    public TimeSpan StatementTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Checks every option (the connection string is parsed, never contacted).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the option and what is wrong with
    /// it. Messages never repeat the connection string (it may hold a password).</exception>
    public void Validate() => _ = ParseConnectionString();

    /// <summary>Validates, then returns the connection string the store's sessions use (schema search path and session limits set).</summary>
    internal NpgsqlConnectionStringBuilder BuildSessionConnectionString()
    {
        var builder = ParseConnectionString();
        builder.SearchPath = PostgresMigrator.QuoteSchema(Schema);
        // Startup options become the session's defaults, so they survive the pool's connection reset.
        var limits = string.Join(' ',
            "-c synchronous_commit=on",
            $"-c statement_timeout={(long)StatementTimeout.TotalMilliseconds}",
            $"-c idle_in_transaction_session_timeout={(long)IdleInTransactionSessionTimeout.TotalMilliseconds}");
        // JIT off unless the connection string's own options turn it on (they come after it; the last -c wins).
        builder.Options = PostgresSessions.WithoutJit(builder.Options) + " " + limits;
        builder.CommandTimeout = (int)Math.Ceiling(StatementTimeout.TotalSeconds) + 5;
        if (SessionOwner is { } owner) builder.ApplicationName = PostgresSessions.ApplicationNameFor(owner);
        else if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = "rustorium-grid";
        // The store's statements are few and repeated: let the driver prepare them once per connection.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 32;
        // Sessions carry no state of their own (the settings above are startup options; SET LOCAL and advisory locks
        // are transaction-scoped), so a connection going back to the pool need not be reset. The reset is five
        // statements on the connection's next use (DISCARD ALL's parts): under load it cost PostgreSQL more CPU than
        // the data commits it served, one reset per node read of a cold tree.
        builder.NoResetOnClose = true;
        return builder;
    }

    /// <summary>Where the store lives, for messages: host, port, database and schema (never the user's password).</summary>
    internal string Describe()
    {
        try
        {
            var b = new NpgsqlConnectionStringBuilder(ConnectionString);
            return $"PostgreSQL {b.Host}:{b.Port}/{b.Database ?? b.Username ?? "(default database)"}, schema {Schema}";
        }
        catch (ArgumentException)
        {
            return $"PostgreSQL schema {Schema}";
        }
    }

    private NpgsqlConnectionStringBuilder ParseConnectionString()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
            throw Invalid("ConnectionString is not set; give an Npgsql connection string such as \"Host=db;Database=grid;Username=grid;Password=…\".");
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(ConnectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            // The parser may quote a fragment of the string (e.g. the part of an unquoted password after a ';'): say what
            // it found only when the string holds no password.
            bool hasPassword = ConnectionString.Contains("password", StringComparison.OrdinalIgnoreCase)
                || ConnectionString.Contains("pwd", StringComparison.OrdinalIgnoreCase);
            throw Invalid("ConnectionString is not a valid Npgsql connection string" +
                (hasPassword ? " (details withheld: it holds a password; check keywords, and quote values that contain ';')." : $": {e.Message}"));
        }
        if (string.IsNullOrWhiteSpace(builder.Host)) throw Invalid("ConnectionString names no Host.");

        string? schemaProblem = null;
        try
        {
            PostgresMigrator.QuoteSchema(Schema);
        }
        catch (GridException e)
        {
            schemaProblem = e.Message;
        }
        if (schemaProblem is not null) throw Invalid($"Schema: {schemaProblem}");
        if (Schema.StartsWith("pg_", StringComparison.OrdinalIgnoreCase))
            throw Invalid($"Schema must not start with \"pg_\" (reserved by PostgreSQL for system schemas); got '{Schema}'.");

        if (IdleInTransactionSessionTimeout < TimeSpan.FromMilliseconds(100) || IdleInTransactionSessionTimeout > TimeSpan.FromHours(1))
            throw Invalid($"IdleInTransactionSessionTimeout must be between 100 ms and 1 hour; got {IdleInTransactionSessionTimeout}.");
        if (StatementTimeout < TimeSpan.FromSeconds(1) || StatementTimeout > TimeSpan.FromHours(1))
            throw Invalid($"StatementTimeout must be between 1 second and 1 hour; got {StatementTimeout}.");
        return builder;
    }

    private static GridException Invalid(string message) => GridException.InvalidArgument($"PostgresShardStoreOptions: {message}");
}
