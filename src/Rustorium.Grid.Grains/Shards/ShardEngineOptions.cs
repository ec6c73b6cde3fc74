namespace Rustorium.Grid.Grains.Shards;

/// <summary>How a shard's engine batches, limits and labels its work. Defaults suit one silo on one machine.</summary>
public sealed record ShardEngineOptions
{
    /// <summary>Key and value limits checked before anything is queued.</summary>
    public GridLimits Limits { get; init; } = GridLimits.Default;

    /// <summary>Most row writes in one data commit (a group). Default 4,096. Larger groups amortise the commit's fsync.</summary>
    public int MaxGroupRows { get; init; } = 4096;

    /// <summary>Most writes waiting for a data commit before callers wait for room (back-pressure). Default 65,536.</summary>
    public int MaxQueuedWrites { get; init; } = 65_536;

    /// <summary>Most changed keys folded into the tree at once. Default 16,384: larger folds share more of the tree.</summary>
    public int MaxFoldKeys { get; init; } = 16_384;

    /// <summary>
    /// How long a shard waits for more writes when fewer than eight are queued though its writers are concurrent (its last
    /// group had several), before it hashes and folds them: a small group hashes with most of Poseidon's eight lanes
    /// empty. A lone sequential writer never waits. Zero turns it off. 0..100 ms. Default 1 ms.
    /// </summary>
    public TimeSpan GroupLinger { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// While a group's store commit is in flight, the next group is folded at once only if at least this many writes are
    /// queued; fewer wait for the commit and grow into a larger group (small groups hash with most lanes empty). 1 folds
    /// every group at once. 1..1,000,000. Default 32.
    /// </summary>
    public int PipelineMinRows { get; init; } = 32;

    /// <summary>
    /// Bytes of committed rows (keys, values, ~96 B bookkeeping each) a shard keeps in memory for reads, least recently
    /// used evicted first; 0 turns the cache off. 0..16 GiB. Default 8 MiB.
    /// </summary>
    public long RowCacheBytes { get; init; } = 8L << 20;

    /// <summary>The sync mode of calls that do not name one. Default <see cref="SyncMode.Full"/>.</summary>
    public SyncMode DefaultSyncMode { get; init; } = SyncMode.Full;

    /// <summary>The region name reported in read results.</summary>
    public string Region { get; init; } = "local";

    /// <summary>Checks the options; throws <see cref="GridErrorCode.InvalidArgument"/> naming the bad one.</summary>
    public void Validate()
    {
        Limits.Validate();
        if (RowCacheBytes is < 0 or > 16L << 30) throw GridException.InvalidArgument($"RowCacheBytes must be 0..16 GiB; got {RowCacheBytes}.");
        if (PipelineMinRows is < 1 or > 1_000_000) throw GridException.InvalidArgument($"PipelineMinRows must be 1..1000000; got {PipelineMinRows}.");
        if (GroupLinger < TimeSpan.Zero || GroupLinger > TimeSpan.FromMilliseconds(100))
            throw GridException.InvalidArgument($"GroupLinger must be 0..100 ms; got {GroupLinger}.");
        if (MaxGroupRows < 1) throw GridException.InvalidArgument($"MaxGroupRows must be at least 1; got {MaxGroupRows}.");
        if (MaxQueuedWrites < 1) throw GridException.InvalidArgument($"MaxQueuedWrites must be at least 1; got {MaxQueuedWrites}.");
        if (MaxFoldKeys < 1) throw GridException.InvalidArgument($"MaxFoldKeys must be at least 1; got {MaxFoldKeys}.");
        if (!Enum.IsDefined(DefaultSyncMode)) throw GridException.InvalidArgument($"DefaultSyncMode {DefaultSyncMode} is not a sync mode.");
        if (string.IsNullOrWhiteSpace(Region)) throw GridException.InvalidArgument("Region must be named.");
    }
}
