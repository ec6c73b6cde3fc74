using System.Diagnostics;
using Npgsql;

namespace Rustorium.Grid.Testing;

/// <summary>
/// A real PostgreSQL server for tests: <c>initdb</c> into a fresh temporary directory, <c>pg_ctl start</c> bound to
/// 127.0.0.1 on a free port (no Unix socket in a shared place), trust authentication for the <c>postgres</c> user, and
/// <c>pg_ctl stop</c> when disposed. PostgreSQL refuses to run as root, so when the test process is root the server
/// runs as the <c>postgres</c> operating-system user (<c>runuser</c>) over a directory it owns.
/// </summary>
/// <remarks>
/// <para>The binaries come from <c>RGRID_PG_BIN</c> or <c>/usr/lib/postgresql/15/bin</c> (shared/DEPENDENCIES.md). Test
/// servers run with <c>fsync=off</c> unless <see cref="PostgresServerOptions.Durable"/>: the tests kill silos, never the
/// database server, so its durability on power loss is not what they check (the benchmarks start durable servers).</para>
/// <para><b>Cleaning up.</b> Each server lives in a directory <c>rgrid-pg-*</c> under the temporary directory. The test
/// process cannot be trusted to delete it on its way out: the shared server is stopped from <c>ProcessExit</c>, but the
/// test platform kills the test host 100 ms after it asked it to end (vstest's <c>ProxyOperationManager.Close</c>), while
/// <c>pg_ctl stop -w</c> is still polling for the shutdown, so the server finished shutting down on its own and its
/// directory stayed behind, one per run. So every server gets a <b>watcher</b>: a small shell process, detached from the
/// test process (<c>setsid -f</c>, so killing the test host's process tree does not reach it), that waits until either the
/// server or the test process is gone, shuts the server down if the test process died without doing so, and deletes the
/// directory once the server's postmaster has exited — never before. And the first server a process starts sweeps away
/// what runs killed harder than that left behind (<see cref="RemoveStaleDirectories"/>).</para>
/// </remarks>
public sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>Every server's directory is <c>{temp}/rgrid-pg-{12 hex digits}</c>.</summary>
    public const string DirectoryPrefix = "rgrid-pg-";

    /// <summary>
    /// How long a directory without a running server is left alone by <see cref="RemoveStaleDirectories"/> after its last
    /// change: another test process may be between creating it and starting its server (initdb and start take seconds).
    /// </summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(5);

    private static readonly Lazy<Task<PostgresServer>> SharedServer = new(() => StartSharedAsync());
    private static int _sweptStale;
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

    /// <summary>Exists exactly while the server's postmaster runs: PostgreSQL removes it as the last step of its shutdown.</summary>
    private string PidFile => Path.Combine(DataDirectory, "postmaster.pid");

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
        if (Interlocked.Exchange(ref _sweptStale, 1) == 0) RemoveStaleDirectories();
        bool asPostgresUser = Environment.UserName == "root";
        var directory = Path.Combine(Path.GetTempPath(), DirectoryPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        if (asPostgresUser) await RunAsync("chown", ["postgres:postgres", directory], asPostgresUser: false).ConfigureAwait(false);

        var server = new PostgresServer(directory, LoopbackPorts.Take(), asPostgresUser);
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
            // pg_ctl -w gave up: the server may still come up later. The watcher cleans up after it either way.
            StartWatcher(directory, options.OwnerProcessId ?? Environment.ProcessId);
            throw new InvalidOperationException($"{e.Message}\nServer log:\n{server.Log}", e);
        }
        StartWatcher(directory, options.OwnerProcessId ?? Environment.ProcessId);
        return server;
    }

    /// <summary>
    /// Stops the server (fast shutdown) and deletes its directory once the server has exited. If it does not exit within
    /// 30 s the directory is left to the server's watcher, which deletes it when the server is gone.
    /// </summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        try
        {
            RunToolAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "-t", "30", "stop"]).GetAwaiter().GetResult();
        }
        catch (InvalidOperationException)
        {
            // Already gone (nothing to stop), or it did not stop in time: the pid file tells which.
        }
        if (File.Exists(PidFile)) return; // still running: never delete a live server's files
        TryDelete(_directory);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Deletes the server directories (<c>rgrid-pg-*</c>) under <paramref name="root"/> (default: the temporary directory)
    /// that earlier test runs left behind: unchanged for at least <paramref name="olderThan"/> (default
    /// <see cref="StaleAfter"/>) and with no server running in them — no <c>postmaster.pid</c> (the server stopped, or never
    /// started), or one naming a process that no longer exists (the server was killed). A directory whose
    /// <c>postmaster.pid</c> names a running process, or cannot be read, is kept, as is anything that cannot be deleted
    /// (another user's). Called once per process, by the first <see cref="StartAsync"/>. Returns the directories deleted.
    /// </summary>
    /// <remarks>Test processes that share the temporary directory are assumed to share the process-id namespace too (one
    /// machine or container), so that a running server's process is visible here.</remarks>
    public static IReadOnlyList<string> RemoveStaleDirectories(string? root = null, TimeSpan? olderThan = null)
    {
        root ??= Path.GetTempPath();
        var age = olderThan ?? StaleAfter;
        var removed = new List<string>();
        string[] candidates;
        try
        {
            candidates = Directory.GetDirectories(root, DirectoryPrefix + "*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return removed;
        }
        foreach (var directory in candidates)
        {
            try
            {
                if (IsStale(directory, age) && TryDelete(directory)) removed.Add(directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Unreadable (another user's) or going away under us (its own process is deleting it): leave it.
            }
        }
        return removed;
    }

    private static bool IsStale(string directory, TimeSpan age)
    {
        var data = Path.Combine(directory, "data");
        var pidFile = Path.Combine(data, "postmaster.pid");
        var lastChange = DateTime.MinValue;
        foreach (var part in (string[])[directory, data, Path.Combine(directory, "server.log"), pidFile])
        {
            if (Directory.Exists(part)) lastChange = Max(lastChange, Directory.GetLastWriteTimeUtc(part));
            else if (File.Exists(part)) lastChange = Max(lastChange, File.GetLastWriteTimeUtc(part));
        }
        if (lastChange == DateTime.MinValue || DateTime.UtcNow - lastChange < age) return false; // gone already, or recent
        if (!File.Exists(pidFile)) return true;
        // The first line is the postmaster's process id.
        var firstLine = File.ReadLines(pidFile).FirstOrDefault();
        if (!int.TryParse(firstLine, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) || pid <= 0)
            return false;
        return !ProcessExists(pid);
    }

    private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;

    private static bool ProcessExists(int pid)
    {
        if (OperatingSystem.IsLinux()) return Directory.Exists($"/proc/{pid}");
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static bool TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true; // its watcher was quicker
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// The watcher (see the class remarks), run by <c>sh</c> with the server's directory as $1 and the owning test process
    /// as $2. A process counts as alive while /proc shows it, not as a zombie, with the start time it had when the watcher
    /// began (so a later process that reuses the id is not mistaken for it). Polls once a second; the server is always
    /// stopped by its postmaster's id, never by name.
    /// </summary>
    private const string WatcherScript = """
        exec </dev/null >/dev/null 2>&1
        dir=$1 owner=$2
        started() { s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 0; set -f; set -- $s; set +f; echo "${20:-}"; }
        alive() { want=$2; s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1; set -f; set -- $s; set +f; [ "$1" != Z ] && [ -n "$want" ] && [ "${20:-}" = "$want" ]; }
        # The postmaster's id (a start that timed out may still bring one up; with none, the next sweep cleans up).
        pm=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
        case "$pm" in ''|*[!0-9]*) sleep 60; pm=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) ;; esac
        case "$pm" in ''|*[!0-9]*) exit 0 ;; esac
        pm_start=$(started "$pm"); owner_start=$(started "$owner")
        while alive "$owner" "$owner_start" && alive "$pm" "$pm_start"; do sleep 1; done
        if alive "$pm" "$pm_start"; then
          # The test process died with its server running: immediate shutdown (its data is thrown away anyway).
          kill -QUIT "$pm"
          i=0; while alive "$pm" "$pm_start" && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
          if alive "$pm" "$pm_start"; then kill -KILL "$pm"; sleep 5; fi
        fi
        alive "$pm" "$pm_start" && exit 1
        # Stop() deletes the directory itself when it can: give it the first go.
        sleep 1
        rm -rf "$dir"
        """;

    /// <summary>Starts the watcher of <paramref name="directory"/>; without <c>setsid</c> (not Linux) there is none.</summary>
    private static void StartWatcher(string directory, int ownerProcessId)
    {
        var start = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            // Not the test host's own streams: a process that outlives the test host must not hold its pipes open.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in (string[])["-f", "sh", "-c", WatcherScript, "rgrid-pg-watcher", directory,
                     ownerProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            start.ArgumentList.Add(a);
        try
        {
            using var setsid = Process.Start(start);
            setsid?.WaitForExit(5000); // setsid -f returns as soon as it has forked the watcher
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No setsid: Stop and the next run's sweep still clean up.
        }
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

    /// <summary>
    /// <c>max_connections</c>; default 500. Several silos share one server, each with Npgsql pools of up to 100 connections
    /// that a burst of directory registrations can fill (200 was once exceeded by three silos: "too many clients already").
    /// </summary>
    public int MaxConnections { get; init; } = 500;

    /// <summary>
    /// The process whose end stops the server and deletes its directory if nobody called <see cref="PostgresServer.Stop"/>
    /// (the watcher's owner); default: this process. For the fixture's own tests.
    /// </summary>
    public int? OwnerProcessId { get; init; }
}
