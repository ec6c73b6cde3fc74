using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Cli.Tests;

/// <summary>
/// Two cluster silos (<c>--store postgres</c>) on a fresh database of the shared test PostgreSQL server, for the tests of a
/// class. Rebalancing is off so that shards stay where a test puts them, and the membership and reconcile rounds are
/// short so the silos see each other quickly.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private TestSilo? _a;
    private TestSilo? _b;

    public string ConnectionString { get; private set; } = "";

    internal TestSilo A => _a ?? throw new InvalidOperationException("not started");

    internal TestSilo B => _b ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.SharedAsync();
        ConnectionString = await server.CreateDatabaseAsync("clicluster");
        string[] cluster =
        [
            "--store", "postgres", "--postgres", ConnectionString, "--shards", "4",
            "--Silo:Cluster:Rebalance=false",
            "--Silo:Cluster:HeartbeatInterval=00:00:00.250",
            "--Silo:Cluster:ReconcileInterval=00:00:00.250",
        ];
        var a = TestSilo.StartAsync([.. cluster, "--name", "silo-a"]);
        var b = TestSilo.StartAsync([.. cluster, "--name", "silo-b"]);
        try
        {
            _a = await a;
        }
        finally
        {
            _b = await b;
        }
    }

    public async Task DisposeAsync()
    {
        if (_a is not null) await _a.DisposeAsync();
        if (_b is not null) await _b.DisposeAsync();
    }
}
