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
    /// Most committed rows not yet in a stored tree (folded or not); a shard's writes wait for room beyond it (back-pressure),
    /// so the proven root lags the data by at most this many rows, and a new owner after a crash folds at most this many
    /// (plus one group) before its first proof. 1..16,777,216. Default 32,768.
    /// </summary>
    public int MaxUnfoldedRows { get; init; } = 32_768;

    /// <summary>
    /// Least time between the starts of two folds of a shard's tree while fewer than <see cref="MaxFoldKeys"/> rows wait:
    /// the rows committed meanwhile fold together, sharing the tree's upper levels (fewer hashes and node writes per key),
    /// at the price of a published root (and write-with-proof answers) that lag by up to this much more. 0..10 s.
    /// Default 250 ms.
    /// </summary>
    public TimeSpan FoldInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Least time between the starts of two tree commits (checkpoints) of a shard. Folds are proven from memory at once
    /// and the folds since the last checkpoint are stored together, so a key's path and the upper levels all keys share
    /// are written once per checkpoint instead of once per fold. Default 10 s: measured against 0 (the next checkpoint as
    /// soon as the last landed, the default before 2026-12-07) on the embedded store, 64 clients, interleaved runs,
    /// durable writes into 1,000,000 keys went from ~1,400 to ~3,300/s with p99 from ~1.1 s to under 0.1 s (back-to-back
    /// checkpoints of small folds kept the single writer busy with random node rows), into a fresh store +30-50 %, and
    /// write-with-proof into 100,000 keys from ~1,000 to ~1,750/s with p99 from 95-180 ms to 54 ms (docs/sharding.md).
    /// A checkpoint starts without waiting when half of <see cref="MaxUnfoldedRows"/> rows wait for one, when someone
    /// waits for the stored tree, and when the shard closes. A crash loses no write: the next owner folds the rows since
    /// the last checkpoint again (at most <see cref="MaxUnfoldedRows"/>). 0..60 s.
    /// </summary>
    public TimeSpan TreeCommitInterval { get; init; } = TimeSpan.FromSeconds(10);

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
        if (MaxUnfoldedRows is < 1 or > 16 << 20) throw GridException.InvalidArgument($"MaxUnfoldedRows must be 1..16777216; got {MaxUnfoldedRows}.");
        if (FoldInterval < TimeSpan.Zero || FoldInterval > TimeSpan.FromSeconds(10))
            throw GridException.InvalidArgument($"FoldInterval must be 0..10 s; got {FoldInterval}.");
        if (TreeCommitInterval < TimeSpan.Zero || TreeCommitInterval > TimeSpan.FromSeconds(60))
            throw GridException.InvalidArgument($"TreeCommitInterval must be 0..60 s; got {TreeCommitInterval}.");
        if (MaxGroupRows < 1) throw GridException.InvalidArgument($"MaxGroupRows must be at least 1; got {MaxGroupRows}.");
        if (MaxQueuedWrites < 1) throw GridException.InvalidArgument($"MaxQueuedWrites must be at least 1; got {MaxQueuedWrites}.");
        if (MaxFoldKeys < 1) throw GridException.InvalidArgument($"MaxFoldKeys must be at least 1; got {MaxFoldKeys}.");
        if (!Enum.IsDefined(DefaultSyncMode)) throw GridException.InvalidArgument($"DefaultSyncMode {DefaultSyncMode} is not a sync mode.");
        if (string.IsNullOrWhiteSpace(Region)) throw GridException.InvalidArgument("Region must be named.");
    }
}
