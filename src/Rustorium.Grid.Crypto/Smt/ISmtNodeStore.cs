namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// Storage of one sparse Merkle tree: every node under its own hash (<see cref="SmtNode.Hash"/>), or, for a store that
/// also implements <see cref="ISmtPositionedNodeStore"/>, at its position in the tree; plus the current root hash. A
/// tree reopened over a persistent store continues where it stopped without rehashing anything.
/// </summary>
/// <remarks>
/// <para><b>One store, one tree.</b> Within one canonical tree every node hash is unique: a node's hash
/// commits to the set of (key, value) leaves below it and, through the keys' shared path bits, to its
/// position, so the same hash cannot appear at two places (short of a Poseidon collision). That is why
/// the tree deletes the nodes it replaces (delete-on-replace) without reference counting, exactly as
/// circomlibjs does. Two trees must therefore never share a store (an identical subtree in both would be
/// deleted from under the other); a store that wants history or snapshots must defer deletions itself.</para>
/// <para><b>Reads</b> happen one path at a time (<see cref="TryGetNode"/>); a disk store should cache the
/// top levels, which every operation reads.</para>
/// <para><b>Writes</b> come as one <see cref="SmtNodeBatch"/> per tree operation (or per
/// <see cref="SparseMerkleTree.ApplyBatch"/>) so a disk store needs one transaction and a few bulk
/// statements per commit, never a round trip per node.</para>
/// <para>Implementations need not be thread-safe: a <see cref="SparseMerkleTree"/> is single-writer.</para>
/// </remarks>
public interface ISmtNodeStore
{
    /// <summary>The current root hash; 0 for the empty tree.</summary>
    Fr Root { get; }

    /// <summary>Looks up the node stored under <paramref name="hash"/>.</summary>
    /// <returns>False if no such node is stored (the tree reports that as <see cref="SmtErrorCode.CorruptStore"/>).</returns>
    /// <exception cref="NotSupportedException">A store keyed by position (<see cref="ISmtPositionedNodeStore"/>) may refuse
    /// lookups by hash alone; a tree over it reads with <see cref="ISmtPositionedNodeStore.TryGetNodeAt"/>.</exception>
    bool TryGetNode(in Fr hash, out SmtNode node);

    /// <summary>
    /// Applies <paramref name="batch"/> atomically: either all of it or nothing.
    /// </summary>
    /// <remarks>
    /// In order: (1) if <see cref="Root"/> is not <see cref="SmtNodeBatch.OldRoot"/>, throw
    /// <see cref="SmtException"/> with <see cref="SmtErrorCode.Conflict"/> and change nothing (another
    /// writer moved the tree); (2) delete every hash in <see cref="SmtNodeBatch.Removed"/> (absent ones are
    /// ignored); (3) store every entry of <see cref="SmtNodeBatch.Added"/> (an entry whose hash is already
    /// stored has the same content by construction, so insert-or-ignore is correct); (4) set
    /// <see cref="Root"/> to <see cref="SmtNodeBatch.NewRoot"/>. Removal before addition makes a hash that
    /// appears in both lists (never produced by <see cref="SparseMerkleTree"/>, but harmless) end up stored.
    /// The batch belongs to the caller and is reused after the call: copy what you keep.
    /// A store keyed by position (<see cref="ISmtPositionedNodeStore"/>) applies the same changes by position instead:
    /// see <see cref="SmtNodeBatch"/>.
    /// </remarks>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.Conflict"/> when the root moved.</exception>
    void Commit(SmtNodeBatch batch);
}

/// <summary>
/// Optional for an <see cref="ISmtNodeStore"/>: looks many nodes up in one go. A store over a database implements it so
/// that <see cref="SparseMerkleTree.ApplyBatch"/> reads the paths of a batch one tree level per round trip instead of one
/// node per round trip.
/// </summary>
public interface ISmtBulkNodeReader
{
    /// <summary>
    /// For each i, looks up <paramref name="hashes"/>[i]: if stored, sets <paramref name="nodes"/>[i] and
    /// <paramref name="found"/>[i] = true, else <paramref name="found"/>[i] = false. Answers exactly as
    /// <see cref="ISmtNodeStore.TryGetNode"/> would for each hash.
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    void GetNodes(ReadOnlySpan<Fr> hashes, Span<SmtNode> nodes, Span<bool> found);
}

/// <summary>
/// Optional for an <see cref="ISmtNodeStore"/> that keeps nodes by position (<see cref="SmtPosition"/>) rather than by
/// hash: the tree then reads every node at the position it expects it, and a write that replaces a node can change it in
/// place. The tree knows each position because it walks from the root.
/// </summary>
public interface ISmtPositionedNodeStore : ISmtNodeStore
{
    /// <summary>
    /// The node at <paramref name="position"/>, if the node there has hash <paramref name="hash"/>; false if the
    /// position is empty or holds another node (the tree reports either as <see cref="SmtErrorCode.CorruptStore"/>).
    /// </summary>
    bool TryGetNodeAt(in Fr hash, in SmtPosition position, out SmtNode node);

    /// <summary>Many lookups at once, each answered as <see cref="TryGetNodeAt"/> would.</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    void GetNodesAt(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found);
}

/// <summary>A node to add to a store, under its hash, with its position in the tree when the producer knows it.</summary>
/// <param name="Hash">The node's hash (<see cref="SmtNode.Hash"/>), already computed.</param>
/// <param name="Node">The node.</param>
/// <param name="Position">Where it sits (<see cref="SmtPosition.None"/> if not known; a <see cref="SparseMerkleTree"/> always gives it).</param>
public readonly record struct SmtNodeEntry(Fr Hash, SmtNode Node, SmtPosition Position = default);

/// <summary>
/// A leaf that stays in the tree unchanged (same hash) but moves to another level: pushed down when a key arrives that
/// shares its path, or up when the last other key below its parent leaves. A store keyed by hash has nothing to do; a
/// store keyed by position empties <paramref name="From"/> (unless something else arrives there) and stores the leaf
/// at <paramref name="To"/>.
/// </summary>
/// <param name="Hash">The leaf's hash.</param>
/// <param name="Node">The leaf.</param>
/// <param name="From">Where it was.</param>
/// <param name="To">Where it is now.</param>
public readonly record struct SmtNodeMove(Fr Hash, SmtNode Node, SmtPosition From, SmtPosition To);

/// <summary>
/// The changes of one tree operation, applied by <see cref="ISmtNodeStore.Commit"/> in one step:
/// nodes to add (with their hashes, so the store never hashes), hashes to delete, and the root move
/// <see cref="OldRoot"/> → <see cref="NewRoot"/>.
/// </summary>
/// <remarks>
/// <para><b>Positions.</b> A <see cref="SparseMerkleTree"/> gives every change its place in the tree: each added node's
/// <see cref="SmtNodeEntry.Position"/>, each removed node's position (<see cref="RemovedPositions"/>, parallel to
/// <see cref="Removed"/>), and the leaves that only moved (<see cref="Moved"/>). A store keyed by position applies a
/// batch as: empty every removed position and every move's <see cref="SmtNodeMove.From"/>, then store every added node
/// and every moved leaf at its new position; a position emptied and filled in one batch is a change in place. After
/// that the positions hold exactly the nodes reachable from <see cref="NewRoot"/>, each where a walk from the root finds
/// it. A store keyed by hash ignores the positions and the moves.</para>
/// <para>Reusable: <see cref="Clear"/> keeps the buffers, so a tree commits without allocating once the
/// buffers have grown to its path length. Exposed as spans so a disk store can bind them to one bulk
/// statement each (e.g. PostgreSQL <c>unnest</c> arrays, or SQLite prepared statements in one transaction).</para>
/// </remarks>
public sealed class SmtNodeBatch
{
    private SmtNodeEntry[] _added;
    private Fr[] _removed;
    private SmtPosition[] _removedAt;
    private SmtNodeMove[] _moved = new SmtNodeMove[4];
    private int _addedCount;
    private int _removedCount;
    private int _movedCount;

    /// <summary>An empty batch.</summary>
    public SmtNodeBatch() : this(16) { }

    /// <summary>An empty batch with room for <paramref name="capacity"/> additions and removals before it grows.</summary>
    public SmtNodeBatch(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _added = new SmtNodeEntry[Math.Max(capacity, 4)];
        _removed = new Fr[Math.Max(capacity, 4)];
        _removedAt = new SmtPosition[_removed.Length];
    }

    /// <summary>The root the store must currently have (optimistic concurrency check).</summary>
    public Fr OldRoot { get; set; }

    /// <summary>The root after the batch; 0 for the empty tree.</summary>
    public Fr NewRoot { get; set; }

    /// <summary>Nodes to store, in the order they were produced (children before parents).</summary>
    public ReadOnlySpan<SmtNodeEntry> Added => _added.AsSpan(0, _addedCount);

    /// <summary>Hashes of nodes to delete (replaced or removed by the operation).</summary>
    public ReadOnlySpan<Fr> Removed => _removed.AsSpan(0, _removedCount);

    /// <summary>Where each node of <see cref="Removed"/> sat (same order; <see cref="SmtPosition.None"/> where not given).</summary>
    public ReadOnlySpan<SmtPosition> RemovedPositions => _removedAt.AsSpan(0, _removedCount);

    /// <summary>Leaves that stay but change level (see <see cref="SmtNodeMove"/>).</summary>
    public ReadOnlySpan<SmtNodeMove> Moved => _moved.AsSpan(0, _movedCount);

    /// <summary>Number of nodes to add.</summary>
    public int AddedCount => _addedCount;

    /// <summary>Number of hashes to delete.</summary>
    public int RemovedCount => _removedCount;

    /// <summary>True when the batch neither adds, deletes nor moves nodes.</summary>
    public bool IsEmpty => _addedCount == 0 && _removedCount == 0 && _movedCount == 0;

    /// <summary>Queues <paramref name="node"/> under <paramref name="hash"/> (which must be its hash), at <paramref name="position"/> if known.</summary>
    public void Add(in Fr hash, in SmtNode node, in SmtPosition position = default)
    {
        if (_addedCount == _added.Length) Array.Resize(ref _added, _added.Length * 2);
        _added[_addedCount++] = new SmtNodeEntry(hash, node, position);
    }

    /// <summary>
    /// Queues the deletion of the node stored under <paramref name="hash"/> (at <paramref name="position"/> if known);
    /// 0 (the empty subtree) is ignored.
    /// </summary>
    public void Remove(in Fr hash, in SmtPosition position = default)
    {
        if (hash.IsZero) return;
        if (_removedCount == _removed.Length)
        {
            Array.Resize(ref _removed, _removed.Length * 2);
            Array.Resize(ref _removedAt, _removed.Length);
        }
        _removedAt[_removedCount] = position;
        _removed[_removedCount++] = hash;
    }

    /// <summary>Queues the move of leaf <paramref name="node"/> (hash <paramref name="hash"/>) from <paramref name="from"/> to <paramref name="to"/>.</summary>
    public void Move(in Fr hash, in SmtNode node, in SmtPosition from, in SmtPosition to)
    {
        if (_movedCount == _moved.Length) Array.Resize(ref _moved, _moved.Length * 2);
        _moved[_movedCount++] = new SmtNodeMove(hash, node, from, to);
    }

    /// <summary>Empties the batch (keeping its buffers) and zeroes both roots.</summary>
    public void Clear()
    {
        // Entries are plain data (no references), so the stale tail needs no clearing for the GC.
        _addedCount = 0;
        _removedCount = 0;
        _movedCount = 0;
        OldRoot = Fr.Zero;
        NewRoot = Fr.Zero;
    }
}
