using System.Text.Json;
using Npgsql;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Cli.Tests;

/// <summary><c>grid admin migrate</c> and <c>grid admin members</c> against a real PostgreSQL server, without silos.</summary>
[Trait("Category", "Integration")]
public sealed class AdminMigrateCommandTests
{
    [Fact]
    public async Task Migrate_applies_every_migration_once_then_says_up_to_date()
    {
        var server = await PostgresServer.SharedAsync();
        var conn = await server.CreateDatabaseAsync("climigrate");

        var first = await Cli.RunAsync("admin", "migrate", "--postgres", conn);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("applied 0001_shard_store", first.Out);
        Assert.Contains("applied 0002_cluster", first.Out);
        Assert.Contains("schema rgrid is now at version", first.Out);
        Assert.DoesNotContain("Host=", first.Out + first.Err);

        var second = await Cli.RunAsync("admin", "migrate", "--postgres", conn);
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.StartsWith("up to date:", second.Out);
        Assert.DoesNotContain("applied", second.Out);

        var json = await Cli.RunAsync("admin", "migrate", "--postgres", conn, "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal("rgrid", doc.RootElement.GetProperty("schema").GetString());
        Assert.True(doc.RootElement.GetProperty("upToDate").GetBoolean());
        Assert.Equal(0, doc.RootElement.GetProperty("applied").GetArrayLength());
        Assert.Equal(Storage.Postgres.PostgresMigrator.LatestVersion, doc.RootElement.GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task Migrate_into_another_schema_reports_json_and_leaves_the_default_alone()
    {
        var server = await PostgresServer.SharedAsync();
        var conn = await server.CreateDatabaseAsync("climigrate");

        var result = await Cli.RunAsync("admin", "migrate", "--postgres", conn, "--schema", "staging_1", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Out);
        Assert.False(doc.RootElement.GetProperty("upToDate").GetBoolean());
        Assert.Equal(["0001_shard_store", "0002_cluster", "0003_grain_directory", "0004_shard_id_counter", "0005_unfolded_keys", "0006_silo_load", "0007_tree_nodes_by_position"], doc.RootElement.GetProperty("applied").EnumerateArray().Select(e => e.GetString()!).ToArray());
        await using var connection = new NpgsqlConnection(conn);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM information_schema.schemata WHERE schema_name IN ('staging_1', 'rgrid')", connection);
        Assert.Equal(1L, await command.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData("--schema", "1starts_with_a_digit")]
    [InlineData("--schema", "has-dash")]
    [InlineData("--schema", "")]
    public async Task A_bad_schema_exits_2_before_connecting(string option, string value)
    {
        // Nothing listens on this port: a check that connected first would exit 4.
        var conn = $"Host=127.0.0.1;Port={LoopbackPorts.Take()};Username=postgres;Database=none";

        var result = await Cli.RunAsync("admin", "migrate", "--postgres", conn, option, value);

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("--schema", result.Err);
    }

    [Theory]
    [InlineData("Host=127.0.0.1;NoSuchKeyword=1")]
    [InlineData("Port=5432;Username=postgres")]
    [InlineData("Host=127.0.0.1;Port=notanumber")]
    public async Task A_bad_connection_string_exits_2(string conn)
    {
        var result = await Cli.RunAsync("admin", "migrate", "--postgres", conn);

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("--postgres", result.Err);
    }

    [Theory]
    [InlineData("migrate")]
    [InlineData("members")]
    public async Task An_unreachable_server_exits_4_without_echoing_the_password(string command)
    {
        var conn = $"Host=127.0.0.1;Port={LoopbackPorts.Take()};Username=postgres;Password=s3cret-pw;Database=grid;Timeout=5";

        var result = await Cli.RunAsync("admin", command, "--postgres", conn);

        Assert.True(result.ExitCode == (int)ExitCode.Unavailable, result.ToString());
        Assert.Contains("cannot reach PostgreSQL 127.0.0.1:", result.Err);
        Assert.DoesNotContain("s3cret-pw", result.Err);
    }

    [Fact]
    public async Task A_missing_database_exits_4()
    {
        var server = await PostgresServer.SharedAsync();
        var conn = server.ConnectionString("no_such_database_" + Guid.NewGuid().ToString("N")[..8]);

        var result = await Cli.RunAsync("admin", "migrate", "--postgres", conn);

        Assert.True(result.ExitCode == (int)ExitCode.Unavailable, result.ToString());
        Assert.Contains("3D000", result.Err);
    }

    [Fact]
    public async Task Members_of_a_schema_without_a_membership_table_exits_2_and_creates_nothing()
    {
        var server = await PostgresServer.SharedAsync();
        var conn = await server.CreateDatabaseAsync("climembers");

        var result = await Cli.RunAsync("admin", "members", "--postgres", conn, "--schema", "rgird");

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("no membership table", result.Err);
        await using var connection = new NpgsqlConnection(conn);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'rgird'", connection);
        Assert.Equal(0L, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Members_of_a_migrated_schema_without_silos_is_empty()
    {
        var server = await PostgresServer.SharedAsync();
        var conn = await server.CreateDatabaseAsync("climembers");
        Assert.Equal(0, (await Cli.RunAsync("admin", "migrate", "--postgres", conn)).ExitCode);

        var human = await Cli.RunAsync("admin", "members", "--postgres", conn);
        var json = await Cli.RunAsync("admin", "members", "--postgres", conn, "--json");

        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Empty(human.Out);
        Assert.Contains("lists no silos", human.Err);
        Assert.True(json.ExitCode == 0, json.ToString());
        Assert.Empty(json.Out);
    }

    [Fact]
    public async Task Postgres_is_required()
    {
        var result = await Cli.RunAsync("admin", "migrate");

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("--postgres", result.Err);
    }
}
