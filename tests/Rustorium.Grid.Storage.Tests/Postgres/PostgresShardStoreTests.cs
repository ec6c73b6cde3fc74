using System.Diagnostics;
using Npgsql;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage.Postgres;
using Rustorium.Grid.Testing;
using Xunit.Abstractions;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests.Postgres;

/// <summary>
/// One database on the shared test server for every PostgreSQL store of the test run; a store name is a schema in it
/// (opening a name again reopens the same durable data).
/// </summary>
internal static class PostgresStoreDatabase
{
    private static readonly Lazy<Task<string>> Database = new(async () =>
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync("shardstore");
        // Many stores are open at once across the test classes: keep each pool small.
        return new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 16 }.ConnectionString;
    });

    public static Task<string> ConnectionStringAsync() => Database.Value;

    public static async Task<PostgresShardStoreOptions> OptionsAsync(string storeName, string? applicationName = null)
    {
        var connectionString = await ConnectionStringAsync();
        if (applicationName is not null)
            connectionString = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = applicationName }.ConnectionString;
        return new PostgresShardStoreOptions { ConnectionString = connectionString, Schema = storeName };
    }

    public static async Task<PostgresShardStore> OpenAsync(string storeName) =>
        await PostgresShardStore.OpenAsync(await OptionsAsync(storeName), Deadline());

    /// <summary>A plain connection to the test database with <paramref name="schema"/> as search path (outside any store).</summary>
    public static async Task<NpgsqlConnection> ConnectAsync(string schema)
    {
        var builder = new NpgsqlConnectionStringBuilder(await ConnectionStringAsync()) { SearchPath = schema, Pooling = false };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}

/// <summary>The store contract on a real PostgreSQL.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresShardStoreContractTests : ShardStoreContractTests
{
    protected override async Task<IShardStore> OpenStoreAsync(string storeName) => await PostgresStoreDatabase.OpenAsync(storeName);
}

/// <summary>The tree-over-store tests on a real PostgreSQL.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresShardTreeNodeStoreTests(ITestOutputHelper output) : ShardTreeNodeStoreTests(output)
{
    protected override async Task<IShardStore> OpenStoreAsync(string storeName) => await PostgresStoreDatabase.OpenAsync(storeName);
}

/// <summary>What only the PostgreSQL provider has: options, sessions, several silos (store instances) on one schema.</summary>
[Trait("Category", "Integration")]
public sealed class PostgresShardStoreTests(ITestOutputHelper output)
{
    private readonly CancellationToken _ct = Deadline();

    private static string NewSchema() => "pgtest_" + Guid.NewGuid().ToString("N")[..12];

    // ---------------------------------------------------------------- options

    [Fact]
    public void DefaultsAreTheDocumentedOnes()
    {
        var o = new PostgresShardStoreOptions();
        Assert.Null(o.ConnectionString);
        Assert.Equal("rgrid", o.Schema);
        Assert.Equal(TimeSpan.FromSeconds(5), o.IdleInTransactionSessionTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), o.StatementTimeout);
    }

    public static TheoryData<string, string?, string, double, double, string> BadOptions() => new()
    {
        // why, connection string, schema, idle timeout (s), statement timeout (s), the setting the message must name
        { "no connection string", null, "rgrid", 5, 30, "ConnectionString" },
        { "blank connection string", "  ", "rgrid", 5, 30, "ConnectionString" },
        { "no host", "Database=grid", "rgrid", 5, 30, "Host" },
        { "unknown keyword", "Host=h;Colour=blue", "rgrid", 5, 30, "ConnectionString" },
        { "schema with a dash", "Host=h", "bad-name", 5, 30, "Schema" },
        { "schema with SQL in it", "Host=h", "rgrid\"; DROP SCHEMA public; --", 5, 30, "Schema" },
        { "schema starting with a digit", "Host=h", "1grid", 5, 30, "Schema" },
        { "empty schema", "Host=h", "", 5, 30, "Schema" },
        { "schema too long", "Host=h", new string('s', 64), 5, 30, "Schema" },
        { "system schema prefix", "Host=h", "pg_grid", 5, 30, "Schema" },
        { "idle timeout zero", "Host=h", "rgrid", 0, 30, "IdleInTransactionSessionTimeout" },
        { "idle timeout too long", "Host=h", "rgrid", 7200, 30, "IdleInTransactionSessionTimeout" },
        { "statement timeout zero", "Host=h", "rgrid", 5, 0, "StatementTimeout" },
        { "statement timeout too long", "Host=h", "rgrid", 5, 7200, "StatementTimeout" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task BadOptionsAreRefusedNamingTheSetting(string why, string? connectionString, string schema, double idleSeconds,
        double statementSeconds, string setting)
    {
        var options = new PostgresShardStoreOptions
        {
            ConnectionString = connectionString,
            Schema = schema,
            IdleInTransactionSessionTimeout = TimeSpan.FromSeconds(idleSeconds),
            StatementTimeout = TimeSpan.FromSeconds(statementSeconds),
        };
        var e = Assert.Throws<GridException>(options.Validate);
        Assert.True(e.Code == GridErrorCode.InvalidArgument, why);
        Assert.Contains(setting, e.Message);
        var opened = await Assert.ThrowsAsync<GridException>(() => PostgresShardStore.OpenAsync(options, _ct));
        Assert.Equal(GridErrorCode.InvalidArgument, opened.Code);
    }

    [Fact]
    public async Task AWrongSchemaNameIsRefusedAndNothingIsCreated()
    {
        var options = await PostgresStoreDatabase.OptionsAsync("grid; DROP TABLE x");
        var e = await Assert.ThrowsAsync<GridException>(() => PostgresShardStore.OpenAsync(options, _ct));
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        Assert.Contains("Schema", e.Message);

        await using var connection = await PostgresStoreDatabase.ConnectAsync("public");
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'grid%'", connection);
        Assert.Equal(0L, await command.ExecuteScalarAsync(_ct));
    }

    [Fact]
    public void AMalformedConnectionStringNeverShowsItsPassword()
    {
        var options = new PostgresShardStoreOptions { ConnectionString = "Host=h;Password=abc;zyx-secret;Database=grid" };
        var e = Assert.Throws<GridException>(options.Validate);
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        Assert.Contains("ConnectionString", e.Message);
        Assert.DoesNotContain("secret", e.Message);
        Assert.DoesNotContain("abc", e.Message);
    }

    [Fact]
    public async Task APortWithNoServerIsUnavailableWithAClearMessage()
    {
        int port = LoopbackPorts.Take();
        var options = new PostgresShardStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={port};Database=grid;Username=grid;Password=very-secret-pw;Timeout=5",
        };
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<GridException>(() => PostgresShardStore.OpenAsync(options, _ct));
        Assert.Equal(GridErrorCode.Unavailable, e.Code);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("connect", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("very-secret-pw", e.ToString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        output.WriteLine(e.Message);
    }

    // ---------------------------------------------------------------- sessions and schema

    [Fact]
    public async Task SessionsRunWithTheStoresSettingsAndTheSchemaIsMigrated()
    {
        var schema = NewSchema();
        var options = (await PostgresStoreDatabase.OptionsAsync(schema)) with
        {
            IdleInTransactionSessionTimeout = TimeSpan.FromMilliseconds(2500),
            StatementTimeout = TimeSpan.FromSeconds(12),
        };
        await using var store = await PostgresShardStore.OpenAsync(options, _ct);
        await using var connection = await store.DataSource.OpenConnectionAsync(_ct);
        await using var command = new NpgsqlCommand(
            "SELECT current_setting('synchronous_commit'), current_setting('statement_timeout'), " +
            "current_setting('idle_in_transaction_session_timeout'), current_schema(), (SELECT max(version) FROM schema_migrations), " +
            "current_setting('jit')", connection);
        await using var r = await command.ExecuteReaderAsync(_ct);
        Assert.True(await r.ReadAsync(_ct));
        Assert.Equal("on", r.GetString(0));
        Assert.Equal("12s", r.GetString(1));
        Assert.Equal("2500ms", r.GetString(2));
        Assert.Equal(schema, r.GetString(3));
        Assert.Equal(PostgresShardStore.SchemaVersion, r.GetInt32(4));
        Assert.Equal("off", r.GetString(5)); // the test server's default is on
    }

    [Fact]
    public async Task ATreeCommitWritingItsNodesDoesNotHoldUpTheShardsDataCommits()
    {
        // A tree commit writes thousands of node rows; the shard's data commits wait for its row lock, so the tree commit
        // takes that lock after its nodes, not before. Here its node write is held up by another session's lock on a
        // node row: while it waits there, a data commit of the same shard goes through.
        var schema = NewSchema();
        await using var store = await PostgresStoreDatabase.OpenAsync(schema);
        var shard = await store.ClaimAsync((await store.InitializeAsync([KeyRange.All], _ct))[0].ShardId, _ct);
        await store.CommitAsync(DataCommit(shard, Put("01", "01")), _ct);
        await store.CommitTreeAsync(FoldOf(store, shard, [Put("01", "01")], 1), _ct);
        shard = await store.GetShardAsync(shard.ShardId, _ct);
        await store.CommitAsync(DataCommit(shard, Put("01", "02")), _ct);
        var fold = FoldOf(store, shard, [Put("01", "02")], 2);
        Assert.NotEmpty(fold.AddedNodes); // the new leaf of key 01, in place of the old one

        await using var holder = await PostgresStoreDatabase.ConnectAsync(schema);
        await using var tx = await holder.BeginTransactionAsync(_ct);
        await using (var hold = new NpgsqlCommand("SELECT 1 FROM tree_nodes WHERE shard_id = @id AND pos = @pos FOR UPDATE", holder, tx))
        {
            hold.Parameters.AddWithValue("id", shard.ShardId);
            hold.Parameters.AddWithValue("pos", fold.AddedNodes[0].Position.ToBytes());
            Assert.Equal(1, await hold.ExecuteScalarAsync(_ct));
        }
        var treeCommit = store.CommitTreeAsync(fold, _ct).AsTask();
        await using (var probe = await PostgresStoreDatabase.ConnectAsync(schema))
        {
            await using var waiting = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO tree_nodes%'", probe);
            var deadline = Stopwatch.StartNew();
            while ((long)(await waiting.ExecuteScalarAsync(_ct))! == 0)
            {
                Assert.False(treeCommit.IsCompleted, "the tree commit ended without waiting for the held node row");
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the tree commit never waited for the held node row");
                await Task.Delay(20, _ct);
            }
        }

        var dataCommit = store.CommitAsync(DataCommit(await store.GetShardAsync(shard.ShardId, _ct), Put("03", "03")), _ct).AsTask();
        var first = await Task.WhenAny(dataCommit, Task.Delay(TimeSpan.FromSeconds(30), _ct));
        Assert.Same(dataCommit, first); // under the old order it waited here for the shard's row, held by the tree commit
        await dataCommit;
        Assert.False(treeCommit.IsCompleted);

        await tx.RollbackAsync(_ct);
        await treeCommit;
        var after = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal((3L, 2L, fold.NewRoot), (after.Version, after.TreeVersion, after.Root));
    }

    [Fact]
    public async Task ASessionPausedInsideACommitIsEndedByTheServerAndTheShardMovesOn()
    {
        // A silo SIGSTOPped between the statements of its commit holds the shard's row lock with its transaction open. The
        // server ends that session after IdleInTransactionSessionTimeout, so the next owner is not blocked for longer.
        var schema = NewSchema();
        var options = (await PostgresStoreDatabase.OptionsAsync(schema)) with { IdleInTransactionSessionTimeout = TimeSpan.FromSeconds(1) };
        await using var paused = await PostgresShardStore.OpenAsync(options, _ct);
        await using var next = await PostgresShardStore.OpenAsync(options, _ct);
        var shard = (await paused.InitializeAsync([KeyRange.All], _ct))[0];

        await using var stuck = await paused.DataSource.OpenConnectionAsync(_ct);
        var tx = await stuck.BeginTransactionAsync(_ct);
        await using (var lockRow = new NpgsqlCommand("SELECT 1 FROM shards WHERE id = @id FOR NO KEY UPDATE", stuck, tx))
        {
            lockRow.Parameters.AddWithValue("id", shard.ShardId);
            await lockRow.ExecuteNonQueryAsync(_ct);
        }
        // ... and the process stops here.

        var clock = Stopwatch.StartNew();
        var claimed = await next.ClaimAsync(shard.ShardId, _ct);
        await next.CommitAsync(Next(claimed, 1, Put("01", "01")), _ct);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(20));
        Assert.Equal(1, (await next.GetShardAsync(shard.ShardId, _ct)).Version);

        // The paused session is gone: whatever it sends next fails.
        await using var after = new NpgsqlCommand("SELECT 1", stuck, tx);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => after.ExecuteScalarAsync(_ct));
    }

    // ---------------------------------------------------------------- several silos on one schema

    [Fact]
    public async Task ConcurrentInitializationFromSeveralStoresCreatesExactlyOneLayout()
    {
        for (int round = 0; round < 3; round++)
        {
            var schema = NewSchema();
            IReadOnlyList<KeyRange>[] layouts = [[KeyRange.All], ThreeShards, EightShards, [Range("", "80"), Range("80", null)], ThreeShards, EightShards];
            // Opening together also races the migrations of the new schema.
            var stores = await Task.WhenAll(layouts.Select(_ => Task.Run(() => PostgresStoreDatabase.OpenAsync(schema))));
            try
            {
                using var start = new Barrier(layouts.Length);
                var results = await Task.WhenAll(layouts.Select((layout, i) => Task.Run(async () =>
                {
                    start.SignalAndWait(_ct);
                    return await stores[i].InitializeAsync(layout, _ct);
                })));
                var first = results[0];
                Assert.All(results, r => Assert.Equal(first, r));
                Assert.Contains(layouts, l => l.SequenceEqual(first.Select(s => s.Range)));
                Assert.Equal(Enumerable.Range(1, first.Count).Select(i => (long)i), first.Select(s => s.ShardId));
                Assert.Equal(first, await stores[^1].ListShardsAsync(_ct));
            }
            finally
            {
                foreach (var store in stores) await store.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task ACommitRacingAClaimFromAnotherStoreNeverAppliesUnderTheOldEpoch()
    {
        var schema = NewSchema();
        await using var owner = await PostgresStoreDatabase.OpenAsync(schema);
        await using var rival = await PostgresStoreDatabase.OpenAsync(schema);
        var shardId = (await owner.InitializeAsync([KeyRange.All], _ct))[0].ShardId;
        int applied = 0, refused = 0;
        for (int round = 0; round < 40; round++)
        {
            var state = await owner.ClaimAsync(shardId, _ct);
            var commit = Next(state, state.KeyCount + 1, Put([(byte)round], [(byte)round]));
            using var start = new Barrier(2);
            var committing = Task.Run(async () =>
            {
                start.SignalAndWait(_ct);
                try
                {
                    await owner.CommitAsync(commit, _ct);
                    return (GridErrorCode?)null;
                }
                catch (GridException e)
                {
                    return e.Code;
                }
            });
            var claiming = Task.Run(async () =>
            {
                start.SignalAndWait(_ct);
                return await rival.ClaimAsync(shardId, _ct);
            });
            var outcome = await committing;
            var claimed = await claiming;

            Assert.Equal(state.Epoch + 1, claimed.Epoch);
            var row = await rival.GetAsync(shardId, new[] { (byte)round }, _ct);
            if (outcome is null)
            {
                // It applied, so it applied before the claim: the claim already saw its version.
                applied++;
                Assert.Equal(commit.NewVersion, claimed.Version);
                Assert.NotNull(row);
            }
            else
            {
                // Refused: the claim came first, and the commit wrote nothing.
                refused++;
                Assert.Equal(GridErrorCode.Conflict, outcome);
                Assert.Equal(state.Version, claimed.Version);
                Assert.Null(row);
            }
            var now = await rival.GetShardAsync(shardId, _ct);
            Assert.Equal(claimed, now);
        }
        Assert.Equal(40, applied + refused);
        output.WriteLine($"{applied} commits applied before the claim, {refused} refused after it.");
    }

    [Fact]
    public async Task ACommitWaitingBehindAClaimInFlightIsRefusedOnceTheClaimCommits()
    {
        // The cluster claims through its own statement on the same row. A commit that reaches the row while such a claim is
        // in flight waits for its lock, then re-checks the row as the claim left it: the old epoch no longer matches.
        var schema = NewSchema();
        var application = "race-" + Guid.NewGuid().ToString("N")[..8];
        await using var owner = await PostgresShardStore.OpenAsync(await PostgresStoreDatabase.OptionsAsync(schema, application), _ct);
        var shard = await owner.ClaimAsync((await owner.InitializeAsync([KeyRange.All], _ct))[0].ShardId, _ct);
        await owner.CommitAsync(Next(shard, 1, Put("01", "01")), _ct);
        shard = await owner.GetShardAsync(shard.ShardId, _ct);

        await using var cluster = await PostgresStoreDatabase.ConnectAsync(schema);
        await using var claim = await cluster.BeginTransactionAsync(_ct);
        await using (var bump = new NpgsqlCommand("UPDATE shards SET epoch = epoch + 1 WHERE id = @id", cluster, claim))
        {
            bump.Parameters.AddWithValue("id", shard.ShardId);
            Assert.Equal(1, await bump.ExecuteNonQueryAsync(_ct));
        }

        var stale = owner.CommitAsync(Next(shard, 2, Put("02", "02")), _ct).AsTask();
        await WaitUntilAsync(async () =>
        {
            await using var watch = await PostgresStoreDatabase.ConnectAsync("public");
            await using var waiting = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = @app AND wait_event_type = 'Lock'", watch);
            waiting.Parameters.AddWithValue("app", application);
            return (long)(await waiting.ExecuteScalarAsync(_ct))! > 0;
        });
        Assert.False(stale.IsCompleted);
        await claim.CommitAsync(_ct);

        var e = await Assert.ThrowsAsync<GridException>(() => stale);
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        Assert.Contains("epoch", e.Message);
        output.WriteLine(e.Message);
        var after = await owner.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(shard with { Epoch = shard.Epoch + 1 }, after);
        Assert.Null(await owner.GetAsync(shard.ShardId, K("02"), _ct));
    }

    [Fact]
    public async Task AKeyBeyondPostgreSqlsIndexLimitIsRefusedAndChangesNothing()
    {
        await using var store = await PostgresStoreDatabase.OpenAsync(NewSchema());
        var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
        await store.CommitAsync(Next(shard, 1, Put("01", "01")), _ct);
        var current = await store.GetShardAsync(shard.ShardId, _ct);
        var longKey = new byte[8192];
        new Random(3).NextBytes(longKey); // random bytes: the index cannot compress them under its limit
        var e = await Assert.ThrowsAsync<GridException>(async () =>
            await store.CommitAsync(Next(current, 3, Put("02", "02"), Put(longKey, [1])), _ct));
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        output.WriteLine(e.Message);
        Assert.Equal(current, await store.GetShardAsync(shard.ShardId, _ct));
        Assert.Null(await store.GetAsync(shard.ShardId, K("02"), _ct));
        // A key of the grid's default limit (1 KiB) is fine.
        await store.CommitAsync(Next(current, 2, Put(longKey[..1024], [1])), _ct);
    }

    [Fact]
    public async Task ConcurrentSplitsAndMergesFromSeveralStoresNeverGiveAnIdTwice()
    {
        // Several silos split different shards of one schema at once, merge every new shard away again, and repeat: each
        // round frees the largest ids, which max(id) + 1 would hand out again. The counter row's lock keeps them apart.
        var schema = NewSchema();
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => PostgresStoreDatabase.OpenAsync(schema))));
        try
        {
            var used = (await stores[0].InitializeAsync(EightShards, _ct)).Select(s => s.ShardId).ToHashSet();
            for (int round = 0; round < 3; round++)
            {
                var shards = await stores[0].ListShardsAsync(_ct);
                var splits = await Task.WhenAll(shards.Select((shard, i) => Task.Run(async () =>
                {
                    byte start = shard.Range.Start.IsEmpty ? (byte)0 : shard.Range.Start[0];
                    return await stores[i % stores.Length].SplitAsync(EmptySplit(shard, [(byte)(start + 0x10)]), _ct);
                })));
                foreach (var (_, right) in splits)
                    Assert.True(used.Add(right.ShardId), $"round {round}: id {right.ShardId} given again ({string.Join(", ", used.Order())})");
                await Task.WhenAll(splits.Select((split, i) => Task.Run(async () =>
                    await stores[(i + 1) % stores.Length].MergeAsync(EmptyMerge(split.Left, split.Right), _ct))));
                Assert.Equal(EightShards, (await stores[^1].ListShardsAsync(_ct)).Select(s => s.Range));
            }
        }
        finally
        {
            foreach (var store in stores) await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task ASchemaWithNodesKeyedByHashGetsThemByPositionWithEveryTreeIntact()
    {
        var schema = NewSchema();
        Dictionary<long, List<RowWrite>> contents;
        await using (var store = await PostgresStoreDatabase.OpenAsync(schema)) contents = await FillForMigrationAsync(store, _ct);
        long nodeCount;
        // Turn it into a schema from before 0007: the same trees in a table keyed by hash, plus a node no tree reaches.
        await using (var raw = await PostgresStoreDatabase.ConnectAsync(schema))
        {
            await using (var count = new NpgsqlCommand("SELECT count(*) FROM tree_nodes", raw)) nodeCount = (long)(await count.ExecuteScalarAsync(_ct))!;
            await ExecuteAsync(raw, "CREATE TABLE smt_nodes (shard_id bigint NOT NULL, hash bytea NOT NULL, kind smallint NOT NULL, " +
                "a bytea NOT NULL, b bytea NOT NULL, PRIMARY KEY (shard_id, hash))");
            await ExecuteAsync(raw, "INSERT INTO smt_nodes SELECT shard_id, hash, kind, a, b FROM tree_nodes");
            await ExecuteAsync(raw, "INSERT INTO smt_nodes VALUES (1, decode(repeat('00', 31) || '01', 'hex'), 2, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))");
            await ExecuteAsync(raw, "DROP TABLE tree_nodes");
            await ExecuteAsync(raw, "DELETE FROM schema_migrations WHERE version = 7");
        }
        Assert.True(nodeCount > 400, $"{nodeCount} nodes");

        await using (var store = await PostgresStoreDatabase.OpenAsync(schema)) // applies 0007 and copies the trees
            await AssertMigratedAsync(store, contents, _ct);
        await using (var raw = await PostgresStoreDatabase.ConnectAsync(schema))
        {
            await using var command = new NpgsqlCommand(
                "SELECT (SELECT count(*) FROM tree_nodes WHERE shard_id <> 1), to_regclass('smt_nodes') IS NULL, (SELECT max(version) FROM schema_migrations)", raw);
            await using var r = await command.ExecuteReaderAsync(_ct);
            Assert.True(await r.ReadAsync(_ct));
            Assert.True(r.GetInt64(0) > 200); // shard 2's tree, copied (shard 1 took writes since)
            Assert.True(r.GetBoolean(1)); // dropped
            Assert.Equal(PostgresShardStore.SchemaVersion, r.GetInt32(2));
        }
    }

    [Fact]
    public async Task AnUpgradedSchemaStartsTheIdCounterAtItsLargestIdAndSkipsIdsTakenBehindIt()
    {
        var schema = NewSchema();
        await using (var store = await PostgresStoreDatabase.OpenAsync(schema)) await store.InitializeAsync(ThreeShards, _ct);
        // Turn it into a schema from before 0004 whose largest id is 7 (as if shards 4 to 6 had been merged away): no counter.
        await using (var raw = await PostgresStoreDatabase.ConnectAsync(schema))
        {
            await ExecuteAsync(raw, "DROP TABLE shard_id_counter");
            await ExecuteAsync(raw, "DELETE FROM schema_migrations WHERE version = 4");
            await ExecuteAsync(raw, "UPDATE shards SET id = 7 WHERE id = 3");
        }

        await using var upgraded = await PostgresStoreDatabase.OpenAsync(schema); // applies 0004
        var (_, right) = await upgraded.SplitAsync(EmptySplit(await upgraded.GetShardAsync(7, _ct), K("c0")), _ct);
        Assert.Equal(8, right.ShardId);

        // A silo of the older build, still running during the rolling upgrade, splits with max(id) + 1 = 9, behind the
        // counter's back (simulated by renumbering the last shard): the next split must not take 9 again.
        await using (var raw = await PostgresStoreDatabase.ConnectAsync(schema))
            await ExecuteAsync(raw, "UPDATE shards SET id = 9 WHERE id = 8");
        var (_, next) = await upgraded.SplitAsync(EmptySplit(await upgraded.GetShardAsync(9, _ct), K("e0")), _ct);
        Assert.Equal(10, next.ShardId);
        await using (var raw = await PostgresStoreDatabase.ConnectAsync(schema))
        {
            await using var command = new NpgsqlCommand("SELECT last_id FROM shard_id_counter", raw);
            Assert.Equal(10L, await command.ExecuteScalarAsync(_ct));
        }
    }

    [Fact]
    public async Task AStoreIsUnusableAfterDisposeButItsDataStays()
    {
        var schema = NewSchema();
        var store = await PostgresStoreDatabase.OpenAsync(schema);
        var shard = (await store.InitializeAsync(ThreeShards, _ct))[0];
        var reader = store.OpenNodeReader(shard.ShardId);
        await store.DisposeAsync();
        await store.DisposeAsync(); // twice is fine
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.ListShardsAsync(_ct));
        Assert.Throws<ObjectDisposedException>(() => reader.TryGetNode(Fr.One, SmtPosition.Root, out _));

        await using var reopened = await PostgresStoreDatabase.OpenAsync(schema);
        Assert.Equal(3, (await reopened.ListShardsAsync(_ct)).Count);
    }

    private async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(_ct);
    }

    /// <summary>The split of an empty shard (both trees empty).</summary>
    private static ShardSplit EmptySplit(ShardState shard, byte[] splitKey) => new()
    {
        ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedVersion = shard.Version, NewVersion = shard.Version + 1, SplitKey = splitKey,
        LeftRoot = Fr.Zero, LeftKeyCount = 0, LeftNodes = [], RightRoot = Fr.Zero, RightKeyCount = 0, RightNodes = [],
        TimestampMicros = 1_700_000_100_000_000,
    };

    /// <summary>The merge of two adjacent empty shards.</summary>
    private static ShardMerge EmptyMerge(ShardState left, ShardState right) => new()
    {
        LeftShardId = left.ShardId, LeftEpoch = left.Epoch, LeftExpectedVersion = left.Version,
        RightShardId = right.ShardId, RightEpoch = right.Epoch, RightExpectedVersion = right.Version,
        NewVersion = Math.Max(left.Version, right.Version) + 1, Root = Fr.Zero, KeyCount = 0, Nodes = [],
        TimestampMicros = 1_700_000_200_000_000,
    };

    private async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "condition not reached within 30 s");
            await Task.Delay(20, _ct);
        }
    }
}
