using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>
/// The sparse Merkle tree's node store for one shard, on top of an <see cref="IShardStore"/>: the tree reads and
/// "commits" through it, but nothing is written until the shard's own store commit carries the changes, so the data
/// rows, the tree nodes, the version and the root move together in one transaction (invariant 3).
/// </summary>
/// <remarks>
/// <para><b>Reads</b> look, in order, at the staged additions, the staged removals (a staged-removed node is gone), a
/// bounded LRU cache of committed nodes, and finally the store's <see cref="IShardNodeReader"/> (counted in
/// <see cref="StoreReads"/>). A tree over this store re-activates from the stored root alone: no node is rehashed or
/// loaded up front, and a proof reads one path (its top levels soon come from the cache).</para>
/// <para><b>Writes</b> (<see cref="Commit"/>, called by the tree) only stage: the batch's removals and additions are
/// folded into the staged change set and <see cref="Root"/> moves. Several tree operations may be staged before one
/// store commit (group commit); a node added and removed again within the staging never reaches the store.</para>
/// <para><b>The cycle</b>, driven by the shard grain:</para>
/// <list type="number">
/// <item>run tree operations (<see cref="SparseMerkleTree.Insert"/>, <see cref="SparseMerkleTree.ApplyBatch"/>, …);</item>
/// <item><see cref="TakeStaged"/>: the net node changes and the new root, to put into the <see cref="ShardCommit"/>
/// (<see cref="StagedTreeChanges.AddedNodes"/>, <see cref="StagedTreeChanges.RemovedNodes"/>, <see cref="StagedTreeChanges.NewRoot"/>);
/// from here until step 3 the tree may be read but not changed;</item>
/// <item>after <see cref="IShardStore.CommitAsync"/> succeeded, <see cref="AcceptStaged"/> (the staged root becomes the
/// committed root, additions go to the cache); if it failed, <see cref="DiscardStaged"/> (root and staging roll back
/// to the last committed state, as if the operations never ran).</item>
/// </list>
/// <para>Not thread-safe, like the tree that owns it: one shard activation, one turn at a time.</para>
/// </remarks>
public sealed class ShardTreeNodeStore : ISmtNodeStore, IDisposable
{
    /// <summary>Default cache size: 16,384 nodes (about 2.5 MiB with its index), the top 14 levels of a full tree.</summary>
    public const int DefaultCacheCapacity = 16 * 1024;

    private readonly IShardNodeReader _reader;
    private readonly bool _ownsReader;
    private readonly SmtNodeCache _cache;

    // Staged changes. Applied to the committed node set C, the tree sees (C \ _removed) ∪ _added.
    // A "fresh" addition is known not to be in C, so removing it again needs no store delete.
    private readonly Dictionary<Fr, StagedNode> _added = new();
    private readonly HashSet<Fr> _removed = new();
    private bool _sealed;

    private readonly record struct StagedNode(SmtNode Node, bool Fresh);

    /// <summary>A node store over <paramref name="reader"/>, whose committed tree has root <paramref name="committedRoot"/>.</summary>
    /// <param name="reader">Reads the shard's committed nodes (see <see cref="IShardStore.OpenNodeReader"/>).</param>
    /// <param name="committedRoot">The shard's stored root (<see cref="ShardState.Root"/>).</param>
    /// <param name="cacheCapacity">Committed nodes kept in memory, at least 1; default <see cref="DefaultCacheCapacity"/>.</param>
    /// <param name="ownsReader">Dispose <paramref name="reader"/> with this store.</param>
    public ShardTreeNodeStore(IShardNodeReader reader, Fr committedRoot, int cacheCapacity = DefaultCacheCapacity, bool ownsReader = true)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfLessThan(cacheCapacity, 1);
        _reader = reader;
        _ownsReader = ownsReader;
        _cache = new SmtNodeCache(cacheCapacity);
        CommittedRoot = committedRoot;
        Root = committedRoot;
    }

    /// <summary>Opens the node store of <paramref name="shard"/> (its reader is owned and disposed with it).</summary>
    public static ShardTreeNodeStore Open(IShardStore store, ShardState shard, int cacheCapacity = DefaultCacheCapacity)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(shard);
        return new ShardTreeNodeStore(store.OpenNodeReader(shard.ShardId), shard.Root, cacheCapacity);
    }

    /// <summary>The tree's current root, including staged operations.</summary>
    public Fr Root { get; private set; }

    /// <summary>The root of the last accepted (durably committed) state.</summary>
    public Fr CommittedRoot { get; private set; }

    /// <summary>True when tree operations are staged that no store commit has carried yet.</summary>
    public bool HasStaged => Root != CommittedRoot || _added.Count > 0 || _removed.Count > 0;

    /// <summary>True between <see cref="TakeStaged"/> and <see cref="AcceptStaged"/>/<see cref="DiscardStaged"/>.</summary>
    public bool IsSealed => _sealed;

    /// <summary>Nodes fetched from the store's reader so far (cache and staging misses).</summary>
    public long StoreReads { get; private set; }

    /// <summary>Reads answered by the cache so far.</summary>
    public long CacheHits { get; private set; }

    /// <summary>Committed nodes in the cache now.</summary>
    public int CachedNodes => _cache.Count;

    /// <inheritdoc />
    public bool TryGetNode(in Fr hash, out SmtNode node)
    {
        if (_added.TryGetValue(hash, out var staged))
        {
            node = staged.Node;
            return true;
        }
        if (_removed.Contains(hash))
        {
            node = default;
            return false;
        }
        if (_cache.TryGet(hash, out node))
        {
            CacheHits++;
            return true;
        }
        StoreReads++;
        if (!_reader.TryGetNode(hash, out node)) return false;
        _cache.Set(hash, node);
        return true;
    }

    /// <summary>Stages <paramref name="batch"/> (see the type's remarks); writes nothing.</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.Conflict"/> if <see cref="SmtNodeBatch.OldRoot"/> is not <see cref="Root"/>.</exception>
    /// <exception cref="InvalidOperationException">Staged changes were taken by <see cref="TakeStaged"/> and not yet accepted or discarded.</exception>
    public void Commit(SmtNodeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (_sealed)
            throw new InvalidOperationException(
                "The shard's staged tree changes are being committed (TakeStaged was called): call AcceptStaged or DiscardStaged before changing the tree again.");
        if (batch.OldRoot != Root)
            throw new SmtException(SmtErrorCode.Conflict,
                $"The shard's tree root is {Root}, not {batch.OldRoot} as the batch expects: another writer changed the tree.");

        // (C \ R) ∪ A, minus r, plus a  =  (C \ (R ∪ r)) ∪ ((A \ r) ∪ a).
        foreach (var hash in batch.Removed)
        {
            if (_added.Remove(hash, out var staged) && staged.Fresh) continue; // never reached the store
            _removed.Add(hash);
        }
        foreach (ref readonly var entry in batch.Added)
        {
            // Not staged-removed: a canonical tree never re-adds a node it holds, so the node is new to the store.
            // Staged-removed: it may be stored; keep the addition (insert-or-ignore) and drop the now-moot removal.
            bool fresh = !_removed.Remove(entry.Hash);
            if (_added.TryGetValue(entry.Hash, out var existing)) fresh &= existing.Fresh;
            _added[entry.Hash] = new StagedNode(entry.Node, fresh);
        }
        Root = batch.NewRoot;
    }

    /// <summary>
    /// The net node changes staged since the last accepted commit and the root they lead to, for the shard's
    /// <see cref="ShardCommit"/>. Seals the store: tree reads continue, tree changes are refused until
    /// <see cref="AcceptStaged"/> or <see cref="DiscardStaged"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already sealed.</exception>
    public StagedTreeChanges TakeStaged()
    {
        if (_sealed) throw new InvalidOperationException("TakeStaged was already called; call AcceptStaged or DiscardStaged first.");
        var added = new SmtNodeEntry[_added.Count];
        int i = 0;
        foreach (var (hash, staged) in _added) added[i++] = new SmtNodeEntry(hash, staged.Node);
        var removed = new Fr[_removed.Count];
        _removed.CopyTo(removed);
        _sealed = true;
        return new StagedTreeChanges(CommittedRoot, Root, added, removed);
    }

    /// <summary>The store commit that carried <see cref="TakeStaged"/>'s changes succeeded: they become the committed state.</summary>
    /// <exception cref="InvalidOperationException"><see cref="TakeStaged"/> was not called.</exception>
    public void AcceptStaged()
    {
        if (!_sealed) throw new InvalidOperationException("AcceptStaged needs a preceding TakeStaged: only changes handed to a store commit can be accepted.");
        foreach (var hash in _removed) _cache.Remove(hash);
        foreach (var (hash, staged) in _added) _cache.Set(hash, staged.Node);
        CommittedRoot = Root;
        ClearStaging();
    }

    /// <summary>
    /// Drops every staged change and moves <see cref="Root"/> back to <see cref="CommittedRoot"/>: after a failed store
    /// commit, or to abandon operations that were never handed to one. The tree over this store sees the committed
    /// state again.
    /// </summary>
    public void DiscardStaged()
    {
        Root = CommittedRoot;
        ClearStaging();
    }

    private void ClearStaging()
    {
        bool large = _added.Count > 4096 || _removed.Count > 4096;
        _added.Clear();
        _removed.Clear();
        if (large)
        {
            // A bulk load must not pin its staging tables for the life of the shard.
            _added.TrimExcess();
            _removed.TrimExcess();
        }
        _sealed = false;
    }

    /// <summary>Disposes the node reader if this store owns it.</summary>
    public void Dispose()
    {
        if (_ownsReader) _reader.Dispose();
    }
}

/// <summary>
/// The net tree changes of the operations staged in a <see cref="ShardTreeNodeStore"/>: what a shard's
/// <see cref="ShardCommit"/> carries as <see cref="ShardCommit.AddedNodes"/>, <see cref="ShardCommit.RemovedNodes"/>
/// and <see cref="ShardCommit.NewRoot"/>.
/// </summary>
/// <param name="OldRoot">The committed root the changes start from.</param>
/// <param name="NewRoot">The root after them.</param>
/// <param name="AddedNodes">Nodes to store.</param>
/// <param name="RemovedNodes">Hashes of nodes to delete (applied before the additions).</param>
public sealed record StagedTreeChanges(Fr OldRoot, Fr NewRoot, IReadOnlyList<SmtNodeEntry> AddedNodes, IReadOnlyList<Fr> RemovedNodes)
{
    /// <summary>True when nothing changed.</summary>
    public bool IsEmpty => AddedNodes.Count == 0 && RemovedNodes.Count == 0 && OldRoot == NewRoot;
}
