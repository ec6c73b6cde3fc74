using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Rustorium.Grid.Testing;

/// <summary>
/// A real PostgreSQL server for tests: <c>initdb</c> into a fresh temporary directory, <c>pg_ctl start</c> bound to
/// 127.0.0.1 on a free port (no Unix socket in a shared place), trust authentication for the <c>postgres</c> user, and
/// <c>pg_ctl stop</c> when disposed. PostgreSQL refuses to run as root, so when the test process is root the server
/// runs as the <c>postgres</c> operating-system user (<c>runuser</c>) over a directory it owns.
/// </summary>
/// <remarks>
/// The binaries come from <c>RGRID_PG_BIN</c> or <c>/usr/lib/postgresql/15/bin</c> (shared/DEPENDENCIES.md). Test
/// servers run with <c>fsync=off</c> unless <see cref="PostgresServerOptions.Durable"/>: the tests kill silos, never the
/// database server, so its durability on power loss is not what they check (the benchmarks start durable servers).
/// </remarks>
public sealed class PostgresServer : IAsyncDisposable
{
    private static readonly Lazy<Task<PostgresServer>> SharedServer = new(() => StartSharedAsync());
    private readonly string _directory;
    private readonly bool _asPostgresUser;
    private int _stopped;

    private PostgresServer(string directory, int port, bool asPostgresUser)
    {
        _directory = directory;
        Port = port;
        _asPostgresUser = asPostgresUser;
    }

    /// <summary>The directory of <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>.</summary>
    public static string BinDirectory => Environment.GetEnvironmentVariable("RGRID_PG_BIN") is { Length: > 0 } bin ? bin : "/usr/lib/postgresql/15/bin";

    /// <summary>Whether PostgreSQL is installed where <see cref="BinDirectory"/> says.</summary>
    public static bool IsInstalled => File.Exists(Path.Combine(BinDirectory, "pg_ctl")) && File.Exists(Path.Combine(BinDirectory, "initdb"));

    /// <summary>The loopback port the server listens on.</summary>
    public int Port { get; }

    /// <summary>The server's data directory (its log is <c>server.log</c> beside it).</summary>
    public string DataDirectory => Path.Combine(_directory, "data");

    /// <summary>The server's log so far (for failure messages).</summary>
    public string Log => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    private string LogFile => Path.Combine(_directory, "server.log");

    /// <summary>
    /// One server for the whole test process, started on first use and stopped when the process exits. Tests isolate
    /// themselves with databases of their own (<see cref="CreateDatabaseAsync"/>) or schemas of their own.
    /// </summary>
    public static Task<PostgresServer> SharedAsync() => SharedServer.Value;

    private static async Task<PostgresServer> StartSharedAsync()
    {
        var server = await StartAsync().ConfigureAwait(false);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    /// <summary>A connection string to <paramref name="database"/> as the superuser <c>postgres</c>.</summary>
    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = "postgres",
            Database = database,
            Pooling = true,
            Timeout = 15,
        }.ConnectionString;

    /// <summary>Creates a new, empty database with a unique name built from <paramref name="prefix"/> and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "test")
    {
        var name = $"{new string(prefix.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).Take(20).ToArray())}_{Guid.NewGuid():N}";
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync().ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        return ConnectionString(name);
    }

    /// <summary>Initialises a data directory and starts a server on a free loopback port; waits until it accepts connections.</summary>
    /// <exception cref="InvalidOperationException">PostgreSQL is not installed, or it failed to start (the message carries its log).</exception>
    public static async Task<PostgresServer> StartAsync(PostgresServerOptions? options = null)
    {
        options ??= new PostgresServerOptions();
        if (!IsInstalled)
            throw new InvalidOperationException(
                $"PostgreSQL is not installed in {BinDirectory} (set RGRID_PG_BIN, or install postgresql-15; .ci/run does).");
        bool asPostgresUser = Environment.UserName == "root";
        var directory = Path.Combine(Path.GetTempPath(), "rgrid-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        if (asPostgresUser) await RunAsync("chown", ["postgres:postgres", directory], asPostgresUser: false).ConfigureAwait(false);

        var server = new PostgresServer(directory, FreePort(), asPostgresUser);
        await server.RunToolAsync("initdb", ["-D", server.DataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
            .ConfigureAwait(false);
        var settings = new List<string>
        {
            "-p", server.Port.ToString(), "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={directory}",
            "-c", $"max_connections={options.MaxConnections}", "-c", "shared_buffers=128MB",
        };
        if (!options.Durable) settings.AddRange(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        try
        {
            await server.RunToolAsync("pg_ctl", ["-D", server.DataDirectory, "-l", server.LogFile, "-w", "-t", "60", "-o", string.Join(' ', settings), "start"])
                .ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"{e.Message}\nServer log:\n{server.Log}", e);
        }
        return server;
    }

    /// <summary>Stops the server (fast shutdown) and deletes its directory.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        try
        {
            RunToolAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "-t", "30", "stop"]).GetAwaiter().GetResult();
        }
        catch (InvalidOperationException)
        {
            // Already gone: nothing to stop.
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    /// <summary>A loopback TCP port that is free right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Task RunToolAsync(string tool, IReadOnlyList<string> arguments) =>
        RunAsync(Path.Combine(BinDirectory, tool), arguments, _asPostgresUser);

    private static async Task RunAsync(string program, IReadOnlyList<string> arguments, bool asPostgresUser)
    {
        var start = new ProcessStartInfo(asPostgresUser ? "runuser" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asPostgresUser)
        {
            foreach (var a in (string[])["-u", "postgres", "--", program]) start.ArgumentList.Add(a);
        }
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start {program}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        if (process.ExitCode != 0)
            throw new InvalidOperationException(
                $"{Path.GetFileName(program)} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
    }
}

/// <summary>How a test server is started.</summary>
public sealed record PostgresServerOptions
{
    /// <summary>Keep fsync and synchronous commit on (benchmarks); off by default for test speed.</summary>
    public bool Durable { get; init; }

    /// <summary><c>max_connections</c>; default 200 (several silos each with a pool).</summary>
    public int MaxConnections { get; init; } = 200;
}
