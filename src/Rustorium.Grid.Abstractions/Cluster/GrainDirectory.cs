namespace Rustorium.Grid.Cluster;

/// <summary>A grain's row in the cluster's grain directory: the silo incarnation that hosts its one activation, and the epoch.</summary>
/// <param name="Grain">The grain.</param>
/// <param name="Silo">The silo incarnation it is registered to.</param>
/// <param name="Epoch">Moves on (+1) every time the registration passes to another silo incarnation; 1 for the first one.</param>
public sealed record GrainDirectoryEntry(GrainId Grain, SiloAddress Silo, long Epoch);

/// <summary>
/// The directory of grains that live anywhere in the cluster (every grain type except shard grains, whose owners the shard map
/// keeps): which silo hosts each grain's single activation. One activation (invariant 1 for grains): a silo activates such a
/// grain only after the directory names it; a registration passes to another silo only by a conditional change (epoch + 1)
/// when the registered incarnation is no longer alive (dead, or superseded by a later generation on its endpoint) or has
/// unregistered.
/// </summary>
/// <remarks>
/// Liveness is judged by the membership table of the same cluster store, in the same statement: a registration to a silo
/// whose row is <see cref="SiloStatus.Dead"/>, or missing, or whose endpoint has a newer generation, is free (a
/// <see cref="SiloStatus.ShuttingDown"/> silo still holds its registrations). Implementations are thread-safe and durable.
/// Every method that takes a grain refuses the default grain id, and every method that takes a silo an address with a blank
/// endpoint or a generation that is not positive, with <see cref="GridErrorCode.InvalidArgument"/>.
/// </remarks>
public interface IGrainDirectory
{
    /// <summary>The grain's registration, or null when it has none (or only one to a silo that is no longer alive).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a default grain id.</exception>
    Task<GrainDirectoryEntry?> LookupAsync(GrainId grain, CancellationToken cancellationToken);

    /// <summary>
    /// Registers <paramref name="grain"/> to <paramref name="silo"/> unless a live silo already holds it, atomically. Returns the
    /// registration that holds afterwards: <paramref name="silo"/>'s (new, with epoch = previous epoch + 1, or 1 for a grain never
    /// registered; or unchanged, if it already held it), or the live holder's — the caller compares <see cref="GrainDirectoryEntry.Silo"/>.
    /// A registration that <paramref name="silo"/> itself holds is returned unchanged whatever the membership table says of
    /// <paramref name="silo"/>; one it gave up (<see cref="UnregisterAsync"/>) is taken again at the next epoch.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a default grain id.</exception>
    Task<GrainDirectoryEntry> RegisterAsync(GrainId grain, SiloAddress silo, CancellationToken cancellationToken);

    /// <summary>
    /// Removes the registration if it is still <paramref name="silo"/>'s at <paramref name="epoch"/> (a deactivation); true if
    /// removed, false if it had already moved on or was gone. The epoch is kept: a later registration continues from it.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a default grain id or a negative epoch.</exception>
    Task<bool> UnregisterAsync(GrainId grain, SiloAddress silo, long epoch, CancellationToken cancellationToken);

    /// <summary>Removes every registration of <paramref name="silo"/> (its incarnation only); returns how many. For a silo that stopped.</summary>
    Task<int> UnregisterSiloAsync(SiloAddress silo, CancellationToken cancellationToken);

    /// <summary>The registrations held by live silos, grains in ordinal order of their string form, for status pages and tests.</summary>
    Task<IReadOnlyList<GrainDirectoryEntry>> ListAsync(CancellationToken cancellationToken);
}
