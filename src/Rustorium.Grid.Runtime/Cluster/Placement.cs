using Rustorium.Grid.Cluster;

namespace Rustorium.Grid.Runtime.Cluster;

/// <summary>A silo that may receive a shard, with its load as the cluster sees it.</summary>
/// <param name="Silo">The silo.</param>
/// <param name="Region">Its region.</param>
/// <param name="Shards">Shards it owns now.</param>
/// <param name="Keys">Keys in those shards.</param>
public sealed record PlacementCandidate(SiloAddress Silo, string Region, int Shards, long Keys)
{
    /// <summary>The load it reported with its last heartbeat (calls per second, activations); zero if it reported none.</summary>
    public SiloLoad Load { get; init; }
}

/// <summary>What a placement decision is about.</summary>
/// <param name="ShardId">The shard to place.</param>
/// <param name="Epoch">Its current epoch (decisions may differ per epoch, so a failed placement is retried elsewhere).</param>
/// <param name="Candidates">Active silos, ordered by address; never empty.</param>
/// <param name="Requester">The silo a request for the shard arrived at, if a request triggered the placement.</param>
public sealed record PlacementRequest(long ShardId, long Epoch, IReadOnlyList<PlacementCandidate> Candidates, SiloAddress? Requester);

/// <summary>
/// Chooses the silo a shard without a live owner goes to (Orleans's placement director). Every silo asks the same
/// director with the same snapshot, so a director must be deterministic: the silos then agree on one target and only it
/// claims (the claim is conditional anyway, so disagreement costs a retry, never a second owner).
/// </summary>
public interface IPlacementDirector
{
    /// <summary>The name used in configuration (<c>Silo:Cluster:Placement</c>).</summary>
    string Name { get; }

    /// <summary>The chosen silo: one of <see cref="PlacementRequest.Candidates"/>.</summary>
    SiloAddress Choose(PlacementRequest request);
}

/// <summary>Spreads shards uniformly at random: a hash of the shard id and epoch picks the candidate.</summary>
public sealed class RandomPlacement : IPlacementDirector
{
    /// <inheritdoc />
    public string Name => "random";

    /// <inheritdoc />
    public SiloAddress Choose(PlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ulong h = Mix((ulong)request.ShardId * 0x9E3779B97F4A7C15UL ^ (ulong)request.Epoch);
        return request.Candidates[(int)(h % (ulong)request.Candidates.Count)].Silo;
    }

    internal static ulong Mix(ulong x)
    {
        x ^= x >> 33;
        x *= 0xFF51AFD7ED558CCDUL;
        x ^= x >> 33;
        x *= 0xC4CEB9FE1A85EC53UL;
        return x ^ (x >> 33);
    }
}

/// <summary>Places a shard on the silo its first request arrived at, if that silo is a candidate; otherwise as <see cref="RandomPlacement"/>.</summary>
public sealed class PreferLocalPlacement : IPlacementDirector
{
    private readonly RandomPlacement _fallback = new();

    /// <inheritdoc />
    public string Name => "prefer-local";

    /// <inheritdoc />
    public SiloAddress Choose(PlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Requester is { } requester && request.Candidates.Any(c => c.Silo == requester)) return requester;
        return _fallback.Choose(request);
    }
}

/// <summary>
/// Places a shard on the least-loaded silo: fewest shards; among those, the least busy by the calls per second its shards
/// serve (compared on a doubling scale: 0, 1, 2–3, 4–7, … calls/s, so that noise between heartbeats does not decide), then
/// the fewest grain activations, then the fewest keys, then address order. Every input comes from the membership table and
/// the directory, so every silo picks the same one. The default.
/// </summary>
/// <remarks>
/// Shard count comes first on purpose: it changes with every claim the directory records, so several orphans placed from
/// one snapshot still spread; reported load changes only with the next heartbeats, and ranked first it would send them all
/// to the silo that was idlest a second ago.
/// </remarks>
public sealed class LoadBasedPlacement : IPlacementDirector
{
    /// <inheritdoc />
    public string Name => "load-based";

    /// <inheritdoc />
    public SiloAddress Choose(PlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Candidates
            .OrderBy(c => c.Shards)
            .ThenBy(c => BusyClass(c.Load.OpsPerSecond))
            .ThenBy(c => c.Load.Activations)
            .ThenBy(c => c.Keys)
            .ThenBy(c => c.Silo.Endpoint, StringComparer.Ordinal)
            .ThenBy(c => c.Silo.Generation)
            .First().Silo;
    }

    /// <summary>0 for under 1 call/s, then k + 1 for [2^k, 2^(k+1)) calls/s.</summary>
    internal static int BusyClass(double opsPerSecond) =>
        !double.IsFinite(opsPerSecond) || opsPerSecond < 1 ? 0 : 1 + (int)Math.Floor(Math.Log2(Math.Min(opsPerSecond, 1e15)));
}

/// <summary>The built-in directors by name.</summary>
public static class PlacementDirectors
{
    /// <summary>The names <see cref="Create"/> knows.</summary>
    public static IReadOnlyList<string> Names { get; } = ["load-based", "random", "prefer-local"];

    /// <summary>The director called <paramref name="name"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for an unknown name.</exception>
    public static IPlacementDirector Create(string name) => name?.ToLowerInvariant() switch
    {
        "load-based" => new LoadBasedPlacement(),
        "random" => new RandomPlacement(),
        "prefer-local" => new PreferLocalPlacement(),
        _ => throw GridException.InvalidArgument($"Unknown placement director '{name}'; use one of {string.Join(", ", Names)}."),
    };
}
