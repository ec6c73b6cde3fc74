using Npgsql;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Options of the cluster store on PostgreSQL (<see cref="PostgresClusterStore"/>): which server, database and schema
/// hold the membership table and the shard directory. Every default is stated on its property; <see cref="Validate"/>
/// runs when the store opens.
/// </summary>
/// <remarks>
/// The cluster store shares its schema with the PostgreSQL shard store: a shard's owner and the epoch every commit of
/// the shard is conditioned on are one row, which is what makes ownership a fence (docs/membership.md). Give every silo
/// of one cluster the same database and <see cref="Schema"/>.
/// </remarks>
public sealed record PostgresClusterStoreOptions
{
    /// <summary>The default <see cref="Schema"/>: <c>rgrid</c>.</summary>
    public const string DefaultSchema = "rgrid";

    /// <summary>
    /// An Npgsql connection string (<c>Host=…;Port=…;Database=…;Username=…;Password=…</c>). Required. Its
    /// <c>Search Path</c> is replaced by <see cref="Schema"/>; pooling and timeouts are taken as given.
    /// </summary>
    public string ConnectionString { get; init; } = "";

    /// <summary>
    /// The schema holding the grid's tables, created and migrated when the store opens. Default <see cref="DefaultSchema"/>;
    /// 1 to 63 ASCII letters, digits or underscores, not starting with a digit.
    /// </summary>
    public string Schema { get; init; } = DefaultSchema;

    /// <summary>
    /// How long one statement may run before it fails with <see cref="GridErrorCode.Timeout"/>. Default 30 s; 1 s to 10 min
    /// (whole seconds: Npgsql's unit).
    /// </summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The silo incarnation these sessions belong to: their <c>application_name</c> is then
    /// <see cref="PostgresSessions.ApplicationNameFor"/> of it (see <see cref="PostgresShardStoreOptions.SessionOwner"/>).
    /// Null (the default) for tools.
    /// </summary>
    public Rustorium.Grid.Cluster.SiloAddress? SessionOwner { get; init; }

    /// <summary>Checks every option; connects to nothing.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the option and what is wrong with it
    /// (never echoing the connection string, which may hold a password).</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
            throw Invalid("ConnectionString is required (Host=…;Port=…;Database=…;Username=…).");
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(ConnectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
        {
            // Npgsql's messages name the keyword or the malformed part, not the values, so they are safe to show.
            throw Invalid($"ConnectionString is not a valid Npgsql connection string: {e.Message}");
        }
        if (string.IsNullOrWhiteSpace(builder.Host))
            throw Invalid("ConnectionString names no Host.");
        if (!IsPlainIdentifier(Schema))
            throw Invalid($"Schema must be 1 to 63 ASCII letters, digits or underscores, not starting with a digit; got '{Schema}'.");
        if (CommandTimeout < TimeSpan.FromSeconds(1) || CommandTimeout > TimeSpan.FromMinutes(10) || CommandTimeout.Ticks % TimeSpan.TicksPerSecond != 0)
            throw Invalid($"CommandTimeout must be a whole number of seconds between 1 s and 10 min; got {CommandTimeout}.");
    }

    /// <summary>The connection string the store connects with: <see cref="ConnectionString"/> with the schema as its search path.</summary>
    internal NpgsqlConnectionStringBuilder BuildConnectionString()
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString)
        {
            // Quoted: an unquoted name in search_path folds to lower case, and the migrator creates the schema quoted.
            SearchPath = PostgresMigrator.QuoteSchema(Schema),
            CommandTimeout = (int)CommandTimeout.TotalSeconds,
            // No session state (transaction-scoped locks and settings only): skip the pool's reset, as the shard store does.
            NoResetOnClose = true,
        };
        // JIT off unless the connection string turns it on (see PostgresShardStoreOptions.BuildSessionConnectionString).
        builder.Options = PostgresSessions.WithoutJit(builder.Options);
        if (SessionOwner is { } owner) builder.ApplicationName = PostgresSessions.ApplicationNameFor(owner);
        else if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = "rustorium-grid-cluster";
        return builder;
    }

    /// <summary>Where the store lives, for messages and logs: host, port, database and schema; never credentials.</summary>
    internal string Describe()
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString);
        return $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database ?? builder.Username ?? "?"} schema {Schema}";
    }

    private static bool IsPlainIdentifier(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 63 && (char.IsAsciiLetter(name[0]) || name[0] == '_')
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static GridException Invalid(string message) => GridException.InvalidArgument($"PostgresClusterStoreOptions: {message}");
}
