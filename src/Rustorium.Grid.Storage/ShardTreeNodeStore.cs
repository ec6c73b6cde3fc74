using System.Buffers.Binary;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>
/// The sparse Merkle tree's node store for one shard, on top of an <see cref="IShardStore"/>: the tree reads and
/// "commits" through it, but nothing is written until the shard's own store commit carries the changes, so the data
/// rows, the tree nodes, the version and the root move together in one transaction (invariant 3).
/// </summary>
/// <remarks>
/// <para><b>Positions.</b> Nodes are kept by where they sit in the tree (<see cref="SmtPosition"/>), so the tree reads
/// through <see cref="ISmtPositionedNodeStore"/>; a lookup by hash alone is not supported.</para>
/// <para><b>Reads</b> look, in order, at the staged layers (newest first: a staged position answers for itself, holding
/// the node or not), a bounded LRU cache of committed nodes (by hash: a node's content never changes), and finally the
/// store's <see cref="IShardNodeReader"/> (counted in <see cref="StoreReads"/>). A tree over this store re-activates from
/// the stored root alone: no node is rehashed or loaded up front, and a proof reads one path (its top levels soon come
/// from the cache).</para>
/// <para><b>Writes</b> (<see cref="Commit"/>, called by the tree) only stage: each position the batch empties or fills
/// is noted with what it holds afterwards, and <see cref="Root"/> moves. Several tree operations may be staged before
/// one store commit (group commit); a position filled and emptied again within the staging never reaches the store,
/// and a position emptied and filled again is one change in place.</para>
/// <para><b>The cycle</b>, driven by the shard grain:</para>
/// <list type="number">
/// <item>run tree operations (<see cref="SparseMerkleTree.Insert"/>, <see cref="SparseMerkleTree.ApplyBatch"/>, …);</item>
/// <item><see cref="TakeStaged"/>: the net node changes and the new root, to put into the <see cref="ShardCommit"/>
/// (<see cref="StagedTreeChanges.AddedNodes"/>, <see cref="StagedTreeChanges.RemovedPositions"/>, <see cref="StagedTreeChanges.NewRoot"/>);
/// while that commit is in flight the tree may go on changing (the next group is folded on top, in a new layer), so
/// hashing overlaps the store's write;</item>
/// <item>after <see cref="IShardStore.CommitAsync"/> succeeded, <see cref="AcceptStaged"/> (the staged root becomes the
/// committed root, additions go to the cache); if it failed, <see cref="DiscardStaged"/> (root and every staged layer roll
/// back to the last committed state, as if the operations never ran).</item>
/// </list>
/// <para>Not thread-safe, like the tree that owns it: one shard activation, one turn at a time.</para>
/// </remarks>
public sealed class ShardTreeNodeStore : ISmtPositionedNodeStore, IDisposable
{
    /// <summary>Default cache size: 16,384 nodes (about 2.5 MiB with its index), the top 14 levels of a full tree.</summary>
    public const int DefaultCacheCapacity = 16 * 1024;

    private readonly IShardNodeReader _reader;
    private readonly bool _ownsReader;
    private readonly SmtNodeCache _cache;

    // Staged changes, in layers over the committed tree C: the taken layers (oldest first; each handed to a store commit,
    // accepted in order) and the open layer that tree operations stage into. Each layer maps the positions it changed to
    // what they hold after it; positions it did not change are as in the layer below. A "fresh" slot is one the layer
    // filled where its base had nothing, so emptying it again needs no store delete.
    private Layer _open = new();
    private readonly List<Layer> _taken = new();

    private readonly record struct Slot(Fr Hash, SmtNode Node, bool Occupied, bool Fresh);

    private sealed class Layer(int positions = 0, int replaced = 0)
    {
        // Sized from the layer before (TakeStaged): a checkpoint period stages tens of thousands of positions a shard,
        // and growing to that by doubling re-allocated the table several times every period.
        public readonly Dictionary<SmtPosition, Slot> At = new(positions);
        public readonly List<Fr> Replaced = new(replaced); // hashes of the nodes the layer removed, to drop from the cache
        public Fr RootAfter;

        public bool IsEmpty => At.Count == 0;
    }

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
        Committed = new CommittedView(this);
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

    /// <summary>
    /// The committed tree alone, as a read-only node store (its <see cref="ISmtNodeStore.Root"/> is <see cref="CommittedRoot"/>;
    /// staged layers are invisible): for proofs of committed state while later operations are staged. Shares this store's
    /// cache, so it needs the same exclusion as the tree (one thread at a time).
    /// </summary>
    public ISmtPositionedNodeStore Committed { get; }

    /// <summary>True when tree operations are staged that no accepted store commit has carried yet.</summary>
    public bool HasStaged => Root != CommittedRoot || !_open.IsEmpty || _taken.Count > 0;

    /// <summary>Layers taken by <see cref="TakeStaged"/> and not yet accepted or discarded (their store commits are pending).</summary>
    public int PendingCommits => _taken.Count;

    /// <summary>Nodes fetched from the store's reader so far (cache and staging misses).</summary>
    public long StoreReads { get; private set; }

    /// <summary>Reads answered by the cache so far.</summary>
    public long CacheHits { get; private set; }

    /// <summary>Committed nodes in the cache now.</summary>
    public int CachedNodes => _cache.Count;

    /// <summary>Not supported: nodes are kept by position; a tree over this store reads through <see cref="TryGetNodeAt"/>.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public bool TryGetNode(in Fr hash, out SmtNode node) => throw ByHashNotSupported();

    /// <inheritdoc />
    public bool TryGetNodeAt(in Fr hash, in SmtPosition position, out SmtNode node)
    {
        if (TryGetStaged(hash, position, out node, out bool decided)) return true;
        return !decided && TryGetCommitted(hash, position, out node);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Staged layers and the cache answer first; the rest go to the store's reader in one
    /// <see cref="IShardNodeReader.GetNodes"/> call (one round trip on PostgreSQL). Nodes read so are cached only when the
    /// call missed few (at most an eighth of the cache): a batch's deep levels would otherwise flush the top levels every
    /// operation reads.
    /// </remarks>
    public void GetNodesAt(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
    {
        NodeLookups.CheckSpans(hashes, positions, nodes, found);
        List<int>? misses = null;
        for (int i = 0; i < hashes.Length; i++)
        {
            if (TryGetStaged(hashes[i], positions[i], out nodes[i], out bool decided))
            {
                found[i] = true;
                continue;
            }
            if (decided)
            {
                found[i] = false;
                continue;
            }
            if (_cache.TryGet(hashes[i], out nodes[i]))
            {
                CacheHits++;
                found[i] = true;
                continue;
            }
            (misses ??= new()).Add(i);
        }
        if (misses is null) return;

        var missHashes = new Fr[misses.Count];
        var missPositions = new SmtPosition[misses.Count];
        for (int j = 0; j < misses.Count; j++)
        {
            missHashes[j] = hashes[misses[j]];
            missPositions[j] = positions[misses[j]];
        }
        var missNodes = new SmtNode[misses.Count];
        var missFound = new bool[misses.Count];
        StoreReads += misses.Count;
        _reader.GetNodes(missHashes, missPositions, missNodes, missFound);
        bool cache = misses.Count <= Math.Max(1, _cache.Capacity / 8);
        for (int j = 0; j < misses.Count; j++)
        {
            int i = misses[j];
            found[i] = missFound[j];
            if (!missFound[j]) continue;
            nodes[i] = missNodes[j];
            if (cache) _cache.Set(missHashes[j], missNodes[j]);
        }
    }

    /// <summary>
    /// The node if a staged layer holds <paramref name="hash"/> at <paramref name="position"/>; <paramref name="decided"/>
    /// when a staged layer changed that position (then the answer is final, found or not).
    /// </summary>
    private bool TryGetStaged(in Fr hash, in SmtPosition position, out SmtNode node, out bool decided)
    {
        if (Find(_open, hash, position, out node, out decided)) return true;
        for (int i = _taken.Count - 1; i >= 0 && !decided; i--)
            if (Find(_taken[i], hash, position, out node, out decided)) return true;
        return false;
    }

    private static bool Find(Layer layer, in Fr hash, in SmtPosition position, out SmtNode node, out bool decided)
    {
        node = default;
        decided = layer.At.TryGetValue(position, out var slot);
        if (!decided || !slot.Occupied || slot.Hash != hash) return false;
        node = slot.Node;
        return true;
    }

    private bool TryGetCommitted(in Fr hash, in SmtPosition position, out SmtNode node)
    {
        if (_cache.TryGet(hash, out node))
        {
            CacheHits++;
            return true;
        }
        StoreReads++;
        if (!_reader.TryGetNode(hash, position, out node)) return false;
        _cache.Set(hash, node);
        return true;
    }

    /// <summary>Stages <paramref name="batch"/> into the open layer (see the type's remarks); writes nothing.</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.Conflict"/> if <see cref="SmtNodeBatch.OldRoot"/> is not <see cref="Root"/>.</exception>
    /// <exception cref="ArgumentException">A change comes without its position (a store keyed by position needs them all).</exception>
    public void Commit(SmtNodeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.OldRoot != Root)
            throw new SmtException(SmtErrorCode.Conflict,
                $"The shard's tree root is {Root}, not {batch.OldRoot} as the batch expects: another writer changed the tree.");
        CheckPositions(batch);

        var layer = _open;
        var removed = batch.Removed;
        var removedAt = batch.RemovedPositions;
        for (int i = 0; i < removed.Length; i++)
        {
            Vacate(layer, removedAt[i]);
            layer.Replaced.Add(removed[i]);
        }
        foreach (ref readonly var move in batch.Moved) Vacate(layer, move.From);
        foreach (ref readonly var entry in batch.Added) Fill(layer, entry.Position, entry.Hash, entry.Node);
        foreach (ref readonly var move in batch.Moved) Fill(layer, move.To, move.Hash, move.Node);
        Root = batch.NewRoot;
    }

    private static void CheckPositions(SmtNodeBatch batch)
    {
        foreach (var position in batch.RemovedPositions)
            if (!position.IsKnown) throw new ArgumentException("A removal in the batch has no position; a shard's tree stores nodes by position.", nameof(batch));
        foreach (ref readonly var entry in batch.Added)
            if (!entry.Position.IsKnown) throw new ArgumentException($"Node {entry.Hash} in the batch has no position; a shard's tree stores nodes by position.", nameof(batch));
    }

    private static void Vacate(Layer layer, in SmtPosition position)
    {
        // The tree empties only positions that hold a node; if this layer did not fill it, the node is in the base.
        if (layer.At.TryGetValue(position, out var slot) && slot.Fresh) layer.At.Remove(position);
        else layer.At[position] = default;
    }

    private static void Fill(Layer layer, in SmtPosition position, in Fr hash, in SmtNode node)
    {
        // The tree fills only empty positions: emptied earlier in this layer (the base has a node there unless the slot
        // is fresh), or untouched by this layer and so empty in the base too.
        bool fresh = !layer.At.TryGetValue(position, out var slot) || slot.Fresh;
        layer.At[position] = new Slot(hash, node, Occupied: true, fresh);
    }

    /// <summary>
    /// The net node changes staged since the last <see cref="TakeStaged"/> and the root they lead to, for one
    /// <see cref="ShardCommit"/> (its old root is the previous taken layer's new root, or the committed root), in no
    /// particular order (<see cref="StagedTreeChanges.InStoreOrder"/> sorts them, outside whatever lock the caller holds
    /// now). Tree operations may go on meanwhile: they stage into a new layer on top. Taken layers must be committed to the
    /// store in the order they were taken, and accepted (<see cref="AcceptStaged"/>) in that order.
    /// </summary>
    public StagedTreeChanges TakeStaged()
    {
        var oldRoot = _taken.Count > 0 ? _taken[^1].RootAfter : CommittedRoot;
        var layer = _open;
        var added = new List<SmtNodeEntry>(layer.At.Count);
        var removed = new List<SmtPosition>();
        foreach (var (position, slot) in layer.At)
        {
            if (slot.Occupied) added.Add(new SmtNodeEntry(slot.Hash, slot.Node, position));
            else removed.Add(position);
        }
        layer.RootAfter = Root;
        _taken.Add(layer);
        _open = new Layer(layer.At.Count, layer.Replaced.Count);
        return new StagedTreeChanges(oldRoot, layer.RootAfter, added, removed);
    }

    /// <summary>The store commit that carried the oldest taken layer succeeded: it becomes the committed state.</summary>
    /// <exception cref="InvalidOperationException">No layer is taken.</exception>
    public void AcceptStaged()
    {
        if (_taken.Count == 0)
            throw new InvalidOperationException("AcceptStaged needs a preceding TakeStaged: only changes handed to a store commit can be accepted.");
        var layer = _taken[0];
        _taken.RemoveAt(0);
        foreach (var hash in layer.Replaced) _cache.Remove(hash);
        foreach (var slot in layer.At.Values)
            if (slot.Occupied) _cache.Set(slot.Hash, slot.Node);
        CommittedRoot = layer.RootAfter;
    }

    /// <summary>
    /// Drops every staged change — the taken layers and everything staged on top of them — and moves <see cref="Root"/>
    /// back to <see cref="CommittedRoot"/>: after a failed store commit, or to abandon operations that were never handed
    /// to one. The tree over this store sees the committed state again.
    /// </summary>
    public void DiscardStaged()
    {
        Root = CommittedRoot;
        _taken.Clear();
        _open = new Layer();
    }

    /// <summary>
    /// Drops the open layer only (operations staged since the last <see cref="TakeStaged"/>) and moves <see cref="Root"/>
    /// back to where the last taken layer left it: after a failed tree operation while earlier layers' store commits are
    /// still in flight, which stay and are accepted as usual.
    /// </summary>
    public void DiscardOpen()
    {
        Root = _taken.Count > 0 ? _taken[^1].RootAfter : CommittedRoot;
        _open = new Layer();
    }

    private static NotSupportedException ByHashNotSupported() =>
        new("A shard's tree nodes are stored by position: look them up with TryGetNodeAt (a SparseMerkleTree does).");

    private sealed class CommittedView(ShardTreeNodeStore owner) : ISmtPositionedNodeStore
    {
        public Fr Root => owner.CommittedRoot;

        public bool TryGetNode(in Fr hash, out SmtNode node) => throw ByHashNotSupported();

        public bool TryGetNodeAt(in Fr hash, in SmtPosition position, out SmtNode node) => owner.TryGetCommitted(hash, position, out node);

        public void GetNodesAt(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
        {
            NodeLookups.CheckSpans(hashes, positions, nodes, found);
            for (int i = 0; i < hashes.Length; i++) found[i] = owner.TryGetCommitted(hashes[i], positions[i], out nodes[i]);
        }

        public void Commit(SmtNodeBatch batch) =>
            throw new InvalidOperationException("The committed view of a shard's tree is read-only: change the tree through the node store itself.");
    }

    /// <summary>Disposes the node reader if this store owns it.</summary>
    public void Dispose()
    {
        if (_ownsReader) _reader.Dispose();
    }
}

/// <summary>
/// The net tree changes of the operations staged in a <see cref="ShardTreeNodeStore"/>: what a shard's
/// <see cref="ShardCommit"/> carries as <see cref="ShardCommit.AddedNodes"/>, <see cref="ShardCommit.RemovedPositions"/>
/// and <see cref="ShardCommit.NewRoot"/>.
/// </summary>
/// <param name="OldRoot">The committed root the changes start from.</param>
/// <param name="NewRoot">The root after them.</param>
/// <param name="AddedNodes">Nodes to store, each at its position (replacing what is there).</param>
/// <param name="RemovedPositions">Positions to empty (applied before the additions).</param>
public sealed record StagedTreeChanges(Fr OldRoot, Fr NewRoot, IReadOnlyList<SmtNodeEntry> AddedNodes, IReadOnlyList<SmtPosition> RemovedPositions)
{
    /// <summary>True when nothing changed.</summary>
    public bool IsEmpty => AddedNodes.Count == 0 && RemovedPositions.Count == 0 && OldRoot == NewRoot;

    /// <summary>
    /// The same changes with both lists in the byte order of the positions' encodings, the stores' key order: a store
    /// then walks its node table's pages in order, and the nodes of one key's path, which sit together, together. (On a
    /// model of the embedded store's checkpoints, unsorted updates cost 1.4× sorted ones: docs/benchmarks.md.)
    /// </summary>
    /// <remarks>
    /// Sorts small (key, index) pairs rather than the entries themselves (~150 bytes each) or byte arrays (one object per
    /// entry): a checkpoint at 1,000,000 keys sorts ~30,000 positions a shard, and the old way's allocations and moves
    /// were ~4 % of a loaded silo's CPU.
    /// </remarks>
    public StagedTreeChanges InStoreOrder()
    {
        var addedOrder = SortedOrder(AddedNodes.Count, i => AddedNodes[i].Position);
        var added = new SmtNodeEntry[addedOrder.Length];
        for (int i = 0; i < added.Length; i++) added[i] = AddedNodes[addedOrder[i].Index];
        var removedOrder = SortedOrder(RemovedPositions.Count, i => RemovedPositions[i]);
        var removed = new SmtPosition[removedOrder.Length];
        for (int i = 0; i < removed.Length; i++) removed[i] = RemovedPositions[removedOrder[i].Index];
        return this with { AddedNodes = added, RemovedPositions = removed };
    }

    private static PositionKey[] SortedOrder(int count, Func<int, SmtPosition> positionAt)
    {
        var keys = new PositionKey[count];
        for (int i = 0; i < count; i++) keys[i] = PositionKey.Of(positionAt(i), i);
        Array.Sort(keys);
        return keys;
    }

    /// <summary>
    /// A position's encoding (at most 33 bytes) zero-padded to 40 and read as five big-endian words, with the entry's index.
    /// Comparing the words compares the encodings byte by byte; where one encoding is a prefix of the other, the longer
    /// one still has its level byte (≥ 1) after the prefix, so the zero padding sorts the shorter first, as a byte
    /// comparison does.
    /// </summary>
    internal readonly record struct PositionKey(ulong W0, ulong W1, ulong W2, ulong W3, ulong W4, int Index) : IComparable<PositionKey>
    {
        public static PositionKey Of(in SmtPosition position, int index)
        {
            Span<byte> bytes = stackalloc byte[40];
            bytes.Clear();
            position.Encode(bytes);
            return new(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]),
                BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]), BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]),
                BinaryPrimitives.ReadUInt64BigEndian(bytes[32..]), index);
        }

        public int CompareTo(PositionKey other)
        {
            int c = W0.CompareTo(other.W0);
            if (c == 0) c = W1.CompareTo(other.W1);
            if (c == 0) c = W2.CompareTo(other.W2);
            if (c == 0) c = W3.CompareTo(other.W3);
            if (c == 0) c = W4.CompareTo(other.W4);
            return c;
        }
    }
}
