using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Testing;

/// <summary>
/// A real store with a fault or a delay injected: everything is forwarded to <c>inner</c>; a test overrides the one call
/// it interferes with. Disposing it leaves the inner store open (the test owns that).
/// </summary>
public abstract class ForwardingShardStore(IShardStore inner) : IShardStore
{
    public virtual ValueTask CommitAsync(ShardCommit commit, CancellationToken cancellationToken) => inner.CommitAsync(commit, cancellationToken);

    public virtual ValueTask<StoredRow?> GetAsync(long shardId, ReadOnlyMemory<byte> key, CancellationToken cancellationToken) =>
        inner.GetAsync(shardId, key, cancellationToken);

    public ValueTask<IReadOnlyList<ShardState>> InitializeAsync(IReadOnlyList<KeyRange> initialLayout, CancellationToken cancellationToken) =>
        inner.InitializeAsync(initialLayout, cancellationToken);

    public ValueTask<IReadOnlyList<ShardState>> ListShardsAsync(CancellationToken cancellationToken) => inner.ListShardsAsync(cancellationToken);

    public ShardStoreStatistics Statistics => inner.Statistics;

    public ValueTask<ShardState> GetShardAsync(long shardId, CancellationToken cancellationToken) => inner.GetShardAsync(shardId, cancellationToken);

    public ValueTask<ShardState> ClaimAsync(long shardId, CancellationToken cancellationToken) => inner.ClaimAsync(shardId, cancellationToken);

    public ValueTask<IReadOnlyList<StoredRow>> ScanAsync(long shardId, ReadOnlyMemory<byte> start, ReadOnlyMemory<byte>? end, int limit,
        CancellationToken cancellationToken) => inner.ScanAsync(shardId, start, end, limit, cancellationToken);

    public ValueTask<(ShardState Left, ShardState Right)> SplitAsync(ShardSplit split, CancellationToken cancellationToken) =>
        inner.SplitAsync(split, cancellationToken);

    public ValueTask<ShardState> MergeAsync(ShardMerge merge, CancellationToken cancellationToken) => inner.MergeAsync(merge, cancellationToken);

    public virtual ValueTask CommitTreeAsync(ShardTreeCommit commit, CancellationToken cancellationToken) => inner.CommitTreeAsync(commit, cancellationToken);

    public ValueTask<UnfoldedChanges> ReadUnfoldedAsync(long shardId, CancellationToken cancellationToken) => inner.ReadUnfoldedAsync(shardId, cancellationToken);

    public IShardNodeReader OpenNodeReader(long shardId) => inner.OpenNodeReader(shardId);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
