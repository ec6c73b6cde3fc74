using System.Net;
using System.Text.Json;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>
/// One real silo process of a <see cref="GridCluster"/>: a cluster member on the cluster's PostgreSQL database, on
/// loopback ports of its own, which a test can crash (SIGKILL), pause (SIGSTOP), resume (SIGCONT) or stop (SIGTERM).
/// </summary>
internal sealed class ClusterSilo : IAsyncDisposable
{
    private readonly SiloProcess _process;

    private ClusterSilo(string name, SiloProcess process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>The silo's name (<c>silo-1</c>, …), also its log prefix in failure dumps.</summary>
    public string Name { get; }

    /// <summary>The grid endpoint the directory and the shard map name it by.</summary>
    public string Endpoint => $"127.0.0.1:{_process.Port}";

    /// <summary>The OS process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>What the silo wrote so far.</summary>
    public string Output => _process.Output;

    /// <summary>Starts <c>rustorium-silo --store postgres …</c> with the cluster settings given.</summary>
    public static ClusterSilo Start(string name, string dataDirectory, string connectionString, string schema, IEnumerable<string> settings)
    {
        string[] args =
        [
            "--store", "postgres", "--postgres", connectionString, "--schema", schema, "--name", name, "--region", "test-region",
            .. settings,
        ];
        return new ClusterSilo(name, SiloProcess.Start(dataDirectory, args));
    }

    /// <summary>Polls GET /health until the silo answers; fails at the deadline or if it exits first.</summary>
    public Task WaitUntilHealthyAsync(TimeSpan deadline) => _process.WaitUntilHealthyAsync(deadline);

    /// <summary>SIGKILL: the process dies at once, with requests in flight and without leaving the cluster.</summary>
    public Task KillAsync() => _process.SignalAsync("KILL");

    /// <summary>SIGSTOP: the process freezes (a GC pause, a VM migration, a partition); its sockets stay open.</summary>
    public Task PauseAsync() => _process.SignalAsync("STOP");

    /// <summary>SIGCONT: a paused process runs on.</summary>
    public Task ResumeAsync() => _process.SignalAsync("CONT");

    /// <summary>SIGTERM: a clean stop (the silo hands its shards over and leaves).</summary>
    public Task TerminateAsync() => _process.TerminateAsync();

    /// <summary>The exit code; fails if the process still runs at the deadline.</summary>
    public Task<int> WaitForExitAsync(TimeSpan deadline) => _process.WaitForExitAsync(deadline);

    /// <summary>GET /status: the shard ids the silo reports active, with the epoch it reports for each.</summary>
    public async Task<IReadOnlyDictionary<long, long>> ReadActiveShardsAsync(CancellationToken cancellationToken)
    {
        using var document = JsonDocument.Parse(await _process.Http.GetStringAsync("/status", cancellationToken));
        var active = new Dictionary<long, long>();
        foreach (var shard in document.RootElement.GetProperty("shards").EnumerateArray())
        {
            if (shard.GetProperty("active").GetBoolean())
                active[shard.GetProperty("id").GetInt64()] = shard.GetProperty("epoch").GetInt64();
        }
        return active;
    }

    /// <summary>Calls this silo's control grain (key 0) over a connection of its own.</summary>
    public async Task<T> CallControlAsync<T>(Func<ISiloControlGrain, Task<T>> call)
    {
        await using var client = await GrainClient.ConnectAsync(IPEndPoint.Parse(Endpoint), new GridConnectionOptions { PeerName = "cluster-test" });
        return await call(client.GetGrain<ISiloControlGrain>(0));
    }

    /// <summary>The last <paramref name="lines"/> lines of the silo's output, each prefixed with its name.</summary>
    public string Tail(int lines)
    {
        var all = Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var state = HasExited ? "exited" : "running";
        var header = $"---- {Name} ({Endpoint}, pid {ProcessId}, {state}; last {Math.Min(lines, all.Length)} of {all.Length} lines)";
        return string.Join('\n', [header, .. all.TakeLast(lines).Select(l => $"[{Name}] {l.TrimEnd('\r')}")]);
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
