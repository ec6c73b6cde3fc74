using Npgsql;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Storage.Postgres;
using Rustorium.Grid.Testing;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests.Cluster;

/// <summary>
/// One database on the shared test server for every cluster-store test; each store name is a schema of its own in it,
/// so tests are isolated and a name opened again is the same durable store.
/// </summary>
internal static class PostgresClusterDatabase
{
    private static readonly Lazy<Task<string>> Database = new(async () =>
        await (await PostgresServer.SharedAsync().ConfigureAwait(false)).CreateDatabaseAsync("cluster").ConfigureAwait(false));

    public static Task<string> ConnectionStringAsync() => Database.Value;

    public static async Task<PostgresClusterStore> OpenAsync(string schema, TimeSpan? commandTimeout = null) =>
        await PostgresClusterStore.OpenAsync(new PostgresClusterStoreOptions
        {
            ConnectionString = await ConnectionStringAsync(),
            Schema = schema,
            CommandTimeout = commandTimeout ?? TimeSpan.FromSeconds(30),
        }, Deadline());

    /// <summary>Runs <paramref name="sql"/> in <paramref name="schema"/> (test-side set-up and inspection only); returns the rows affected.</summary>
    public static async Task<int> ExecuteAsync(string schema, string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(await ConnectionStringAsync());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SET search_path TO \"{schema}\"; {sql}", connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return await command.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(string schema, string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(await ConnectionStringAsync());
        await connection.OpenAsync();
        await using (var path = new NpgsqlCommand($"SET search_path TO \"{schema}\"", connection)) await path.ExecuteNonQueryAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// Lays shards out as the shard store's InitializeAsync would (version 0, epoch 0, the empty tree's root, no keys),
    /// with plain SQL: these tests do not depend on the PostgreSQL shard store.
    /// </summary>
    public static async Task CreateShardsAsync(string schema, IReadOnlyList<(long Id, KeyRange Range)> shards)
    {
        await using var connection = new NpgsqlConnection(await ConnectionStringAsync());
        await connection.OpenAsync();
        await using var tx = await connection.BeginTransactionAsync();
        foreach (var (id, range) in shards)
        {
            await using var command = new NpgsqlCommand(
                $"INSERT INTO \"{schema}\".shards (id, range_start, range_end, version, epoch, root, key_count, updated_at) " +
                "VALUES (@id, @start, @end, 0, 0, @root, 0, 0)", connection, tx);
            command.Parameters.AddWithValue("id", id);
            command.Parameters.AddWithValue("start", range.Start.ToArray());
            command.Parameters.Add(new NpgsqlParameter("end", NpgsqlTypes.NpgsqlDbType.Bytea) { Value = range.IsUnbounded ? DBNull.Value : range.End.ToArray() });
            command.Parameters.AddWithValue("root", new byte[32]);
            await command.ExecuteNonQueryAsync();
        }
        await tx.CommitAsync();
    }
}

/// <summary>The membership table contract on a real PostgreSQL.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresMembershipTableContractTests : MembershipTableContractTests
{
    protected override async Task<IMembershipTable> OpenMembershipAsync(string storeName) => await PostgresClusterDatabase.OpenAsync(storeName);

    /// <summary>Moves <c>last_heartbeat</c> back by <paramref name="by"/>: the store then sees a heartbeat that old by its own clock.</summary>
    protected override async Task AgeHeartbeatAsync(string storeName, SiloAddress silo, TimeSpan by) =>
        Assert.Equal(1, await PostgresClusterDatabase.ExecuteAsync(storeName,
            "UPDATE silos SET last_heartbeat = last_heartbeat - @by WHERE endpoint = @endpoint AND generation = @generation",
            ("by", by), ("endpoint", silo.Endpoint), ("generation", silo.Generation)));
}

/// <summary>The shard directory contract on a real PostgreSQL.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresShardDirectoryContractTests : ShardDirectoryContractTests
{
    protected override async Task<IShardDirectory> OpenDirectoryAsync(string storeName) => await PostgresClusterDatabase.OpenAsync(storeName);

    protected override Task CreateShardsAsync(string storeName, IReadOnlyList<(long Id, KeyRange Range)> shards) =>
        PostgresClusterDatabase.CreateShardsAsync(storeName, shards);
}

/// <summary>The grain directory contract on a real PostgreSQL: the store is its own membership table.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresGrainDirectoryContractTests : GrainDirectoryContractTests
{
    protected override async Task<(IGrainDirectory Directory, IMembershipTable Membership)> OpenDirectoryAsync(string storeName)
    {
        var store = await PostgresClusterDatabase.OpenAsync(storeName);
        return (store, store);
    }
}

/// <summary>What only the PostgreSQL cluster store has: options, the schema and its migrations, error mapping, and the fence
/// it shares with the shard store's commits.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresClusterStoreTests
{
    private readonly CancellationToken _ct = Deadline();

    private static string NewSchema() => "cluster_" + Guid.NewGuid().ToString("N")[..12];

    private static readonly SiloAddress A = new("10.0.0.1:7000", 1);

    [Fact]
    public async Task OptionsAreValidatedWithMessagesThatNameTheOption()
    {
        var good = new PostgresClusterStoreOptions { ConnectionString = "Host=127.0.0.1;Port=5432;Username=grid;Password=hunter2" };
        good.Validate();
        Assert.Equal("rgrid", good.Schema);

        (PostgresClusterStoreOptions Options, string Names)[] bad =
        [
            (good with { ConnectionString = "" }, "ConnectionString"),
            (good with { ConnectionString = "Port=5432;Password=hunter2" }, "Host"),
            (good with { ConnectionString = "Host=x;Nonsense=hunter2" }, "ConnectionString"),
            (good with { Schema = "" }, "Schema"),
            (good with { Schema = "1abc" }, "Schema"),
            (good with { Schema = "rgrid; DROP TABLE shards" }, "Schema"),
            (good with { Schema = new string('s', 64) }, "Schema"),
            (good with { CommandTimeout = TimeSpan.Zero }, "CommandTimeout"),
            (good with { CommandTimeout = TimeSpan.FromMilliseconds(1500) }, "CommandTimeout"),
            (good with { CommandTimeout = TimeSpan.FromHours(1) }, "CommandTimeout"),
        ];
        foreach (var (options, names) in bad)
        {
            var e = Assert.Throws<GridException>(options.Validate);
            Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
            Assert.Contains("PostgresClusterStoreOptions", e.Message);
            Assert.Contains(names, e.Message);
            Assert.DoesNotContain("hunter2", e.Message);
            Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => PostgresClusterStore.OpenAsync(options, _ct))).Code);
        }
    }

    [Fact]
    public async Task AServerThatIsNotThereIsUnavailableAndThePasswordIsNeverShown()
    {
        var options = new PostgresClusterStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={LoopbackPorts.Take()};Username=grid;Password=hunter2;Timeout=5",
        };
        var e = await Assert.ThrowsAsync<GridException>(() => PostgresClusterStore.OpenAsync(options, _ct));
        Assert.Equal(GridErrorCode.Unavailable, e.Code);
        Assert.Contains("127.0.0.1", e.Message);
        Assert.DoesNotContain("hunter2", e.ToString());
    }

    [Fact]
    public async Task AStatementThatWaitsBeyondTheCommandTimeoutIsATimeout()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema, commandTimeout: TimeSpan.FromSeconds(1));
        await PostgresClusterDatabase.CreateShardsAsync(schema, [(1, KeyRange.All)]);

        // Another session holds the shard's row (as a long commit would): the claim waits for it, then gives up.
        await using var holder = new NpgsqlConnection(await PostgresClusterDatabase.ConnectionStringAsync());
        await holder.OpenAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand($"SELECT 1 FROM \"{schema}\".shards WHERE id = 1 FOR UPDATE", holder, tx))
            await hold.ExecuteNonQueryAsync();

        var e = await Assert.ThrowsAsync<GridException>(() => store.ClaimAsync(1, A, 0, _ct));
        Assert.Equal(GridErrorCode.Timeout, e.Code);
        await tx.RollbackAsync();

        // The claim changed nothing and the store works again once the row is free.
        Assert.Equal(0, (await store.GetAsync(1, _ct)).Epoch);
        Assert.Equal(1, (await store.ClaimAsync(1, A, 0, _ct)).Epoch);
    }

    [Fact]
    public async Task OpeningCreatesTheSchemaWithBothMigrationsOnceEvenWhenSilosStartTogether()
    {
        var schema = NewSchema();
        var stores = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => PostgresClusterDatabase.OpenAsync(schema)));
        try
        {
            Assert.Equal(PostgresMigrator.LatestVersion,
                (int)await PostgresClusterDatabase.ScalarAsync<long>(schema, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal("0002_cluster", await PostgresClusterDatabase.ScalarAsync<string>(schema, "SELECT name FROM schema_migrations WHERE version = 2"));
            Assert.Equal(0L, await PostgresClusterDatabase.ScalarAsync<long>(schema, "SELECT generation FROM shard_map_generation"));
            Assert.Equal(schema, stores[0].Options.Schema);
            Assert.DoesNotContain("Password", stores[0].ToString(), StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            foreach (var store in stores) await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task TheDefaultSchemaIsRgridAndAMixedCaseSchemaIsKeptAsWritten()
    {
        // A database of its own: the default schema name would be shared by every test of the process.
        var server = await PostgresServer.SharedAsync();
        var database = await server.CreateDatabaseAsync("clusterdefault");
        await using (var store = await PostgresClusterStore.OpenAsync(new PostgresClusterStoreOptions { ConnectionString = database }, _ct))
        {
            await store.JoinAsync(new SiloRegistration(A, "a", "eu", null), _ct);
        }
        await using (var store = await PostgresClusterStore.OpenAsync(new PostgresClusterStoreOptions { ConnectionString = database, Schema = "Grid_Two" }, _ct))
        {
            Assert.Empty(await store.ReadAllAsync(_ct));
        }
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT (SELECT count(*) FROM rgrid.silos), (SELECT count(*) FROM \"Grid_Two\".silos)", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(1L, reader.GetInt64(0));
        Assert.Equal(0L, reader.GetInt64(1));
    }

    [Fact]
    public async Task SessionsRunWithoutPostgresJitUnlessTheConnectionStringTurnsItOn()
    {
        // The JIT compiled an eight-row read of the shard map at every call (~6 ms each under load): the planner's guess
        // for the never-analysed tables passed jit_above_cost. The test server runs with PostgreSQL's default, jit = on.
        var database = await PostgresClusterDatabase.ConnectionStringAsync();
        async Task<string> JitOf(string connectionString)
        {
            var options = new PostgresClusterStoreOptions { ConnectionString = connectionString, Schema = NewSchema() };
            await using var connection = new NpgsqlConnection(options.BuildConnectionString().ConnectionString);
            await connection.OpenAsync(_ct);
            await using var command = new NpgsqlCommand("SELECT current_setting('jit')", connection);
            return (string)(await command.ExecuteScalarAsync(_ct))!;
        }
        Assert.Equal("on", await JitOf(database + ";Options=-c jit=on"));
        Assert.Equal("off", await JitOf(database));
        Assert.Equal("off", await JitOf(database + ";Options=-c work_mem=8MB"));
    }

    [Fact]
    public async Task DeclaringASiloDeadEndsItsSessionsSoAFrozenCommitCannotKeepTheShardsLock()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema, commandTimeout: TimeSpan.FromSeconds(5));
        await PostgresClusterDatabase.CreateShardsAsync(schema, [(1, KeyRange.All)]);
        var frozen = new SiloAddress("10.0.0.9:7000", 3);
        await store.JoinAsync(new SiloRegistration(frozen, "frozen", "eu", null), _ct);
        var owned = await store.ClaimAsync(1, frozen, 0, _ct);

        // The frozen silo's session, named as the silo names its sessions, holds the shard row's lock inside an open
        // transaction (as a commit frozen half-way through its pipeline does: no server timeout ends that session).
        var named = new NpgsqlConnectionStringBuilder(await PostgresClusterDatabase.ConnectionStringAsync())
        {
            ApplicationName = PostgresSessions.ApplicationNameFor(frozen),
            Pooling = false,
        };
        await using var holder = new NpgsqlConnection(named.ConnectionString);
        await holder.OpenAsync();
        var tx = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand($"SELECT 1 FROM \"{schema}\".shards WHERE id = 1 FOR UPDATE", holder, tx))
            await hold.ExecuteNonQueryAsync();
        // A bystander session of another silo is left alone.
        var bystanderName = new NpgsqlConnectionStringBuilder(named.ConnectionString) { ApplicationName = PostgresSessions.ApplicationNameFor(A) };
        await using var bystander = new NpgsqlConnection(bystanderName.ConnectionString);
        await bystander.OpenAsync();

        await PostgresClusterDatabase.ExecuteAsync(schema,
            "UPDATE silos SET last_heartbeat = last_heartbeat - interval '1 hour' WHERE endpoint = @e", ("e", frozen.Endpoint));
        Assert.True(await store.DeclareDeadAsync(frozen, TimeSpan.FromSeconds(10), _ct));

        // The claim goes through at once (well within the 5 s command timeout it would otherwise hit).
        var taken = await store.ClaimAsync(1, A, owned.Epoch, _ct);
        Assert.Equal(A, taken.Owner);
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var after = new NpgsqlCommand("SELECT 1", holder, tx);
            await after.ExecuteScalarAsync();
        });
        await using (var alive = new NpgsqlCommand("SELECT 1", bystander))
            Assert.Equal(1, await alive.ExecuteScalarAsync());
    }

    [Fact]
    public void SessionNamesFitPostgreSqlAndDifferPerIncarnation()
    {
        var a = PostgresSessions.ApplicationNameFor(new SiloAddress("127.0.0.1:7401", 1795286852084934));
        Assert.Equal("rgrid 127.0.0.1:7401@1795286852084934", a);
        Assert.NotEqual(a, PostgresSessions.ApplicationNameFor(new SiloAddress("127.0.0.1:7401", 1795286852084935)));
        var longHost = PostgresSessions.ApplicationNameFor(new SiloAddress(new string('h', 80) + ".example.com:7400", 7));
        Assert.True(longHost.Length <= PostgresSessions.MaxApplicationNameBytes);
        Assert.StartsWith("rgrid #", longHost);
    }

    [Fact]
    public async Task AClaimFencesTheShardStoresCommitsOfTheOldEpoch()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema);
        await PostgresClusterDatabase.CreateShardsAsync(schema, [(1, KeyRange.All)]);
        var mine = await store.ClaimAsync(1, A, 0, _ct);

        // A commit as the shard store makes it: conditioned on the epoch the owner holds.
        const string Commit = "UPDATE shards SET version = version + 1, key_count = key_count + 1 WHERE id = 1 AND epoch = @epoch";
        Assert.Equal(1, await PostgresClusterDatabase.ExecuteAsync(schema, Commit, ("epoch", mine.Epoch)));

        var taken = await store.ClaimAsync(1, new SiloAddress("10.0.0.2:7000", 1), mine.Epoch, _ct);
        Assert.Equal(0, await PostgresClusterDatabase.ExecuteAsync(schema, Commit, ("epoch", mine.Epoch)));
        Assert.Equal(1, await PostgresClusterDatabase.ExecuteAsync(schema, Commit, ("epoch", taken.Epoch)));

        var row = await store.GetAsync(1, _ct);
        Assert.Equal(2, row.Version);
        Assert.Equal(2, row.KeyCount);
        Assert.Equal(taken.Epoch, row.Epoch);
    }

    [Fact]
    public async Task DataCommitsLeaveTheGenerationAndRangeChangesMoveItOn()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema);
        await PostgresClusterDatabase.CreateShardsAsync(schema, [(1, KeyRange.All)]);
        long generation = (await store.ReadAsync(_ct)).Generation;
        Assert.True(generation > 0, "Laying out shards did not move the generation on.");

        // A data commit (version, root, key count; the epoch set to itself) is not a change of the map.
        await PostgresClusterDatabase.ExecuteAsync(schema,
            "UPDATE shards SET version = version + 1, root = @root, key_count = 7, updated_at = 12345, epoch = epoch WHERE id = 1",
            ("root", Enumerable.Repeat((byte)1, 32).ToArray()));
        Assert.Equal(generation, (await store.ReadAsync(_ct)).Generation);

        // A split, as the shard store would make it in one transaction, is.
        await PostgresClusterDatabase.ExecuteAsync(schema,
            "UPDATE shards SET range_end = '\\x80'::bytea WHERE id = 1; " +
            "INSERT INTO shards (id, range_start, range_end, version, epoch, root, key_count, updated_at) " +
            "VALUES (2, '\\x80'::bytea, NULL, 0, 0, @root, 0, 0)",
            ("root", new byte[32]));
        var split = await store.ReadAsync(_ct);
        Assert.True(split.Generation > generation);
        Assert.Equal([Range("", "80"), Range("80", null)], split.Shards.Select(s => s.Range));
    }

    [Fact]
    public async Task HeartbeatAgesAreTheDatabasesClock()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema);
        var joined = await store.JoinAsync(new SiloRegistration(A, "a", "eu", null), _ct);
        var serverNow = await PostgresClusterDatabase.ScalarAsync<DateTime>(schema, "SELECT clock_timestamp()");
        var last = await PostgresClusterDatabase.ScalarAsync<DateTime>(schema, "SELECT last_heartbeat FROM silos");
        Assert.Equal(joined.LastHeartbeat.UtcDateTime, last);
        Assert.InRange(serverNow - last, TimeSpan.Zero, TimeSpan.FromSeconds(30));
    }

    // ---------------------------------------------------------------- grain directory

    [Fact]
    public async Task GrainDirectoryIsMigration3AndKeepsUnregisteredRowsWithTheirEpoch()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema);
        Assert.Equal("0003_grain_directory", await PostgresClusterDatabase.ScalarAsync<string>(schema, "SELECT name FROM schema_migrations WHERE version = 3"));
        await store.JoinAsync(new SiloRegistration(A, "a", "eu", null), _ct);
        var grain = GrainId.Create("counter", "apples");
        var entry = await store.RegisterAsync(grain, A, _ct);

        Assert.Equal("counter/s/apples|10.0.0.1:7000|1|1", await PostgresClusterDatabase.ScalarAsync<string>(schema,
            "SELECT grain || '|' || silo_endpoint || '|' || silo_generation || '|' || epoch FROM grain_directory"));
        Assert.True(await store.UnregisterAsync(grain, A, entry.Epoch, _ct));
        Assert.Equal("counter/s/apples||1", await PostgresClusterDatabase.ScalarAsync<string>(schema,
            "SELECT grain || '|' || coalesce(silo_endpoint, '') || coalesce(silo_generation::text, '') || '|' || epoch FROM grain_directory"));

        // Endpoint and generation are null together, and epochs are positive.
        await Assert.ThrowsAsync<PostgresException>(() => PostgresClusterDatabase.ExecuteAsync(schema,
            "UPDATE grain_directory SET silo_endpoint = 'x:1'"));
        await Assert.ThrowsAsync<PostgresException>(() => PostgresClusterDatabase.ExecuteAsync(schema,
            "INSERT INTO grain_directory (grain, epoch) VALUES ('counter/i/1', 0)"));
    }

    [Fact]
    public async Task GrainDirectoryCountsALaterGenerationOnTheEndpointEvenIfTheEarlierRowWasNotMarkedDead()
    {
        // JoinAsync marks earlier generations dead itself; the directory must not depend on it having done so.
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema);
        var b = new SiloAddress("10.0.0.2:7000", 1);
        await store.JoinAsync(new SiloRegistration(A, "a", "eu", null), _ct);
        await store.JoinAsync(new SiloRegistration(b, "b", "eu", null), _ct);
        var grain = GrainId.Create("counter", 7);
        await store.RegisterAsync(grain, A, _ct);

        Assert.Equal(1, await PostgresClusterDatabase.ExecuteAsync(schema,
            "INSERT INTO silos (endpoint, generation, name, region, status) VALUES (@endpoint, @generation, 'a2', 'eu', 1)",
            ("endpoint", A.Endpoint), ("generation", A.Generation + 1)));
        Assert.Equal(SiloStatus.Active, (await store.ReadAllAsync(_ct)).Single(e => e.Address == A).Status);

        Assert.Null(await store.LookupAsync(grain, _ct));
        Assert.Empty(await store.ListAsync(_ct));
        Assert.Equal(new GrainDirectoryEntry(grain, b, 2), await store.RegisterAsync(grain, b, _ct));
    }

    [Fact]
    public async Task GrainDirectoryRefusesGrainIdsPostgreSqlCannotHoldAndHoldsTheLongestItCan()
    {
        var schema = NewSchema();
        await using var store = await PostgresClusterDatabase.OpenAsync(schema);
        await store.JoinAsync(new SiloRegistration(A, "a", "eu", null), _ct);

        // "t/s/" is 4 bytes; U+00E9 is 2 bytes of UTF-8.
        var longest = GrainId.Create("t", new string('\u00e9', (PostgresClusterStore.MaxGrainIdBytes - 4) / 2));
        GrainId[] refused =
        [
            GrainId.Create("t", "nul\0inside"),
            GrainId.Create("t", "lone \ud800 surrogate"),
            GrainId.Create("t", new string('\u00e9', (PostgresClusterStore.MaxGrainIdBytes - 4) / 2) + "x"),
        ];
        foreach (var grain in refused)
        {
            Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => store.RegisterAsync(grain, A, _ct))).Code);
            Assert.Equal(GridErrorCode.InvalidArgument, (await Assert.ThrowsAsync<GridException>(() => store.LookupAsync(grain, _ct))).Code);
        }
        Assert.Empty(await store.ListAsync(_ct));

        var entry = await store.RegisterAsync(longest, A, _ct);
        Assert.Equal(new GrainDirectoryEntry(longest, A, 1), entry);
        Assert.Equal(entry, await store.LookupAsync(longest, _ct));
        // The store still works after the refusals (nothing half-sent broke a pooled connection).
        Assert.Equal([entry], await store.ListAsync(_ct));
    }
}
