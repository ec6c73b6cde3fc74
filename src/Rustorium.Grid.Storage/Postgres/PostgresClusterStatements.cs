namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Every SQL statement the cluster store runs, in one place. The tables come from <c>Postgres/Sql/0002_cluster.sql</c>
/// and <c>0003_grain_directory.sql</c> (applied by <see cref="PostgresMigrator"/>); the connection's search path is the grid's schema, so names are unqualified.
/// </summary>
/// <remarks>
/// All values are bound as parameters. Every time is the server's <c>clock_timestamp()</c> — the wall clock when the
/// statement runs, not <c>now()</c>, which is the start of the transaction and would make a join that waited for the
/// endpoint's lock look older than it is. No statement takes a time from the caller.
/// </remarks>
internal static class PostgresClusterStatements
{
    /// <summary>Status values as stored (<see cref="Cluster.SiloStatus"/>).</summary>
    private const string Dead = "3";

    // ---------------------------------------------------------------- membership

    /// <summary>A row as <see cref="Cluster.SiloEntry"/> reads it; the heartbeat's age is the server's, never negative.</summary>
    private const string SiloColumns =
        "endpoint, generation, name, region, http_endpoint, status, joined_at, last_heartbeat, " +
        "greatest(clock_timestamp() - last_heartbeat, interval '0') AS heartbeat_age, ops_per_second, activations";

    /// <summary>
    /// Serialises the joins of one endpoint (the lock ends with the transaction): without it two generations joining
    /// together could each miss the other and both stay active.
    /// </summary>
    public const string LockEndpoint = "SELECT pg_advisory_xact_lock(hashtext('rustorium-grid-silo:' || current_schema() || ':' || @endpoint))";

    /// <summary>The newest generation on the endpoint that is this one or later: a join of it is a conflict.</summary>
    public const string SameOrLaterGeneration =
        "SELECT generation FROM silos WHERE endpoint = @endpoint AND generation >= @generation ORDER BY generation DESC LIMIT 1";

    /// <summary>A restart supersedes every earlier incarnation on the endpoint.</summary>
    public const string SupersedeEarlierGenerations =
        "UPDATE silos SET status = " + Dead + " WHERE endpoint = @endpoint AND generation < @generation AND status <> " + Dead;

    /// <summary>Joins as Active, joined and heartbeating at one instant.</summary>
    public const string InsertSilo =
        "WITH clock AS (SELECT clock_timestamp() AS t) " +
        "INSERT INTO silos (endpoint, generation, name, region, http_endpoint, status, joined_at, last_heartbeat) " +
        "SELECT @endpoint, @generation, @name, @region, @http_endpoint, 1, t, t FROM clock " +
        "RETURNING " + SiloColumns;

    /// <summary>A heartbeat of a live member; a dead or unknown one changes nothing (0 rows).</summary>
    public const string Heartbeat =
        "UPDATE silos SET last_heartbeat = clock_timestamp() WHERE endpoint = @endpoint AND generation = @generation AND status <> " + Dead;

    /// <summary>A heartbeat that also records the silo's load (0006_silo_load.sql).</summary>
    public const string HeartbeatWithLoad =
        "UPDATE silos SET last_heartbeat = clock_timestamp(), ops_per_second = @ops_per_second, activations = @activations " +
        "WHERE endpoint = @endpoint AND generation = @generation AND status <> " + Dead;

    /// <summary>
    /// The failure detector's verdict, decided by the server's clock in the same statement that applies it. Under READ
    /// COMMITTED a concurrent heartbeat of the row makes this re-check the condition against the new heartbeat.
    /// </summary>
    public const string DeclareDead =
        "UPDATE silos SET status = " + Dead + " WHERE endpoint = @endpoint AND generation = @generation AND status <> " + Dead +
        " AND clock_timestamp() - last_heartbeat > @older_than";

    /// <summary>
    /// Ends every other session of the database named for a silo incarnation (its open transaction rolls back, its locks are
    /// released). Allowed for sessions of the same role, which is how silos connect.
    /// </summary>
    public const string TerminateSessions =
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity " +
        "WHERE application_name = @application_name AND datname = current_database() AND pid <> pg_backend_pid()";

    /// <summary>A clean move to ShuttingDown or Dead; never out of Dead.</summary>
    public const string SetStatus =
        "UPDATE silos SET status = @status WHERE endpoint = @endpoint AND generation = @generation AND status <> " + Dead;

    /// <summary>Every member, by endpoint (ordinal, whatever the database's collation) then generation.</summary>
    public const string SelectSilos = "SELECT " + SiloColumns + " FROM silos ORDER BY endpoint COLLATE \"C\", generation";

    // ---------------------------------------------------------------- shard directory

    /// <summary>A row as <see cref="Cluster.ShardOwnership"/> reads it.</summary>
    private const string ShardColumns = "id, range_start, range_end, owner_endpoint, owner_generation, epoch, version, key_count";

    /// <summary>
    /// The map and its generation in one statement, hence one snapshot. The outer join yields the generation even when
    /// no shard exists yet (one row of nulls).
    /// </summary>
    public const string SelectMap =
        "SELECT m.generation, s.id, s.range_start, s.range_end, s.owner_endpoint, s.owner_generation, s.epoch, s.version, s.key_count " +
        "FROM shard_map_generation m LEFT JOIN shards s ON true ORDER BY s.range_start";

    public const string SelectShard = "SELECT " + ShardColumns + " FROM shards WHERE id = @id";

    /// <summary>
    /// A claim: one conditional update of the shard's row. The generation moves on in the same transaction (the deferred
    /// trigger of 0002_cluster.sql).
    /// </summary>
    public const string Claim =
        "UPDATE shards SET owner_endpoint = @owner_endpoint, owner_generation = @owner_generation, epoch = epoch + 1 " +
        "WHERE id = @id AND epoch = @epoch RETURNING " + ShardColumns;

    /// <summary>A release by the owner at its epoch; the epoch moves on so the releasing owner is fenced too.</summary>
    public const string Release =
        "UPDATE shards SET owner_endpoint = NULL, owner_generation = NULL, epoch = epoch + 1 " +
        "WHERE id = @id AND epoch = @epoch AND owner_endpoint = @owner_endpoint AND owner_generation = @owner_generation " +
        "RETURNING " + ShardColumns;

    // ---------------------------------------------------------------- grain directory

    /// <summary>
    /// True when the incarnation on row <c>d</c> of <c>grain_directory</c> is alive: its row in <c>silos</c> exists and is
    /// not Dead (ShuttingDown still holds its grains), and no later generation is on its endpoint. Evaluated in the
    /// statement that acts on it, so a verdict is never older than the statement's snapshot. Null for an unregistered row
    /// (callers test <c>d.silo_endpoint IS NOT NULL</c> first).
    /// </summary>
    private const string HolderAlive =
        "(EXISTS (SELECT 1 FROM silos s WHERE s.endpoint = d.silo_endpoint AND s.generation = d.silo_generation AND s.status <> " + Dead + ")" +
        " AND NOT EXISTS (SELECT 1 FROM silos l WHERE l.endpoint = d.silo_endpoint AND l.generation > d.silo_generation))";

    /// <summary>A row as <see cref="Cluster.GrainDirectoryEntry"/> reads it.</summary>
    private const string GrainColumns = "d.grain, d.silo_endpoint, d.silo_generation, d.epoch";

    /// <summary>
    /// A registration in one statement: a grain never seen is inserted at epoch 1; an existing row is taken (epoch + 1)
    /// only if it is not already this incarnation's and is unregistered or its incarnation is no longer alive. The row
    /// lock ON CONFLICT takes, and its re-check of the condition against the newest row version (READ COMMITTED), make
    /// concurrent registrations of one grain serialise: exactly one inserts or takes it. Returns no row when the grain
    /// stays with its holder (a live silo, or this incarnation itself); the caller then reads the row in a new statement,
    /// whose snapshot sees a holder that committed after this statement's snapshot was taken.
    /// </summary>
    public const string RegisterGrain =
        "INSERT INTO grain_directory AS d (grain, silo_endpoint, silo_generation, epoch) VALUES (@grain, @endpoint, @generation, 1) " +
        "ON CONFLICT (grain) DO UPDATE SET silo_endpoint = EXCLUDED.silo_endpoint, silo_generation = EXCLUDED.silo_generation, " +
        "epoch = d.epoch + 1, registered_at = clock_timestamp() " +
        "WHERE (d.silo_endpoint IS DISTINCT FROM EXCLUDED.silo_endpoint OR d.silo_generation IS DISTINCT FROM EXCLUDED.silo_generation) " +
        "AND (d.silo_endpoint IS NULL OR NOT " + HolderAlive + ") " +
        "RETURNING " + GrainColumns;

    /// <summary>A grain's row and whether its holder is alive (null when unregistered), after a registration that changed nothing.</summary>
    public const string SelectGrainHolder =
        "SELECT " + GrainColumns + ", d.silo_endpoint IS NOT NULL AND " + HolderAlive + " FROM grain_directory d WHERE d.grain = @grain";

    /// <summary>A grain's registration to a live incarnation, or no row.</summary>
    public const string LookupGrain =
        "SELECT " + GrainColumns + " FROM grain_directory d WHERE d.grain = @grain AND d.silo_endpoint IS NOT NULL AND " + HolderAlive;

    /// <summary>A deactivation: only the named incarnation at the named epoch; the epoch stays, so it never goes back.</summary>
    public const string UnregisterGrain =
        "UPDATE grain_directory SET silo_endpoint = NULL, silo_generation = NULL " +
        "WHERE grain = @grain AND silo_endpoint = @endpoint AND silo_generation = @generation AND epoch = @epoch";

    /// <summary>Every registration of one incarnation (not of other generations on its endpoint); epochs stay.</summary>
    public const string UnregisterSilo =
        "UPDATE grain_directory SET silo_endpoint = NULL, silo_generation = NULL WHERE silo_endpoint = @endpoint AND silo_generation = @generation";

    /// <summary>The registrations of live incarnations, by grain bytewise (the column's "C" collation; the index's order).</summary>
    public const string ListGrains =
        "SELECT " + GrainColumns + " FROM grain_directory d WHERE d.silo_endpoint IS NOT NULL AND " + HolderAlive + " ORDER BY d.grain COLLATE \"C\"";
}
