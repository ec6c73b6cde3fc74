using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;

namespace Rustorium.Grid.Grains.Cluster;

/// <summary>Settings of shard placement and rebalancing in a cluster (section <c>Silo:Cluster</c>).</summary>
public sealed record ShardPlacementOptions
{
    /// <summary>How often a silo reconciles its shards with the directory (and on every membership change). Default 1 s.</summary>
    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether silos move shards to even out the load (when a silo joins, for instance). Default true.</summary>
    public bool Rebalance { get; init; } = true;

    /// <summary>
    /// A silo gives a shard away only if it owns at least this many more shards than the least-loaded active silo
    /// (hysteresis: a move never just swaps the imbalance). At least 2. Default 2.
    /// </summary>
    public int RebalanceThreshold { get; init; } = 2;

    /// <summary>A shard that moved is not moved again for this long (no ping-pong). Default 30 s.</summary>
    public TimeSpan MoveCooldown { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the settings; one message per problem, naming the setting.</summary>
    public IReadOnlyList<string> Validate(string prefix = "Silo:Cluster:")
    {
        var problems = new List<string>();
        if (ReconcileInterval < TimeSpan.FromMilliseconds(100) || ReconcileInterval > TimeSpan.FromMinutes(5))
            problems.Add($"{prefix}ReconcileInterval must be 00:00:00.1..00:05:00; got {ReconcileInterval}.");
        if (RebalanceThreshold < 2) problems.Add($"{prefix}RebalanceThreshold must be at least 2 (a smaller gap would move shards back and forth); got {RebalanceThreshold}.");
        if (MoveCooldown < TimeSpan.Zero || MoveCooldown > TimeSpan.FromDays(1))
            problems.Add($"{prefix}MoveCooldown must be 00:00:00..1.00:00:00; got {MoveCooldown}.");
        return problems;
    }
}

/// <summary>
/// Keeps this silo's shards in line with the directory (docs/placement.md). Every <see cref="ShardPlacementOptions.ReconcileInterval"/>
/// and on every membership change it: opens the shards the directory gives it; closes shards it serves that the directory
/// gives to someone else (it was fenced); claims the shards without a live owner that the placement director assigns to
/// it; and, when rebalancing is on, hands one shard at a time to the least-loaded silo while it owns
/// <see cref="ShardPlacementOptions.RebalanceThreshold"/> or more shards more than that silo. When the silo stops it hands
/// every shard it owns to the remaining active silos before it leaves.
/// </summary>
public sealed class ShardOwnershipService : IHostedService, IAsyncDisposable
{
    private readonly IShardDirectory _directory;
    private readonly IMembershipTable _table;
    private readonly ClusterMembership _membership;
    private readonly ClusterShardActivation _activation;
    private readonly ActiveShards _active;
    private readonly IGrainFactory _grains;
    private readonly ActivationDirectory _activations;
    private readonly SiloConnections _silos;
    private readonly ShardPlacementOptions _options;
    private readonly ILogger<ShardOwnershipService> _logger;
    private readonly ConcurrentDictionary<long, long> _lastMoved = new();
    private readonly SemaphoreSlim _moves = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    /// <summary>Created by DI.</summary>
    public ShardOwnershipService(IShardDirectory directory, IMembershipTable table, ClusterMembership membership, ClusterShardActivation activation,
        ActiveShards active, IGrainFactory grains, ActivationDirectory activations, SiloConnections silos, ShardPlacementOptions options,
        ILogger<ShardOwnershipService> logger)
    {
        _directory = directory;
        _table = table;
        _membership = membership;
        _activation = activation;
        _active = active;
        _grains = grains;
        _activations = activations;
        _silos = silos;
        _options = options;
        _logger = logger;
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var changed = _membership.WaitForChangeAsync(cancellationToken);
            try
            {
                await ReconcileAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogWarning("Reconciling shards with the directory failed: {Message}", e.Message);
            }
            try
            {
                await Task.WhenAny(changed, Task.Delay(_options.ReconcileInterval, cancellationToken)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One reconciliation round (see the class remarks). Public for tests that drive rounds themselves.</summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        if (!_membership.IsServing) return;
        var self = _membership.Address;
        var snapshot = await _directory.ReadAsync(cancellationToken).ConfigureAwait(false);

        foreach (var shard in snapshot.Shards)
        {
            bool mine = shard.Owner == self;
            bool activeHere = _active.TryGetEpoch(shard.ShardId, out long activeEpoch);
            if (activeHere && (!mine || activeEpoch != shard.Epoch))
            {
                _logger.LogWarning("Shard {Shard} is owned by {Owner} (epoch {Epoch}); closing it here (epoch {Local})", shard.ShardId,
                    shard.Owner?.ToString() ?? "nobody", shard.Epoch, activeEpoch);
                await _activations.DeactivateAsync(ShardGrainId(shard.ShardId), DeactivationReason.OwnershipLost).ConfigureAwait(false);
                activeHere = false;
            }
            if (mine && !activeHere) await TryOpenAsync(shard.ShardId, cancellationToken).ConfigureAwait(false);
        }

        if (_membership.StatusOf(self) != SiloStatus.Active) return;
        var active = _membership.ActiveMembers;
        foreach (var shard in snapshot.Shards)
        {
            if (shard.Owner is { } owner && await _membership.StatusOfAsync(owner, cancellationToken).ConfigureAwait(false) != SiloStatus.Dead) continue;
            var candidates = ClusterShardActivation.Candidates(snapshot, active);
            if (candidates.Count == 0) break;
            var target = await _activation.ChooseAsync(shard.ShardId, shard.Epoch, null, cancellationToken).ConfigureAwait(false);
            if (target != self) continue;
            // Opening claims it (the activation checks the directory again under the conditional update).
            _logger.LogInformation("Taking shard {Shard} (owner {Owner} is gone)", shard.ShardId, shard.Owner?.ToString() ?? "none");
            await TryOpenAsync(shard.ShardId, cancellationToken).ConfigureAwait(false);
        }

        if (_options.Rebalance) await RebalanceOnceAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task RebalanceOnceAsync(CancellationToken cancellationToken)
    {
        var self = _membership.Address;
        var snapshot = await _directory.ReadAsync(cancellationToken).ConfigureAwait(false);
        var candidates = ClusterShardActivation.Candidates(snapshot, _membership.ActiveMembers);
        if (candidates.Count < 2) return;
        var mine = candidates.FirstOrDefault(c => c.Silo == self);
        if (mine is null) return;
        var least = candidates.Where(c => c.Silo != self).OrderBy(c => c.Shards).ThenBy(c => c.Keys)
            .ThenBy(c => c.Silo.Endpoint, StringComparer.Ordinal).First();
        if (mine.Shards - least.Shards < _options.RebalanceThreshold) return;
        // Only the most loaded silos give shards away, so two silos never move shards to each other in one round.
        if (candidates.Any(c => c.Shards > mine.Shards)) return;

        long now = Stopwatch.GetTimestamp();
        var movable = snapshot.Shards
            .Where(s => s.Owner == self)
            .Where(s => !_lastMoved.TryGetValue(s.ShardId, out long at) || Stopwatch.GetElapsedTime(at, now) >= _options.MoveCooldown)
            .OrderBy(s => s.KeyCount).ThenBy(s => s.ShardId)
            .FirstOrDefault();
        if (movable is null) return;
        // The view may be a heartbeat old: a silo that began to shut down must not be handed a shard.
        if (await _membership.StatusOfAsync(least.Silo, cancellationToken, refresh: true).ConfigureAwait(false) != SiloStatus.Active) return;
        _logger.LogInformation("Rebalancing: moving shard {Shard} ({Keys} keys) to {Target} ({Mine} shards here, {Theirs} there)",
            movable.ShardId, movable.KeyCount, least.Silo, mine.Shards, least.Shards);
        await HandOverAsync(movable.ShardId, least.Silo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Hands shard <paramref name="shardId"/>, owned here, to <paramref name="target"/>: closes it here (queued writes
    /// commit under the current epoch; calls arriving meanwhile wait), moves ownership in the directory (epoch + 1, which
    /// fences this silo), then asks the target to open it. Calls that waited are redirected to the target.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> if this silo does not own the shard;
    /// <see cref="GridErrorCode.Conflict"/> if a move of it is already in progress.</exception>
    public async Task<ShardMoveResult> HandOverAsync(long shardId, SiloAddress target, CancellationToken cancellationToken)
    {
        var self = _membership.Address;
        if (target == self) throw GridException.InvalidArgument($"Shard {shardId} is already on {self}.");
        var started = Stopwatch.GetTimestamp();
        await _moves.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var row = await _directory.GetAsync(shardId, cancellationToken).ConfigureAwait(false);
            if (row.Owner != self)
                throw new GridException(GridErrorCode.NotOwner, $"Shard {shardId} is owned by {row.Owner?.ToString() ?? "nobody"}, not by this silo ({self}).")
                {
                    OwnerHint = row.Owner is { } o ? new OwnerHint(shardId, o.Endpoint, row.Epoch) : null,
                };
            if (!_activation.BeginHandover(shardId)) throw new GridException(GridErrorCode.Conflict, $"Shard {shardId} is already moving.");
            ShardOwnership moved;
            try
            {
                await _activations.DeactivateAsync(ShardGrainId(shardId), DeactivationReason.Migrating).ConfigureAwait(false);
                moved = await _directory.ClaimAsync(shardId, target, row.Epoch, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _activation.EndHandover(shardId);
            }
            _lastMoved[shardId] = Stopwatch.GetTimestamp();
            try
            {
                var silo = await _silos.GetAsync(target.Endpoint, cancellationToken).ConfigureAwait(false);
                await silo.GetGrain<ISiloControlGrain>(0).AcceptShardAsync(shardId, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is GridException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // The target's own reconciliation opens it within a round.
                _logger.LogWarning("Shard {Shard} moved to {Target}, which did not confirm opening it: {Message}", shardId, target, e.Message);
            }
            var elapsed = Stopwatch.GetElapsedTime(started);
            _logger.LogInformation("Moved shard {Shard} to {Target} (epoch {Epoch}, version {Version}) in {Ms:0.0} ms", shardId, target, moved.Epoch,
                moved.Version, elapsed.TotalMilliseconds);
            return new ShardMoveResult(shardId, self.Endpoint, target.Endpoint, moved.Epoch, moved.Version, (long)elapsed.TotalMicroseconds);
        }
        finally
        {
            _moves.Release();
        }
    }

    /// <summary>Opens a shard handed to this silo (see <see cref="OpenAsync"/>); it then stays here for <see cref="ShardPlacementOptions.MoveCooldown"/>.</summary>
    public Task<long> AcceptAsync(long shardId, CancellationToken cancellationToken)
    {
        _lastMoved[shardId] = Stopwatch.GetTimestamp();
        return OpenAsync(shardId, cancellationToken);
    }

    /// <summary>Opens shard <paramref name="shardId"/> here (its activation claims or adopts it); returns the epoch it serves under.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> with the owner's address if the directory gives it to another silo.</exception>
    public async Task<long> OpenAsync(long shardId, CancellationToken cancellationToken)
    {
        var status = await _grains.GetGrain<IShardGrain>(shardId).GetStatusAsync(cancellationToken).ConfigureAwait(false);
        return status.Epoch;
    }

    private async Task TryOpenAsync(long shardId, CancellationToken cancellationToken)
    {
        try
        {
            await OpenAsync(shardId, cancellationToken).ConfigureAwait(false);
        }
        catch (GridException e)
        {
            _logger.LogDebug("Shard {Shard} did not open here: {Message}", shardId, e.Message);
        }
    }

    /// <inheritdoc />
    /// <remarks>Hands every shard this silo owns to the remaining active silos (least loaded first), unless the cluster declared it dead.</remarks>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        if (!_membership.HasJoined || _membership.IsDeclaredDead) return;
        var self = _membership.Address;
        try
        {
            await _table.SetStatusAsync(self, SiloStatus.ShuttingDown, cancellationToken).ConfigureAwait(false);
            var snapshot = await _directory.ReadAsync(cancellationToken).ConfigureAwait(false);
            var others = ClusterShardActivation.Candidates(snapshot, _membership.ActiveMembers.Where(m => m.Address != self).ToList()).ToList();
            var mine = snapshot.Shards.Where(s => s.Owner == self).ToList();
            if (others.Count == 0)
            {
                _logger.LogInformation("No other active silo: {Count} shards stay assigned to this silo until one takes them", mine.Count);
                return;
            }
            _logger.LogInformation("Handing {Count} shards over to {Silos} active silos before leaving", mine.Count, others.Count);
            foreach (var shard in mine)
            {
                var target = others.OrderBy(c => c.Shards).ThenBy(c => c.Keys).ThenBy(c => c.Silo.Endpoint, StringComparer.Ordinal).First();
                try
                {
                    await HandOverAsync(shard.ShardId, target.Silo, cancellationToken).ConfigureAwait(false);
                    others[others.IndexOf(target)] = target with { Shards = target.Shards + 1, Keys = target.Keys + shard.KeyCount };
                }
                catch (GridException e)
                {
                    _logger.LogWarning("Could not hand shard {Shard} to {Target}: {Message}", shard.ShardId, target.Silo, e.Message);
                }
            }
        }
        catch (Exception e) when (e is GridException or OperationCanceledException)
        {
            _logger.LogWarning("Handing shards over on shutdown stopped early ({Message}); the cluster re-homes the rest when this silo leaves", e.Message);
        }
    }

    internal static GrainId ShardGrainId(long shardId) => GrainId.Create("shard", shardId);

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _stopping.Dispose();
        _moves.Dispose();
        return ValueTask.CompletedTask;
    }
}
