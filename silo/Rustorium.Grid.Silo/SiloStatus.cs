using Rustorium.Grid.Grains.Hosting;
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
public sealed record SiloStatus(string Silo, string Region, string Endpoint, DateTimeOffset Started, string DataDirectory, IReadOnlyList<SiloShardStatus> Shards);

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
public sealed record SiloShardStatus(long Id, SiloKeyRange Range, long Version, long TreeVersion, string Root, long KeyCount, long Epoch, bool Active);

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
internal sealed class SiloStatusReader(IShardStore store, LocalSiloDetails silo, ActiveShards active, SiloRunInfo run)
{
    public async Task<SiloStatus> ReadAsync(CancellationToken cancellationToken)
    {
        var shards = await store.ListShardsAsync(cancellationToken).ConfigureAwait(false);
        var items = shards
            .Select(s => new SiloShardStatus(s.ShardId, SiloKeyRange.From(s.Range), s.Version, s.Version, s.Root.ToString(), s.KeyCount,
                s.Epoch, active.Contains(s.ShardId)))
            .ToArray();
        return new SiloStatus(silo.Name, silo.Region, silo.Endpoint, run.Started, run.DataDirectory, items);
    }
}

/// <summary>Facts about this run of the silo.</summary>
internal sealed record SiloRunInfo(DateTimeOffset Started, string DataDirectory);
