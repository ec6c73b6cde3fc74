namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>
/// The multi-process cluster tests: each starts a PostgreSQL database and several silo processes, and their failure
/// detection runs on short timings (0.5 s heartbeats, 3 s death timeout), so they run one at a time and never beside
/// other test classes, whose CPU use would stretch those timings.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterTestCollection
{
    public const string Name = "Cluster processes";
}
