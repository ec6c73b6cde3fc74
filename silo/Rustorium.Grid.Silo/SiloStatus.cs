using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Silo;

/// <summary>The body of <c>GET /status</c>.</summary>
/// <param name="Silo">The silo's name.</param>
/// <param name="Region">Its region.</param>
/// <param name="Endpoint">Its advertised grid endpoint, <c>host:port</c>.</param>
/// <param name="Started">When it started serving (UTC).</param>
/// <param name="DataDirectory">Its store's directory.</param>
/// <param name="Shards">Every shard the store holds, in key order.</param>
/// <param name="Cluster">Membership and map generation when the silo is a cluster member (<c>--store postgres</c>); null on the embedded store.</param>
/// <param name="Store">What the silo's shard store has committed since the silo started, and the time it took.</param>
/// <param name="Process">The silo process's CPU time and memory since it started.</param>
public sealed record SiloStatus(string Silo, string Region, string Endpoint, DateTimeOffset Started, string DataDirectory, IReadOnlyList<SiloShardStatus> Shards,
    SiloClusterStatus? Cluster = null, SiloStoreStatus? Store = null, SiloProcessStatus? Process = null);

/// <summary>
/// What the silo process has used since it started (docs/silo.md "Status"). Two readings around a load give its CPU
/// time per operation, a figure that a busy shared machine disturbs far less than operations per second.
/// </summary>
/// <param name="CpuSeconds">User plus system CPU time of the whole process, all threads (<see cref="System.Diagnostics.Process.TotalProcessorTime"/>).</param>
/// <param name="GcPauseSeconds">Time the garbage collector held the process's threads (<see cref="GC.GetTotalPauseDuration"/>).</param>
/// <param name="AllocatedBytes">Bytes allocated on the managed heap (<see cref="GC.GetTotalAllocatedBytes"/>).</param>
/// <param name="WorkingSetBytes">Physical memory the process holds now.</param>
/// <param name="Processors">Processors the runtime may use (<see cref="Environment.ProcessorCount"/>).</param>
public sealed record SiloProcessStatus(double CpuSeconds, double GcPauseSeconds, long AllocatedBytes, long WorkingSetBytes, int Processors)
{
    /// <summary>A reading of the current process now.</summary>
    public static SiloProcessStatus Now()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return new(self.TotalProcessorTime.TotalSeconds, GC.GetTotalPauseDuration().TotalSeconds, GC.GetTotalAllocatedBytes(), self.WorkingSet64,
            Environment.ProcessorCount);
    }
}

/// <summary>
/// <see cref="ShardStoreStatistics"/> for JSON, times in seconds (docs/storage.md "Statistics"). With
/// <paramref name="TreeCommitSeconds"/> against <paramref name="DataCommitSeconds"/> and <paramref name="SyncSeconds"/>, and
/// the node rows per row written, it says how much of the store's write capacity the tree's checkpoints take.
/// </summary>
public sealed record SiloStoreStatus(string Provider, string Location, long DataCommits, long RowsWritten, long TreeCommits, long NodesWritten, long NodesDeleted,
    long Transactions, double DataCommitSeconds, double TreeCommitSeconds, double SyncSeconds)
{
    /// <summary>The JSON form of <paramref name="s"/>.</summary>
    public static SiloStoreStatus From(ShardStoreStatistics s) => new(s.Provider, s.Location, s.DataCommits, s.RowsWritten, s.TreeCommits, s.NodesWritten,
        s.NodesDeleted, s.Transactions, s.DataCommitTime.TotalSeconds, s.TreeCommitTime.TotalSeconds, s.SyncTime.TotalSeconds);
}

/// <summary>The cluster as this silo sees it.</summary>
/// <param name="Address">This silo's member address (<c>host:port@generation</c>).</param>
/// <param name="Serving">Whether it may serve now (joined, not declared dead, heartbeat lease valid).</param>
/// <param name="MapGeneration">The shard map's generation.</param>
/// <param name="Members">Every member the table lists (the dead too), by address.</param>
public sealed record SiloClusterStatus(string Address, bool Serving, long MapGeneration, IReadOnlyList<SiloMemberStatus> Members);

/// <summary>A member in <see cref="SiloClusterStatus"/>.</summary>
/// <param name="Address">Its address.</param>
/// <param name="Name">Its name.</param>
/// <param name="Region">Its region.</param>
/// <param name="Status">Active, ShuttingDown or Dead.</param>
/// <param name="HeartbeatAgeMs">Age of its last heartbeat at the last read, by the database clock.</param>
/// <param name="Shards">Shards the directory gives it.</param>
public sealed record SiloMemberStatus(string Address, string Name, string Region, string Status, double HeartbeatAgeMs, int Shards);

/// <summary>One shard in <see cref="SiloStatus"/>.</summary>
/// <param name="Id">The shard id.</param>
/// <param name="Range">Its keys.</param>
/// <param name="Version">Last committed data version.</param>
/// <param name="TreeVersion">Version of the published tree and root; equal to <paramref name="Version"/> while the tree
/// commits with the rows (docs/sharding.md), and at most it once the fold is decoupled.</param>
/// <param name="Root">The sparse Merkle root at <paramref name="TreeVersion"/>, decimal.</param>
/// <param name="KeyCount">Keys at <paramref name="TreeVersion"/>.</param>
/// <param name="Epoch">The ownership epoch (moves on each time the shard is activated).</param>
/// <param name="Active">True if the shard's grain is active in this silo now.</param>
/// <param name="Owner">In a cluster, the owner's member address (null when nobody owns it); null on the embedded store.</param>
public sealed record SiloShardStatus(long Id, SiloKeyRange Range, long Version, long TreeVersion, string Root, long KeyCount, long Epoch, bool Active,
    string? Owner = null);

/// <summary>A key range in hex: <paramref name="Start"/> inclusive (empty: the beginning of the key space), <paramref name="End"/> exclusive (null: unbounded).</summary>
public sealed record SiloKeyRange(string Start, string? End)
{
    /// <summary>The hex form of <paramref name="range"/>.</summary>
    public static SiloKeyRange From(KeyRange range) =>
        new(Convert.ToHexStringLower(range.Start), range.IsUnbounded ? null : Convert.ToHexStringLower(range.End));
}

/// <summary>
/// Builds <see cref="SiloStatus"/> from the store, never from the grains: reading the status activates nothing, and
/// the store's row of each shard is one consistent snapshot (an active shard's engine moves its counters only after
/// the store committed, so the row is as current as the grain).
/// </summary>
internal sealed class SiloStatusReader(IShardStore store, LocalSiloDetails silo, ActiveShards active, SiloRunInfo run, IServiceProvider services)
{
    public async Task<SiloStatus> ReadAsync(CancellationToken cancellationToken)
    {
        var shards = await store.ListShardsAsync(cancellationToken).ConfigureAwait(false);
        var directory = services.GetService(typeof(IShardDirectory)) as IShardDirectory;
        var membership = services.GetService(typeof(ClusterMembership)) as ClusterMembership;
        if (directory is null || membership is null || !membership.HasJoined)
        {
            var items = shards
                .Select(s => new SiloShardStatus(s.ShardId, SiloKeyRange.From(s.Range), s.Version, s.Version, s.Root.ToString(), s.KeyCount,
                    s.Epoch, active.Contains(s.ShardId)))
                .ToArray();
            return new SiloStatus(silo.Name, silo.Region, silo.Endpoint, run.Started, run.DataDirectory, items, Store: SiloStoreStatus.From(store.Statistics),
                Process: SiloProcessStatus.Now());
        }

        var map = await directory.ReadAsync(cancellationToken).ConfigureAwait(false);
        var owners = map.Shards.ToDictionary(s => s.ShardId, s => s.Owner);
        var clustered = shards
            .Select(s => new SiloShardStatus(s.ShardId, SiloKeyRange.From(s.Range), s.Version, s.Version, s.Root.ToString(), s.KeyCount,
                s.Epoch, active.Contains(s.ShardId), owners.GetValueOrDefault(s.ShardId)?.ToString()))
            .ToArray();
        var members = membership.Members
            .Select(m => new SiloMemberStatus(m.Address.ToString(), m.Name, m.Region, m.Status.ToString(), m.HeartbeatAge.TotalMilliseconds,
                map.Shards.Count(s => s.Owner == m.Address)))
            .ToArray();
        return new SiloStatus(silo.Name, silo.Region, silo.Endpoint, run.Started, run.DataDirectory, clustered,
            new SiloClusterStatus(membership.Address.ToString(), membership.IsServing, map.Generation, members), SiloStoreStatus.From(store.Statistics),
            SiloProcessStatus.Now());
    }
}

/// <summary>Facts about this run of the silo.</summary>
internal sealed record SiloRunInfo(DateTimeOffset Started, string DataDirectory);
