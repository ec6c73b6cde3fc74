using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Storage;

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

    /// <summary>A shard with at least this many keys is split in two at its median key. 0 turns size splits off. Default 1,000,000.</summary>
    public long SplitKeys { get; init; } = 1_000_000;

    /// <summary>
    /// A shard serving at least this many calls per second (measured over a reconcile interval) is split in two. 0 turns
    /// load splits off. Default 20,000.
    /// </summary>
    public double SplitOpsPerSecond { get; init; } = 20_000;

    /// <summary>
    /// Two adjacent shards owned by one silo, together holding fewer keys than this and each serving fewer than
    /// <see cref="MergeMaxOpsPerSecond"/> calls per second, are merged. 0 turns merges off. Must be less than half of
    /// <see cref="SplitKeys"/> (a merged shard never qualifies for a split). Default 10,000.
    /// </summary>
    public long MergeKeys { get; init; } = 10_000;

    /// <summary>The call rate under which a shard counts as cold for a merge. Default 10 per second.</summary>
    public double MergeMaxOpsPerSecond { get; init; } = 10;

    /// <summary>Merges stop when the cluster has this many shards (so a new, empty cluster keeps its initial layout). At least 1. Default 8.</summary>
    public int MinShards { get; init; } = 8;

    /// <summary>Checks the settings; one message per problem, naming the setting.</summary>
    public IReadOnlyList<string> Validate(string prefix = "Silo:Cluster:")
    {
        var problems = new List<string>();
        if (SplitKeys < 0) problems.Add($"{prefix}SplitKeys must be 0 (off) or positive; got {SplitKeys}.");
        if (SplitKeys is > 0 and < 4) problems.Add($"{prefix}SplitKeys must be at least 4 (or 0 for off); got {SplitKeys}.");
        if (SplitOpsPerSecond < 0 || double.IsNaN(SplitOpsPerSecond)) problems.Add($"{prefix}SplitOpsPerSecond must be 0 (off) or positive; got {SplitOpsPerSecond}.");
        if (MergeKeys < 0) problems.Add($"{prefix}MergeKeys must be 0 (off) or positive; got {MergeKeys}.");
        if (MergeKeys > 0 && SplitKeys > 0 && MergeKeys * 2 > SplitKeys)
            problems.Add($"{prefix}MergeKeys ({MergeKeys}) must be at most half of {prefix}SplitKeys ({SplitKeys}), or a merged shard would split again.");
        if (MergeMaxOpsPerSecond < 0 || double.IsNaN(MergeMaxOpsPerSecond)) problems.Add($"{prefix}MergeMaxOpsPerSecond must not be negative; got {MergeMaxOpsPerSecond}.");
        if (MinShards < 1) problems.Add($"{prefix}MinShards must be at least 1; got {MinShards}.");
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
    private readonly IShardStore _store;
    private readonly IMembershipTable _table;
    private readonly ClusterMembership _membership;
    private readonly ClusterShardActivation _activation;
    private readonly IPlacementDirector _placement;
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
    public ShardOwnershipService(IShardDirectory directory, IShardStore store, IMembershipTable table, ClusterMembership membership, ClusterShardActivation activation,
        ActiveShards active, IGrainFactory grains, ActivationDirectory activations, SiloConnections silos, ShardPlacementOptions options,
        IPlacementDirector placement, ILogger<ShardOwnershipService> logger)
    {
        _placement = placement;
        _directory = directory;
        _store = store;
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
        var candidates = ClusterShardActivation.Candidates(snapshot, active);
        foreach (var shard in snapshot.Shards)
        {
            if (candidates.Count == 0) break;
            if (shard.Owner is { } owner && await _membership.StatusOfAsync(owner, cancellationToken).ConfigureAwait(false) != SiloStatus.Dead) continue;
            var target = _placement.Choose(new PlacementRequest(shard.ShardId, shard.Epoch, candidates, null));
            if (target != self) continue;
            // Opening claims it (the activation checks the directory again under the conditional update).
            _logger.LogInformation("Taking shard {Shard} (owner {Owner} is gone)", shard.ShardId, shard.Owner?.ToString() ?? "none");
            await TryOpenAsync(shard.ShardId, cancellationToken).ConfigureAwait(false);
            // The loads changed: the next choices see them (one read per claim, not per orphan).
            candidates = ClusterShardActivation.Candidates(await _directory.ReadAsync(cancellationToken).ConfigureAwait(false), active);
        }

        if (_options.Rebalance) await RebalanceOnceAsync(cancellationToken).ConfigureAwait(false);
        await ReshardOnceAsync(cancellationToken).ConfigureAwait(false);
    }

    private long _ratesTakenAt;
    private Dictionary<long, long> _ratesCounts = [];

    /// <summary>Calls per second of each shard served here since the previous round (0 for shards not seen before).</summary>
    private Dictionary<long, double> MeasureRates(IEnumerable<long> shards)
    {
        long now = Stopwatch.GetTimestamp();
        double seconds = _ratesTakenAt == 0 ? 0 : Stopwatch.GetElapsedTime(_ratesTakenAt, now).TotalSeconds;
        var counts = shards.ToDictionary(id => id, _active.OperationCount);
        var rates = new Dictionary<long, double>();
        foreach (var (id, count) in counts)
            rates[id] = seconds > 0 && _ratesCounts.TryGetValue(id, out long before) ? (count - before) / seconds : 0;
        _ratesTakenAt = now;
        _ratesCounts = counts;
        return rates;
    }

    private bool Settled(long shardId) =>
        !_lastMoved.TryGetValue(shardId, out long at) || Stopwatch.GetElapsedTime(at) >= _options.MoveCooldown;

    private async Task ReshardOnceAsync(CancellationToken cancellationToken)
    {
        var self = _membership.Address;
        var snapshot = await _directory.ReadAsync(cancellationToken).ConfigureAwait(false);
        var mine = snapshot.Shards.Where(s => s.Owner == self).ToList();
        var rates = MeasureRates(mine.Select(s => s.ShardId));

        var hot = mine.FirstOrDefault(s => Settled(s.ShardId) && s.KeyCount >= 2 &&
            ((_options.SplitKeys > 0 && s.KeyCount >= _options.SplitKeys) || (_options.SplitOpsPerSecond > 0 && rates[s.ShardId] >= _options.SplitOpsPerSecond)));
        if (hot is not null)
        {
            _logger.LogInformation("Splitting shard {Shard}: {Keys} keys, {Rate:0} calls/s", hot.ShardId, hot.KeyCount, rates[hot.ShardId]);
            await SplitAsync(hot.ShardId, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Silos merge concurrently, each at most one pair per round: leave room for every active silo's merge, so the
        // cluster never drops below MinShards.
        if (_options.MergeKeys <= 0 || snapshot.Shards.Count - (_membership.ActiveMembers.Count - 1) <= _options.MinShards) return;
        var ordered = snapshot.Shards; // by range start
        for (int i = 0; i + 1 < ordered.Count; i++)
        {
            var left = ordered[i];
            var right = ordered[i + 1];
            if (left.Owner != self || right.Owner != self) continue;
            if (!Settled(left.ShardId) || !Settled(right.ShardId)) continue;
            if (left.KeyCount + right.KeyCount >= _options.MergeKeys) continue;
            if (rates[left.ShardId] >= _options.MergeMaxOpsPerSecond || rates[right.ShardId] >= _options.MergeMaxOpsPerSecond) continue;
            _logger.LogInformation("Merging cold shards {Left} and {Right} ({Keys} keys together)", left.ShardId, right.ShardId,
                left.KeyCount + right.KeyCount);
            await MergeAsync(left.ShardId, cancellationToken).ConfigureAwait(false);
            return;
        }
    }

    /// <summary>
    /// Splits shard <paramref name="shardId"/>, owned here, at its median key: closes it (queued writes commit; calls
    /// arriving meanwhile wait), builds the trees of both halves from the stored rows, and stores both halves in one
    /// transaction conditioned on the shard's epoch and version. Both halves stay here. Returns their map entries.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> if this silo does not own the shard;
    /// <see cref="GridErrorCode.InvalidArgument"/> if it holds fewer than 2 keys; <see cref="GridErrorCode.Conflict"/> if it
    /// is already being moved, split or merged.</exception>
    public async Task<ShardMapEntry[]> SplitAsync(long shardId, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await _moves.WaitAsync(cancellationToken).ConfigureAwait(false);
        (ShardState Left, ShardState Right) result;
        try
        {
            var row = await RequireOwnedAsync(shardId, cancellationToken).ConfigureAwait(false);
            if (!_activation.BeginHandover(shardId)) throw new GridException(GridErrorCode.Conflict, $"Shard {shardId} is already moving.");
            try
            {
                await _activations.DeactivateAsync(ShardGrainId(shardId), DeactivationReason.Migrating).ConfigureAwait(false);
                var state = await _store.GetShardAsync(shardId, cancellationToken).ConfigureAwait(false);
                if (state.Epoch != row.Epoch)
                    throw new GridException(GridErrorCode.NotOwner, $"Shard {shardId} moved on to epoch {state.Epoch} while it was being split.");
                var rows = await ShardTreeBuilder.ReadAllRowsAsync(_store, shardId, cancellationToken).ConfigureAwait(false);
                if (rows.Count < 2) throw GridException.InvalidArgument($"Shard {shardId} holds {rows.Count} keys; a split needs at least 2.");
                int mid = rows.Count / 2;
                // Building the trees hashes every key: off the reconcile loop's thread is fine, it runs on the pool anyway.
                var left = ShardTreeBuilder.Build(rows.GetRange(0, mid));
                var right = ShardTreeBuilder.Build(rows.GetRange(mid, rows.Count - mid));
                result = await _store.SplitAsync(new ShardSplit
                {
                    ShardId = shardId,
                    Epoch = state.Epoch,
                    ExpectedVersion = state.Version,
                    NewVersion = state.Version + 1,
                    SplitKey = rows[mid].Key,
                    LeftRoot = left.Root,
                    LeftKeyCount = left.KeyCount,
                    LeftNodes = left.Nodes,
                    RightRoot = right.Root,
                    RightKeyCount = right.KeyCount,
                    RightNodes = right.Nodes,
                    TimestampMicros = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000,
                }, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _activation.EndHandover(shardId);
            }
            _lastMoved[result.Left.ShardId] = Stopwatch.GetTimestamp();
            _lastMoved[result.Right.ShardId] = Stopwatch.GetTimestamp();
        }
        finally
        {
            _moves.Release();
        }
        await TryOpenAsync(result.Left.ShardId, cancellationToken).ConfigureAwait(false);
        await TryOpenAsync(result.Right.ShardId, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Split shard {Shard} into {Left} {LeftRange} ({LeftKeys} keys) and {Right} {RightRange} ({RightKeys} keys) in {Ms:0.0} ms",
            shardId, result.Left.ShardId, result.Left.Range, result.Left.KeyCount, result.Right.ShardId, result.Right.Range, result.Right.KeyCount,
            Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        string endpoint = _membership.Address.Endpoint;
        return
        [
            new ShardMapEntry(result.Left.ShardId, result.Left.Range, endpoint, result.Left.Epoch),
            new ShardMapEntry(result.Right.ShardId, result.Right.Range, endpoint, result.Right.Epoch),
        ];
    }

    /// <summary>
    /// Merges shard <paramref name="leftShardId"/> with the shard right after it; both must be owned here. Closes both
    /// (calls wait), builds the merged tree from their rows, and stores the merge in one transaction conditioned on both
    /// epochs and versions. Returns the merged shard's map entry.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.NotOwner"/> if this silo does not own both;
    /// <see cref="GridErrorCode.InvalidArgument"/> if the shard is the last one; <see cref="GridErrorCode.Conflict"/> if one
    /// is already being moved, split or merged.</exception>
    public async Task<ShardMapEntry> MergeAsync(long leftShardId, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await _moves.WaitAsync(cancellationToken).ConfigureAwait(false);
        ShardState merged;
        long rightShardId;
        try
        {
            var snapshot = await _directory.ReadAsync(cancellationToken).ConfigureAwait(false);
            int index = snapshot.Shards.ToList().FindIndex(s => s.ShardId == leftShardId);
            if (index < 0) throw new GridException(GridErrorCode.UnknownShard, $"Shard {leftShardId} does not exist.");
            if (index == snapshot.Shards.Count - 1) throw GridException.InvalidArgument($"Shard {leftShardId} is the last shard: it has no right neighbour to merge with.");
            rightShardId = snapshot.Shards[index + 1].ShardId;
            var leftRow = await RequireOwnedAsync(leftShardId, cancellationToken).ConfigureAwait(false);
            var rightRow = await RequireOwnedAsync(rightShardId, cancellationToken).ConfigureAwait(false);
            if (!_activation.BeginHandover(leftShardId)) throw new GridException(GridErrorCode.Conflict, $"Shard {leftShardId} is already moving.");
            try
            {
                if (!_activation.BeginHandover(rightShardId)) throw new GridException(GridErrorCode.Conflict, $"Shard {rightShardId} is already moving.");
                try
                {
                    await _activations.DeactivateAsync(ShardGrainId(leftShardId), DeactivationReason.Migrating).ConfigureAwait(false);
                    await _activations.DeactivateAsync(ShardGrainId(rightShardId), DeactivationReason.Migrating).ConfigureAwait(false);
                    var left = await _store.GetShardAsync(leftShardId, cancellationToken).ConfigureAwait(false);
                    var right = await _store.GetShardAsync(rightShardId, cancellationToken).ConfigureAwait(false);
                    if (left.Epoch != leftRow.Epoch || right.Epoch != rightRow.Epoch)
                        throw new GridException(GridErrorCode.NotOwner, $"Shards {leftShardId} and {rightShardId} moved on while they were being merged.");
                    var rows = await ShardTreeBuilder.ReadAllRowsAsync(_store, leftShardId, cancellationToken).ConfigureAwait(false);
                    rows.AddRange(await ShardTreeBuilder.ReadAllRowsAsync(_store, rightShardId, cancellationToken).ConfigureAwait(false));
                    var tree = ShardTreeBuilder.Build(rows);
                    merged = await _store.MergeAsync(new ShardMerge
                    {
                        LeftShardId = leftShardId,
                        LeftEpoch = left.Epoch,
                        LeftExpectedVersion = left.Version,
                        RightShardId = rightShardId,
                        RightEpoch = right.Epoch,
                        RightExpectedVersion = right.Version,
                        NewVersion = Math.Max(left.Version, right.Version) + 1,
                        Root = tree.Root,
                        KeyCount = tree.KeyCount,
                        Nodes = tree.Nodes,
                        TimestampMicros = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000,
                    }, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    _activation.EndHandover(rightShardId);
                }
            }
            finally
            {
                _activation.EndHandover(leftShardId);
            }
            _lastMoved[leftShardId] = Stopwatch.GetTimestamp();
        }
        finally
        {
            _moves.Release();
        }
        await TryOpenAsync(merged.ShardId, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Merged shard {Right} into {Left}: {Range}, {Keys} keys, in {Ms:0.0} ms", rightShardId, merged.ShardId, merged.Range,
            merged.KeyCount, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return new ShardMapEntry(merged.ShardId, merged.Range, _membership.Address.Endpoint, merged.Epoch);
    }

    private async Task<ShardOwnership> RequireOwnedAsync(long shardId, CancellationToken cancellationToken)
    {
        var row = await _directory.GetAsync(shardId, cancellationToken).ConfigureAwait(false);
        if (row.Owner != _membership.Address)
            throw new GridException(GridErrorCode.NotOwner, $"Shard {shardId} is owned by {row.Owner?.ToString() ?? "nobody"}, not by this silo ({_membership.Address}).")
            {
                OwnerHint = row.Owner is { } o ? new OwnerHint(shardId, o.Endpoint, row.Epoch) : null,
            };
        return row;
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
            var row = await RequireOwnedAsync(shardId, cancellationToken).ConfigureAwait(false);
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
                Task<long> accept;
                // A move asked for through this silo's control grain must not carry that call's chain: the target's
                // control grain has the same id and would refuse the call as reentrant.
                using (GrainCallChain.StartNew()) accept = silo.GetGrain<ISiloControlGrain>(0).AcceptShardAsync(shardId, cancellationToken);
                await accept.ConfigureAwait(false);
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
