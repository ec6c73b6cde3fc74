using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;

namespace Rustorium.Grid.Runtime.Cluster;

/// <summary>
/// A cluster member's grain call router and activation gate for <see cref="GrainPlacementKind.Directory"/> grains: one
/// activation per grain in the whole cluster, located through the <see cref="IGrainDirectory"/>.
/// </summary>
/// <remarks>
/// <para><b>Routing</b> (every call, from a client, another silo or a grain here): a grain active here runs here; otherwise
/// the grain type's <see cref="IGrainPlacementDirector"/> chooses a silo among the active members (prefer-local, the default,
/// chooses this one), the directory is asked to register the grain to it, and the answer names the silo that holds it — the
/// chosen one, or whichever a concurrent placement registered first — to which the call goes: run here, or forwarded over the
/// silo connections (the receiving silo finds the registration naming itself and activates). Remote locations are cached and dropped when a forwarded call fails with <see cref="GridErrorCode.NotOwner"/>,
/// <see cref="GridErrorCode.Unavailable"/> or <see cref="GridErrorCode.UnknownShard"/>; the call is then routed again, a few
/// times, with a short back-off (a holder that died is free once the cluster declares it dead).</para>
/// <para><b>Gate</b>: before a new activation runs grain code, this silo must hold the grain's registration (registering it if
/// it is free); if a live silo holds it, the activation is refused with <see cref="GridErrorCode.NotOwner"/> and the router
/// forwards. When an activation has gone, its registration is removed (conditional on its epoch) unless a newer activation
/// of the grain already runs here. Registration changes of this silo are serialised, so an unregistration can never remove
/// the registration a newer activation relies on.</para>
/// <para>Local-placed grain types (<see cref="GrainPlacementKind.Local"/>: shard grains, per-silo grains) bypass all of it.</para>
/// </remarks>
public sealed class ClusterGrainRouter : IGrainCallInvoker, IGrainActivationGate
{
    /// <summary>How often a call is routed again after its target moved or its silo was unreachable.</summary>
    public const int MaxRouteAttempts = 6;

    private readonly ActivationDirectory _activations;
    private readonly GrainTypeRegistry _registry;
    private readonly IGrainDirectory _directory;
    private readonly ClusterMembership _membership;
    private readonly SiloConnections _connections;
    private readonly GrainPlacementDirectors _directors;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<GrainId, GrainDirectoryEntry> _remote = new();
    private readonly ConcurrentDictionary<GrainId, GrainDirectoryEntry> _held = new();
    private readonly SemaphoreSlim _registrationLock = new(1, 1);

    /// <summary>Creates the router of this silo.</summary>
    /// <param name="activations">This silo's activations.</param>
    /// <param name="registry">The grain types this silo hosts.</param>
    /// <param name="directory">The cluster's grain directory.</param>
    /// <param name="membership">This silo's view of the cluster.</param>
    /// <param name="connections">Connections to the other silos.</param>
    /// <param name="logger">Where routing decisions are logged.</param>
    /// <param name="directors">The placement directors (default: the built-in ones, prefer-local for grain types that name none).</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>: a registered grain type names a director that is not known.</exception>
    public ClusterGrainRouter(ActivationDirectory activations, GrainTypeRegistry registry, IGrainDirectory directory, ClusterMembership membership,
        SiloConnections connections, ILogger<ClusterGrainRouter>? logger = null, GrainPlacementDirectors? directors = null)
    {
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(membership);
        ArgumentNullException.ThrowIfNull(connections);
        _activations = activations;
        _registry = registry;
        _directory = directory;
        _membership = membership;
        _connections = connections;
        _directors = directors ?? new GrainPlacementDirectors();
        _logger = logger ?? (ILogger)NullLogger.Instance;
        // A grain type naming an unknown director fails the silo's start, not its first call.
        foreach (var registration in registry.Registrations)
            if (registration.Placement == GrainPlacementKind.Directory) _directors.For(registration.PlacementDirector);
    }

    /// <inheritdoc />
    public ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (!IsDirectoryPlaced(call.Target.Type) || _activations.IsActive(call.Target)) return _activations.InvokeAsync(call, cancellationToken);
        return new ValueTask<object?>(RouteAsync(call, cancellationToken));
    }

    private bool IsDirectoryPlaced(string grainType) =>
        _registry.TryGet(grainType, out var registration) && registration.Placement == GrainPlacementKind.Directory;

    private async Task<object?> RouteAsync(GrainCall call, CancellationToken cancellationToken)
    {
        var grain = call.Target;
        for (int attempt = 1; ; attempt++)
        {
            GrainDirectoryEntry? remote = null;
            try
            {
                _membership.EnsureServing();
                if (_activations.IsActive(grain)) return await _activations.InvokeAsync(call, cancellationToken).ConfigureAwait(false);
                if (!_remote.TryGetValue(grain, out remote))
                {
                    var entry = await _directory.RegisterAsync(grain, ChooseSilo(grain), cancellationToken).ConfigureAwait(false);
                    if (entry.Silo == _membership.Address)
                    {
                        // Registered here: the new activation's gate finds it held and does not ask the directory again.
                        _held[grain] = entry;
                        return await _activations.InvokeAsync(call, cancellationToken).ConfigureAwait(false);
                    }
                    remote = _remote[grain] = entry;
                }
                var silo = await _connections.GetAsync(remote.Silo.Endpoint, cancellationToken).ConfigureAwait(false);
                return await silo.Invoker.InvokeAsync(call, cancellationToken).ConfigureAwait(false);
            }
            catch (GridException ex) when (attempt < MaxRouteAttempts && ex.Code is GridErrorCode.NotOwner or GridErrorCode.Unavailable or GridErrorCode.UnknownShard
                                           && !IsOwnUnavailability(ex, remote))
            {
                // The grain moved (or its activation here was refused), or its silo is gone: forget where it was, route again.
                if (remote is not null) _remote.TryRemove(KeyValuePair.Create(grain, remote));
                _logger.LogDebug("Routing {Call} again (attempt {Attempt}): {Reason}", call, attempt + 1, ex.Message);
                if (ex.Code == GridErrorCode.Unavailable) await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // Where a grain active nowhere goes: its type's director picks among the active members, as this silo sees them.
    private SiloAddress ChooseSilo(GrainId grain)
    {
        var self = _membership.Address;
        _registry.TryGet(grain.Type, out var registration);
        var director = _directors.For(registration?.PlacementDirector);
        var candidates = _membership.ActiveMembers
            .OrderBy(m => m.Address.Endpoint, StringComparer.Ordinal).ThenBy(m => m.Address.Generation) // the same order on every silo
            .Select(m => new PlacementCandidate(m.Address, m.Region, 0, 0) { Load = m.Load })
            .ToList();
        if (!candidates.Any(c => c.Silo == self)) return self; // not (yet) in its own view of the cluster: keep the grain here
        var chosen = director.Choose(new GrainPlacementRequest(grain, candidates, self));
        if (chosen != self) _logger.LogDebug("Placing {Grain} on {Silo} ({Director})", grain, chosen, director.Name);
        return chosen;
    }

    // This silo itself not serving (lease out, shutting down) is not something routing again can fix.
    private bool IsOwnUnavailability(GridException ex, GrainDirectoryEntry? remote) =>
        ex.Code == GridErrorCode.Unavailable && remote is null && !_membership.IsServing;

    /// <inheritdoc />
    public async ValueTask OnActivatingAsync(GrainId grain, GrainTypeRegistration registration, CancellationToken cancellationToken)
    {
        if (registration.Placement != GrainPlacementKind.Directory) return;
        _membership.EnsureServing();
        await _registrationLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Held already (the router registered it just now, or an earlier activation did and none has unregistered it since:
            // that happens only under this lock): only this silo can give it up while it serves.
            if (_held.ContainsKey(grain)) return;
            var entry = await _directory.RegisterAsync(grain, _membership.Address, cancellationToken).ConfigureAwait(false);
            if (entry.Silo != _membership.Address)
            {
                _held.TryRemove(grain, out _);
                _remote[grain] = entry;
                throw new GridException(GridErrorCode.NotOwner, $"Grain {grain} is active on silo {entry.Silo} (directory epoch {entry.Epoch}), not here.");
            }
            _held[grain] = entry;
            _remote.TryRemove(grain, out _);
        }
        finally
        {
            _registrationLock.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask OnRemovedAsync(GrainId grain, GrainTypeRegistration registration)
    {
        if (registration.Placement != GrainPlacementKind.Directory) return;
        await _registrationLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // A newer activation already runs (or is activating) here: it holds the registration now.
            if (_activations.IsActive(grain) || !_held.TryRemove(grain, out var entry)) return;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _directory.UnregisterAsync(grain, entry.Silo, entry.Epoch, timeout.Token).ConfigureAwait(false);
        }
        finally
        {
            _registrationLock.Release();
        }
    }
}
