using System.Diagnostics;
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

    [Fact]
    public async Task StoppingAServerDeletesItsDirectory()
    {
        var server = await PostgresServer.StartAsync();
        var directory = Path.GetDirectoryName(server.DataDirectory)!;
        Assert.True(File.Exists(Path.Combine(server.DataDirectory, "postmaster.pid")));
        await server.DisposeAsync();
        Assert.False(Directory.Exists(directory), $"{directory} is left behind");
    }

    [Fact]
    public async Task AServerWhoseTestProcessDiedIsStoppedAndItsDirectoryDeleted()
    {
        // What the test platform does to a test host that does not exit within 100 ms of being told to: kill it, before it
        // has stopped its server. Here the server's owner is a short-lived process instead of this one.
        using var owner = Process.Start(new ProcessStartInfo("sleep", "1") { UseShellExecute = false })!;
        var server = await PostgresServer.StartAsync(new PostgresServerOptions { OwnerProcessId = owner.Id });
        var directory = Path.GetDirectoryName(server.DataDirectory)!;
        await owner.WaitForExitAsync();

        var deadline = Stopwatch.StartNew();
        while (Directory.Exists(directory))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), $"{directory} still there 60 s after its owner exited");
            await Task.Delay(100);
        }
        await using var connection = new NpgsqlConnection(server.ConnectionString());
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => connection.OpenAsync());
        server.Stop(); // nothing left to stop or delete
    }

    [Fact]
    public void StaleDirectoriesOfStoppedOrKilledServersAreSweptAndLiveOnesKept()
    {
        var root = Directory.CreateTempSubdirectory("rustorium-sweep-test-").FullName;
        try
        {
            int deadPid;
            using (var gone = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!)
            {
                gone.WaitForExit();
                deadPid = gone.Id;
            }
            var old = DateTime.UtcNow - TimeSpan.FromMinutes(30);
            string Make(string name, string? pidFile, DateTime changed)
            {
                var directory = Path.Combine(root, name);
                var data = Directory.CreateDirectory(Path.Combine(directory, "data")).FullName;
                File.WriteAllText(Path.Combine(data, "PG_VERSION"), "15\n");
                File.WriteAllText(Path.Combine(directory, "server.log"), "LOG:  database system is shut down\n");
                if (pidFile is not null) File.WriteAllText(Path.Combine(data, "postmaster.pid"), pidFile);
                foreach (var file in Directory.GetFiles(directory, "*", SearchOption.AllDirectories)) File.SetLastWriteTimeUtc(file, changed);
                Directory.SetLastWriteTimeUtc(data, changed);
                Directory.SetLastWriteTimeUtc(directory, changed);
                return directory;
            }

            var stopped = Make("rgrid-pg-000000000001", null, old);                                            // stopped cleanly, long ago
            var killed = Make("rgrid-pg-000000000002", $"{deadPid}\n{root}\n", old);                          // its postmaster no longer exists
            var running = Make("rgrid-pg-000000000003", $"{Environment.ProcessId}\n{root}\n", old);           // a live process: kept however old
            var starting = Make("rgrid-pg-000000000004", null, DateTime.UtcNow - TimeSpan.FromSeconds(10));   // another process's initdb, maybe
            var unreadable = Make("rgrid-pg-000000000005", "not a pid\n", old);                                // cannot tell: kept
            var foreign = Make("someone-else-000000000006", null, old);                                        // not a server directory

            var removed = PostgresServer.RemoveStaleDirectories(root, TimeSpan.FromMinutes(5));

            Assert.Equal(new[] { stopped, killed }.Order(), removed.Order());
            Assert.False(Directory.Exists(stopped));
            Assert.False(Directory.Exists(killed));
            Assert.All([running, starting, unreadable, foreign], d => Assert.True(Directory.Exists(d), $"{d} was deleted"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
