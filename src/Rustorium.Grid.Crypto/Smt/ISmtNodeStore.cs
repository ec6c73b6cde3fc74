namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// Content-addressed storage of one sparse Merkle tree: every node is kept under its own hash
/// (<see cref="SmtNode.Hash"/>), plus the current root hash. A tree reopened over a persistent store
/// continues where it stopped without rehashing anything.
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

/// <summary>A node to add to a store, under its hash.</summary>
/// <param name="Hash">The node's hash (<see cref="SmtNode.Hash"/>), already computed.</param>
/// <param name="Node">The node.</param>
public readonly record struct SmtNodeEntry(Fr Hash, SmtNode Node);

/// <summary>
/// The changes of one tree operation, applied by <see cref="ISmtNodeStore.Commit"/> in one step:
/// nodes to add (with their hashes, so the store never hashes), hashes to delete, and the root move
/// <see cref="OldRoot"/> → <see cref="NewRoot"/>.
/// </summary>
/// <remarks>
/// Reusable: <see cref="Clear"/> keeps the buffers, so a tree commits without allocating once the
/// buffers have grown to its path length. Exposed as spans so a disk store can bind them to one bulk
/// statement each (e.g. PostgreSQL <c>unnest</c> arrays, or SQLite prepared statements in one transaction).
/// </remarks>
public sealed class SmtNodeBatch
{
    private SmtNodeEntry[] _added;
    private Fr[] _removed;
    private int _addedCount;
    private int _removedCount;

    /// <summary>An empty batch.</summary>
    public SmtNodeBatch() : this(16) { }

    /// <summary>An empty batch with room for <paramref name="capacity"/> additions and removals before it grows.</summary>
    public SmtNodeBatch(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _added = new SmtNodeEntry[Math.Max(capacity, 4)];
        _removed = new Fr[Math.Max(capacity, 4)];
    }

    /// <summary>The root the store must currently have (optimistic concurrency check).</summary>
    public Fr OldRoot { get; set; }

    /// <summary>The root after the batch; 0 for the empty tree.</summary>
    public Fr NewRoot { get; set; }

    /// <summary>Nodes to store, in the order they were produced (children before parents).</summary>
    public ReadOnlySpan<SmtNodeEntry> Added => _added.AsSpan(0, _addedCount);

    /// <summary>Hashes of nodes to delete (replaced or removed by the operation).</summary>
    public ReadOnlySpan<Fr> Removed => _removed.AsSpan(0, _removedCount);

    /// <summary>Number of nodes to add.</summary>
    public int AddedCount => _addedCount;

    /// <summary>Number of hashes to delete.</summary>
    public int RemovedCount => _removedCount;

    /// <summary>True when the batch neither adds nor deletes nodes.</summary>
    public bool IsEmpty => _addedCount == 0 && _removedCount == 0;

    /// <summary>Queues <paramref name="node"/> under <paramref name="hash"/> (which must be its hash).</summary>
    public void Add(in Fr hash, in SmtNode node)
    {
        if (_addedCount == _added.Length) Array.Resize(ref _added, _added.Length * 2);
        _added[_addedCount++] = new SmtNodeEntry(hash, node);
    }

    /// <summary>Queues the deletion of the node stored under <paramref name="hash"/>; 0 (the empty subtree) is ignored.</summary>
    public void Remove(in Fr hash)
    {
        if (hash.IsZero) return;
        if (_removedCount == _removed.Length) Array.Resize(ref _removed, _removed.Length * 2);
        _removed[_removedCount++] = hash;
    }

    /// <summary>Empties the batch (keeping its buffers) and zeroes both roots.</summary>
    public void Clear()
    {
        // Entries are plain data (no references), so the stale tail needs no clearing for the GC.
        _addedCount = 0;
        _removedCount = 0;
        OldRoot = Fr.Zero;
        NewRoot = Fr.Zero;
    }
}
