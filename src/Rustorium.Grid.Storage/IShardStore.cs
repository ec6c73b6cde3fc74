using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>
/// Durable state of the shards one store holds: the range map, each shard's metadata (range, version,
/// epoch, root), its data rows and its sparse Merkle tree nodes.
/// </summary>
/// <remarks>
/// <para><b>One transaction per commit.</b> <see cref="CommitAsync"/> writes a shard's data rows, its tree
/// node changes and its new version and root atomically, conditioned on the shard's epoch and version.
/// So the published root at version v is always the tree of exactly the rows at v (invariant 3), and a
/// writer that lost ownership (its epoch is stale) cannot change the shard (invariant 1).</para>
/// <para><b>Durable when it returns.</b> A commit that completed survives a crash of the process
/// (invariant 2); providers use the engine's durable commit (SQLite WAL with synchronous=FULL, PostgreSQL
/// synchronous_commit=on).</para>
/// <para><b>Keys</b> are byte strings ordered unsigned-lexicographically (a proper prefix first), as
/// <see cref="KeyRange.Compare"/> orders them; scans return rows in that order.</para>
/// <para>Implementations are thread-safe; commits to one shard are expected from one writer at a time
/// (its owner), and are refused with <see cref="GridErrorCode.Conflict"/> when their expectations fail.</para>
/// </remarks>
public interface IShardStore : IAsyncDisposable
{
    /// <summary>
    /// Prepares the store (schema, migrations) and, if it holds no shards yet, creates them with the given
    /// layout (which must cover the whole key space without gap or overlap). Returns every shard's state.
    /// Calling it again on an initialised store changes nothing and ignores <paramref name="initialLayout"/>.
    /// </summary>
    /// <remarks>The layout's shards get ids 1…n in range order in a new store; like a split's, they are taken from the
    /// store's id counter (see <see cref="SplitAsync"/>), so none of them is ever given again.</remarks>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a layout with a gap or an
    /// overlap; <see cref="GridErrorCode.Corrupted"/> if the stored data fails its integrity checks.</exception>
    ValueTask<IReadOnlyList<ShardState>> InitializeAsync(IReadOnlyList<KeyRange> initialLayout, CancellationToken cancellationToken);

    /// <summary>Every shard's current state, ordered by range start.</summary>
    ValueTask<IReadOnlyList<ShardState>> ListShardsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// What this handle has committed since it was opened (commits, rows, tree nodes, transactions) and the time it took;
    /// also published on the meter <c>Rustorium.Grid.Storage</c>. See docs/storage.md "Statistics".
    /// </summary>
    ShardStoreStatistics Statistics { get; }

    /// <summary>One shard's current state.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/>.</exception>
    ValueTask<ShardState> GetShardAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>
    /// Takes ownership of a shard: increments and returns its epoch. From then on commits carrying an older
    /// epoch are refused. (In a cluster the grain directory decides who may call this.)
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/>.</exception>
    ValueTask<ShardState> ClaimAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>The stored row for <paramref name="key"/>, or null.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/>.</exception>
    ValueTask<StoredRow?> GetAsync(long shardId, ReadOnlyMemory<byte> key, CancellationToken cancellationToken);

    /// <summary>
    /// Up to <paramref name="limit"/> rows with start ≤ key &lt; end (end null: to the end of the shard) in key order.
    /// </summary>
    /// <remarks>Pass a null <paramref name="end"/> as <c>(ReadOnlyMemory&lt;byte&gt;?)null</c>: a null <c>byte[]</c> converts
    /// to an empty, non-null memory, i.e. an end before every key.</remarks>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if <paramref name="limit"/> &lt; 1 or
    /// end &lt; start (end = start is an empty scan); <see cref="GridErrorCode.UnknownShard"/>.</exception>
    ValueTask<IReadOnlyList<StoredRow>> ScanAsync(long shardId, ReadOnlyMemory<byte> start, ReadOnlyMemory<byte>? end, int limit,
        CancellationToken cancellationToken);

    /// <summary>
    /// Applies one commit atomically: data row upserts and deletes, the new version, key count and timestamp, and either the
    /// tree's changes to that version (<see cref="ShardCommit.NewRoot"/> set: a <b>combined</b> commit) or nothing of the tree
    /// (<see cref="ShardCommit.NewRoot"/> null: a <b>data</b> commit, whose keys are recorded as unfolded until a
    /// <see cref="CommitTreeAsync"/> brings the tree past its version) — only if the shard's epoch equals
    /// <see cref="ShardCommit.Epoch"/> and its version equals <see cref="ShardCommit.ExpectedVersion"/>.
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if either expectation fails (nothing
    /// is written); <see cref="GridErrorCode.UnknownShard"/>; <see cref="GridErrorCode.InvalidArgument"/> for a
    /// malformed commit (a key outside the shard's range, NewVersion ≤ ExpectedVersion, a null key, a key twice, a
    /// <see cref="ShardCommit.NewKeyCount"/> other than the stored count plus the keys the rows insert minus those they
    /// delete — the store counts, so a writer whose tree disagrees with its rows is stopped —, a combined commit while the
    /// shard has unfolded changes, or a data commit carrying tree nodes; nothing is written).</exception>
    ValueTask CommitAsync(ShardCommit commit, CancellationToken cancellationToken);

    /// <summary>
    /// Brings the stored tree of a shard from <see cref="ShardTreeCommit.ExpectedTreeVersion"/> to
    /// <see cref="ShardTreeCommit.NewTreeVersion"/>: applies the node removals and additions, sets the root, and forgets the
    /// unfolded keys of every data commit up to the new tree version — atomically, only if the shard's epoch and tree version
    /// are the expected ones. The rows are not touched: they were committed (and acknowledged) by earlier data commits; the
    /// tree folds them in afterwards (ARCHITECTURE.md: the ProofGrain folds committed batches and publishes (version, root)).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if the epoch or the tree version moved on (nothing is
    /// written); <see cref="GridErrorCode.UnknownShard"/>; <see cref="GridErrorCode.InvalidArgument"/> if NewTreeVersion is not
    /// greater than ExpectedTreeVersion or is greater than the shard's version, or a node is malformed.</exception>
    ValueTask CommitTreeAsync(ShardTreeCommit commit, CancellationToken cancellationToken);

    /// <summary>
    /// The changes of a shard that its stored tree does not hold yet: every key written by a data commit after
    /// <see cref="ShardState.TreeVersion"/>, once, in key order, with its current value (null: deleted), read in one snapshot
    /// with the shard's version and tree version. Folding them into the tree at <see cref="ShardState.Root"/> gives the tree
    /// of the shard's contents at <see cref="UnfoldedChanges.Version"/> (what a new owner does after a crash of the old one).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.UnknownShard"/>.</exception>
    ValueTask<UnfoldedChanges> ReadUnfoldedAsync(long shardId, CancellationToken cancellationToken);

    /// <summary>
    /// Splits shard <see cref="ShardSplit.ShardId"/> in two at <see cref="ShardSplit.SplitKey"/>, atomically: the shard keeps
    /// the keys below the split key (its range now ends there) and a new shard, with a new id, takes the keys from it on
    /// (to the old end). Both get the version <see cref="ShardSplit.NewVersion"/>, the shard's epoch (and, in a cluster, its
    /// owner), and the complete trees given (each replaces whatever nodes the shard had; both trees are then at the new version and
    /// nothing is unfolded). Only if the shard's epoch and
    /// version are the expected ones.
    /// </summary>
    /// <remarks>The new id has never been given to any shard of the store, also after merges: ids come from a counter the
    /// store keeps, which only moves up, so a merged-away shard's id is retired, never reused (clients cache shard maps keyed
    /// by id, and ids appear in proofs and logs). It is often, not always, the largest id in the store plus one; a refused
    /// split takes no id. (A store created by a build without the counter starts it at its largest id when upgraded: an id
    /// above that which an earlier merge freed may be given once more.) Moved rows keep the version and time of the commit
    /// that wrote them. A node reader of the shard sees the new left tree once the call returns; a
    /// <see cref="ShardTreeNodeStore"/> opened before must be reopened from the returned state (its root and cache belong to
    /// the old tree).</remarks>
    /// <returns>The two shards' states after the split: left (the old id), right (the new one).</returns>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if the epoch or version moved on (nothing is written);
    /// <see cref="GridErrorCode.UnknownShard"/>; <see cref="GridErrorCode.InvalidArgument"/> if the split key is not strictly
    /// inside the shard's range (after its start, before its end), NewVersion ≤ ExpectedVersion, or a key count differs from
    /// the rows on that side of the split key (the store counts; nothing is written).</exception>
    ValueTask<(ShardState Left, ShardState Right)> SplitAsync(ShardSplit split, CancellationToken cancellationToken);

    /// <summary>
    /// Merges two adjacent shards into the left one, atomically: it takes the right one's rows and range (its range now
    /// ends where the right one ended), the version <see cref="ShardMerge.NewVersion"/> and the complete tree given (which
    /// replaces both trees, at the new version, nothing unfolded); the right shard is gone. Only if both shards' epochs and versions are the expected ones.
    /// </summary>
    /// <remarks>The merged shard keeps the left one's epoch (and, in a cluster, its owner). Moved rows keep the version and
    /// time of the commit that wrote them. Afterwards the right id is unknown (<see cref="GridErrorCode.UnknownShard"/>) and a
    /// node reader of it finds nothing; trees over either shard must be reopened from the returned state.</remarks>
    /// <returns>The merged shard's state.</returns>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if either epoch or version moved on (nothing is
    /// written); <see cref="GridErrorCode.UnknownShard"/>; <see cref="GridErrorCode.InvalidArgument"/> if the right shard's
    /// range does not start where the left one's ends, the ids are equal, NewVersion is not greater than both expected
    /// versions, or the key count differs from the two shards' rows together.</exception>
    ValueTask<ShardState> MergeAsync(ShardMerge merge, CancellationToken cancellationToken);

    /// <summary>
    /// Synchronous, read-only access to one shard's tree nodes, for the sparse Merkle tree (whose node store is
    /// synchronous). Reads see committed nodes only. The reader is cheap and may be kept for the shard's life.
    /// A reader of an unknown shard finds no nodes.
    /// </summary>
    IShardNodeReader OpenNodeReader(long shardId);
}

/// <summary>
/// Reads committed tree nodes of one shard by position (<see cref="SmtPosition"/>): stores keep a shard's nodes keyed by
/// where they sit in its tree, so a fold changes a replaced node in place (docs/storage.md, "Tree nodes").
/// </summary>
public interface IShardNodeReader : IDisposable
{
    /// <summary>
    /// The node at <paramref name="position"/> if it has hash <paramref name="hash"/>; false if the position is empty or
    /// holds another node (which a tree walking from the stored root never meets unless the store is corrupt).
    /// </summary>
    bool TryGetNode(in Fr hash, in SmtPosition position, out SmtNode node);

    /// <summary>
    /// Many lookups at once, each answered as <see cref="TryGetNode"/> would: <paramref name="found"/>[i] says whether
    /// <paramref name="nodes"/>[i] holds the node of <paramref name="hashes"/>[i] at <paramref name="positions"/>[i]. A store
    /// over a server answers in one round trip; the default asks one by one.
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    void GetNodes(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
    {
        NodeLookups.CheckSpans(hashes, positions, nodes, found);
        for (int i = 0; i < hashes.Length; i++) found[i] = TryGetNode(hashes[i], positions[i], out nodes[i]);
    }
}

/// <summary>Argument checks shared by the bulk node lookups.</summary>
internal static class NodeLookups
{
    /// <summary>One position, one node and one found slot per hash.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static void CheckSpans(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
    {
        if (positions.Length != hashes.Length || nodes.Length != hashes.Length || found.Length != hashes.Length)
            throw new ArgumentException(
                $"{hashes.Length} hashes need as many positions, node and found slots; got {positions.Length}, {nodes.Length} and {found.Length}.", nameof(nodes));
    }
}

/// <summary>A shard's durable metadata.</summary>
/// <param name="ShardId">Stable identity of the shard.</param>
/// <param name="Range">The keys it owns.</param>
/// <param name="Version">Incremented by every commit; 0 when new.</param>
/// <param name="Epoch">Ownership epoch; incremented by every <see cref="IShardStore.ClaimAsync"/>.</param>
/// <param name="Root">The sparse Merkle root of its contents at <paramref name="TreeVersion"/> (0 when empty): the stored tree's root.</param>
/// <param name="KeyCount">Rows it holds.</param>
/// <param name="UpdatedAtMicros">Unix time of the last commit in microseconds.</param>
/// <param name="TreeVersion">The version the stored tree (<paramref name="Root"/> and the nodes) is of: at most
/// <paramref name="Version"/>; lower while data commits wait to be folded (<see cref="IShardStore.ReadUnfoldedAsync"/>).</param>
public sealed record ShardState(long ShardId, KeyRange Range, long Version, long Epoch, Fr Root, long KeyCount, long UpdatedAtMicros,
    long TreeVersion)
{
    /// <summary>True when the stored tree lags the rows: data commits after <see cref="TreeVersion"/> are not folded yet.</summary>
    public bool HasUnfolded => TreeVersion < Version;
}

/// <summary>A stored row: the value and the version and time of the commit that wrote it.</summary>
public sealed record StoredRow(byte[] Key, byte[] Value, long Version, long TimestampMicros);

/// <summary>One data change: <see cref="Value"/> null deletes the key.</summary>
public readonly record struct RowWrite(byte[] Key, byte[]? Value);

/// <summary>Everything one group commit of a shard writes, in one transaction.</summary>
public sealed class ShardCommit
{
    /// <summary>The shard.</summary>
    public required long ShardId { get; init; }

    /// <summary>The writer's ownership epoch: the commit is refused unless it is the shard's current epoch.</summary>
    public required long Epoch { get; init; }

    /// <summary>The version the writer built on: the commit is refused unless it is the shard's current version.</summary>
    public required long ExpectedVersion { get; init; }

    /// <summary>The version after the commit (greater than <see cref="ExpectedVersion"/>).</summary>
    public required long NewVersion { get; init; }

    /// <summary>
    /// The tree root at <see cref="NewVersion"/> for a combined commit (rows and tree together; the tree must be at
    /// <see cref="ExpectedVersion"/>); null for a data commit (rows only; the tree folds them in later through
    /// <see cref="IShardStore.CommitTreeAsync"/>, and <see cref="AddedNodes"/> and <see cref="RemovedPositions"/> must be empty).
    /// </summary>
    public required Fr? NewRoot { get; init; }

    /// <summary>
    /// The key count after the commit; the store checks it against the rows (see <see cref="IShardStore.CommitAsync"/>).
    /// Null: the store counts without checking (a data commit's writer has no tree to count with).
    /// </summary>
    public required long? NewKeyCount { get; init; }

    /// <summary>Commit time, Unix microseconds (stored on every written row).</summary>
    public required long TimestampMicros { get; init; }

    /// <summary>Data rows to upsert or delete (each key at most once).</summary>
    public IReadOnlyList<RowWrite> Rows { get; init; } = [];

    /// <summary>Tree nodes the commit stores, each at its <see cref="SmtNodeEntry.Position"/> (replacing what is there).</summary>
    public IReadOnlyList<SmtNodeEntry> AddedNodes { get; init; } = [];

    /// <summary>Positions the commit empties (applied before the additions: a position in both ends up holding the added node).</summary>
    public IReadOnlyList<SmtPosition> RemovedPositions { get; init; } = [];
}

/// <summary>A tree fold of one shard (see <see cref="IShardStore.CommitTreeAsync"/>).</summary>
public sealed class ShardTreeCommit
{
    /// <summary>The shard.</summary>
    public required long ShardId { get; init; }

    /// <summary>The writer's ownership epoch: refused unless it is the shard's current epoch.</summary>
    public required long Epoch { get; init; }

    /// <summary>The tree version the fold built on: refused unless it is the shard's current tree version.</summary>
    public required long ExpectedTreeVersion { get; init; }

    /// <summary>The version of the data the tree holds after the fold: above ExpectedTreeVersion, at most the shard's version.</summary>
    public required long NewTreeVersion { get; init; }

    /// <summary>The tree root at <see cref="NewTreeVersion"/>.</summary>
    public required Fr NewRoot { get; init; }

    /// <summary>Tree nodes the fold stores, each at its <see cref="SmtNodeEntry.Position"/> (replacing what is there).</summary>
    public IReadOnlyList<SmtNodeEntry> AddedNodes { get; init; } = [];

    /// <summary>Positions the fold empties (applied before the additions: a position in both ends up holding the added node).</summary>
    public IReadOnlyList<SmtPosition> RemovedPositions { get; init; } = [];
}

/// <summary>What a shard's stored tree does not hold yet (see <see cref="IShardStore.ReadUnfoldedAsync"/>).</summary>
/// <param name="TreeVersion">The stored tree's version.</param>
/// <param name="Version">The shard's data version: folding <paramref name="Rows"/> brings the tree to it.</param>
/// <param name="Rows">Each key written after the tree version, once, in key order, with its current value (null: deleted).</param>
public sealed record UnfoldedChanges(long TreeVersion, long Version, IReadOnlyList<RowWrite> Rows);

/// <summary>A split of one shard in two (see <see cref="IShardStore.SplitAsync"/>).</summary>
public sealed class ShardSplit
{
    /// <summary>The shard to split; it keeps the left part.</summary>
    public required long ShardId { get; init; }

    /// <summary>The owner's epoch: refused unless it is the shard's current epoch.</summary>
    public required long Epoch { get; init; }

    /// <summary>The version the trees were built from: refused unless it is the shard's current version.</summary>
    public required long ExpectedVersion { get; init; }

    /// <summary>The version both shards have after the split (greater than <see cref="ExpectedVersion"/>).</summary>
    public required long NewVersion { get; init; }

    /// <summary>The first key of the right shard: strictly after the shard's start and before its end.</summary>
    public required byte[] SplitKey { get; init; }

    /// <summary>Root of the left shard's tree (the keys below <see cref="SplitKey"/>).</summary>
    public required Fr LeftRoot { get; init; }

    /// <summary>Keys below <see cref="SplitKey"/>; the store checks it against the rows.</summary>
    public required long LeftKeyCount { get; init; }

    /// <summary>Every node of the left tree (replaces the shard's nodes).</summary>
    public required IReadOnlyList<SmtNodeEntry> LeftNodes { get; init; }

    /// <summary>Root of the right shard's tree (the keys from <see cref="SplitKey"/> on).</summary>
    public required Fr RightRoot { get; init; }

    /// <summary>Keys from <see cref="SplitKey"/> on; the store checks it against the rows.</summary>
    public required long RightKeyCount { get; init; }

    /// <summary>Every node of the right tree.</summary>
    public required IReadOnlyList<SmtNodeEntry> RightNodes { get; init; }

    /// <summary>Time of the split, Unix microseconds (both shards' last-update time).</summary>
    public required long TimestampMicros { get; init; }
}

/// <summary>A merge of two adjacent shards into the left one (see <see cref="IShardStore.MergeAsync"/>).</summary>
public sealed class ShardMerge
{
    /// <summary>The left shard (it remains, with the merged range).</summary>
    public required long LeftShardId { get; init; }

    /// <summary>The left shard's expected epoch.</summary>
    public required long LeftEpoch { get; init; }

    /// <summary>The left shard's expected version.</summary>
    public required long LeftExpectedVersion { get; init; }

    /// <summary>The right shard (its range starts where the left one's ends; it is removed).</summary>
    public required long RightShardId { get; init; }

    /// <summary>The right shard's expected epoch.</summary>
    public required long RightEpoch { get; init; }

    /// <summary>The right shard's expected version.</summary>
    public required long RightExpectedVersion { get; init; }

    /// <summary>The merged shard's version: greater than both expected versions.</summary>
    public required long NewVersion { get; init; }

    /// <summary>Root of the merged tree.</summary>
    public required Fr Root { get; init; }

    /// <summary>Keys of both shards together; the store checks it against the rows.</summary>
    public required long KeyCount { get; init; }

    /// <summary>Every node of the merged tree (replaces both shards' nodes).</summary>
    public required IReadOnlyList<SmtNodeEntry> Nodes { get; init; }

    /// <summary>Time of the merge, Unix microseconds.</summary>
    public required long TimestampMicros { get; init; }
}
