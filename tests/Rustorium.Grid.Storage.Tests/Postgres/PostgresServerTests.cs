using Npgsql;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Storage.Tests.Postgres;

/// <summary>The test server itself: it starts as a real PostgreSQL 15 on loopback and isolates tests by database.</summary>
public sealed class PostgresServerTests
{
    [Fact]
    public async Task TheSharedServerIsARealPostgreSqlOnLoopback()
    {
        var server = await PostgresServer.SharedAsync();
        var database = await server.CreateDatabaseAsync("smoke");
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_setting('server_version_num')::int, inet_server_addr()::text, current_database()", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.InRange(reader.GetInt32(0), 150000, 159999);
        Assert.StartsWith("127.0.0.1", reader.GetString(1));
        Assert.StartsWith("smoke_", reader.GetString(2));
    }
}
