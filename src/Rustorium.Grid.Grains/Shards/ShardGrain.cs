using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The grain of one key-range shard (its key is the shard id): a thin adapter that opens a <see cref="ShardEngine"/>
/// when activated, hands every call to it, and closes it when deactivated. See docs/sharding.md for the guarantees.
/// </summary>
/// <remarks>
/// <para>Activation claims the shard in the store (its epoch moves on, fencing any earlier owner) and folds into the
/// tree whatever was committed but not yet folded; deactivation (idle collection, shutdown) commits and folds what is
/// queued, so nothing acknowledged is left behind. An unknown shard id fails the activation, and so the call, with
/// <see cref="GridErrorCode.UnknownShard"/>.</para>
/// <para>A <see cref="SyncMode"/> of <c>0</c> (not a defined mode) means "the silo's default"
/// (<see cref="ShardEngineOptions.DefaultSyncMode"/>); other undefined values are refused with
/// <see cref="GridErrorCode.InvalidArgument"/>. Null keys, values or operations are refused the same way, never as a
/// .NET argument exception, so a remote caller always gets a typed answer.</para>
/// </remarks>
[GrainPlacement(GrainPlacementKind.Local)]
public sealed class ShardGrain : Grain, IShardGrain
{
    private readonly IShardStore _store;
    private readonly ShardEngineOptions _options;
    private readonly LocalSiloDetails _silo;
    private readonly ActiveShards _active;
    private readonly IShardActivation _activation;
    private readonly TreeFoldBatcher _folds;
    private ShardEngine? _engine;
    private System.Runtime.CompilerServices.StrongBox<long>? _operations;

    /// <summary>Built by the grain runtime; the store, the engine options, the silo's details and the ownership rule come from DI.</summary>
    public ShardGrain(IShardStore store, ShardEngineOptions options, LocalSiloDetails silo, ActiveShards active, IShardActivation activation,
        TreeFoldBatcher folds)
    {
        _folds = folds;
        _store = store;
        _options = options;
        _silo = silo;
        _active = active;
        _activation = activation;
    }

    private long ShardId => GrainId.IntegerKey;

    private ShardEngine Engine
    {
        get
        {
            _activation.EnsureServing();
            if (_operations is { } counter) Interlocked.Increment(ref counter.Value);
            var engine = _engine ?? throw new GridException(GridErrorCode.Unavailable, $"Shard {ShardId} is not open on this silo; retry.");
            if (engine.IsFenced)
            {
                // Another silo owns the shard now: close this activation, so the next call asks the directory again and is
                // redirected to the new owner with its address.
                DeactivateOnIdle();
            }
            return engine;
        }
    }

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var state = await _activation.AcquireAsync(ShardId, cancellationToken);
        _engine = ShardEngine.Open(_store, state, _options, _folds);
        _operations = _active.OperationCounter(ShardId);
        _active.Add(ShardId, state.Epoch);
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        var engine = _engine;
        if (engine is null) return;
        try
        {
            // Commits and folds what is queued: a write acknowledged under Async or None still reaches the store.
            await engine.DisposeAsync();
        }
        finally
        {
            _engine = null;
            _active.Remove(ShardId);
        }
    }

    /// <inheritdoc />
    public Task<WriteResult> PutAsync(byte[] key, byte[] value, SyncMode mode, CancellationToken cancellationToken)
    {
        RequireKey(key);
        if (value is null) throw GridException.InvalidArgument("A put needs a value (an empty one is fine); got null.");
        return Engine.PutAsync(key, value, Mode(mode), cancellationToken);
    }

    /// <inheritdoc />
    public Task<WriteResult> DeleteAsync(byte[] key, SyncMode mode, CancellationToken cancellationToken)
    {
        RequireKey(key);
        return Engine.DeleteAsync(key, Mode(mode), cancellationToken);
    }

    /// <inheritdoc />
    public Task<WriteResult> BatchAsync(BatchOperation[] operations, SyncMode mode, CancellationToken cancellationToken)
    {
        if (operations is null) throw GridException.InvalidArgument("A batch needs its operations; got null.");
        for (int i = 0; i < operations.Length; i++)
            if (operations[i].Key is null) throw GridException.InvalidArgument($"Operation {i} of the batch has no key.");
        return Engine.BatchAsync(operations, Mode(mode), cancellationToken);
    }

    /// <inheritdoc />
    public Task<ProvenWriteResult> WriteWithProofAsync(byte[] key, byte[] value, CancellationToken cancellationToken)
    {
        RequireKey(key);
        if (value is null) throw GridException.InvalidArgument("A write needs a value (an empty one is fine); got null.");
        return Engine.WriteWithProofAsync(key, value, cancellationToken);
    }

    /// <inheritdoc />
    public Task<ReadResult> ReadAsync(byte[] key, bool withProof, CancellationToken cancellationToken)
    {
        RequireKey(key);
        return Engine.ReadAsync(key, withProof, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<ReadResult[]> ReadManyAsync(byte[][] keys, bool withProof, CancellationToken cancellationToken)
    {
        if (keys is null) throw GridException.InvalidArgument("A multi-key read needs its keys; got null.");
        if (keys.Length == 0 || keys.Length > _options.Limits.MaxBatchOperations)
            throw GridException.InvalidArgument($"A multi-key read takes 1..{_options.Limits.MaxBatchOperations} keys; got {keys.Length}.");
        foreach (var key in keys) RequireKey(key);
        var engine = Engine;
        if (_operations is { } counter) Interlocked.Add(ref counter.Value, keys.Length - 1); // the load is per key, as for single reads
        // All reads start at once (cached ones complete at once), so the answers are the ones single reads issued now would get.
        var reads = new Task<ReadResult>[keys.Length];
        for (int i = 0; i < keys.Length; i++) reads[i] = engine.ReadAsync(keys[i], withProof, cancellationToken);
        var results = new ReadResult[keys.Length];
        for (int i = 0; i < keys.Length; i++) results[i] = await reads[i];
        return results;
    }

    /// <inheritdoc />
    public Task<ScanPage> ScanAsync(byte[] start, byte[]? end, int limit, CancellationToken cancellationToken)
    {
        if (start is null) throw GridException.InvalidArgument("A scan needs a start key (empty for the shard's start); got null.");
        return Engine.ScanAsync(start, end, limit, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Read from the store's row for the shard: one consistent snapshot of version, tree version, root (of the tree version)
    /// and key count (of the version). The tree folds committed data afterwards (docs/sharding.md), so the tree version
    /// may lag the version by the groups not folded yet.
    /// </remarks>
    public async Task<ShardStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        var engine = Engine;
        var state = await _store.GetShardAsync(ShardId, cancellationToken);
        if (state.Epoch != engine.Epoch)
            throw new GridException(GridErrorCode.NotOwner,
                $"Shard {ShardId} was claimed by another owner (epoch {state.Epoch}; this activation holds epoch {engine.Epoch}).");
        return new ShardStatus(state.ShardId, state.Range, state.Version, state.TreeVersion, state.Root.ToString(), state.KeyCount,
            state.Epoch, _silo.Endpoint);
    }

    private static SyncMode? Mode(SyncMode mode) => mode == 0 ? null : mode;

    private static void RequireKey(byte[] key)
    {
        if (key is null) throw GridException.InvalidArgument("A key is required; got null.");
    }
}
