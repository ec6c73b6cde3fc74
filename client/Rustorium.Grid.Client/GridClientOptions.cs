namespace Rustorium.Grid.Client;

/// <summary>How a <see cref="GridClient"/> calls the grid. Defaults suit a client on the same network as its silos.</summary>
public sealed record GridClientOptions
{
    /// <summary>Deadline of one call, including retries. Default 30 s.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Verify every proof the grid returns (the default): a read or write whose proof does not show exactly the
    /// returned answer fails with <see cref="GridErrorCode.VerificationFailed"/>. Turning it off also stops
    /// <see cref="GridClient.GetAsync"/> from asking for proofs.
    /// </summary>
    public bool VerifyProofs { get; init; } = true;

    /// <summary>Sync mode of writes that do not name one. Default <see cref="SyncMode.Full"/>.</summary>
    public SyncMode DefaultSyncMode { get; init; } = SyncMode.Full;

    /// <summary>
    /// Attempts per call when the shard moved (<see cref="GridErrorCode.NotOwner"/>) or a silo was unreachable
    /// (<see cref="GridErrorCode.Unavailable"/>), with a backoff of up to 1 s between them; <see cref="CallTimeout"/> bounds
    /// the whole call. Default 100, so a failover (a few seconds) or a shard move is waited out within the call's timeout.
    /// </summary>
    public int MaxAttempts { get; init; } = 100;

    /// <summary>
    /// How long one silo may take to answer a shard-map refresh before the client asks the next one (a paused silo still
    /// accepts connections but never answers). Default 2 s; at most <see cref="CallTimeout"/>.
    /// </summary>
    public TimeSpan MapRefreshTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Limits checked on the client before anything is sent (the silo checks them again). Default <see cref="GridLimits.Default"/>.</summary>
    public GridLimits Limits { get; init; } = GridLimits.Default;

    /// <summary>Rows fetched per scan page. Default 1,000.</summary>
    public int ScanPageSize { get; init; } = 1000;

    /// <summary>
    /// Most concurrent reads of one shard sent together in one call (<see cref="IShardGrain.ReadManyAsync"/>): while two calls
    /// of a shard are out, its new reads wait and leave together in the next, so under load the transport and the runtime
    /// cost one call per batch instead of one per read; a lone read leaves at once. 1 sends every read alone. 1..10,000
    /// (the silo refuses more than its <see cref="GridLimits.MaxBatchOperations"/>). Default 128.
    /// </summary>
    public int MaxReadBatch { get; init; } = 128;

    /// <summary>Checks the options; throws <see cref="GridErrorCode.InvalidArgument"/> naming the bad one.</summary>
    public void Validate()
    {
        if (CallTimeout <= TimeSpan.Zero) throw GridException.InvalidArgument($"CallTimeout must be positive; got {CallTimeout}.");
        if (MapRefreshTimeout <= TimeSpan.Zero) throw GridException.InvalidArgument($"MapRefreshTimeout must be positive; got {MapRefreshTimeout}.");
        if (MaxAttempts < 1) throw GridException.InvalidArgument($"MaxAttempts must be at least 1; got {MaxAttempts}.");
        if (MaxReadBatch is < 1 or > 10_000) throw GridException.InvalidArgument($"MaxReadBatch must be 1..10000; got {MaxReadBatch}.");
        if (ScanPageSize < 1) throw GridException.InvalidArgument($"ScanPageSize must be at least 1; got {ScanPageSize}.");
        if (!Enum.IsDefined(DefaultSyncMode)) throw GridException.InvalidArgument($"DefaultSyncMode {DefaultSyncMode} is not a sync mode.");
        Limits.Validate();
    }
}
