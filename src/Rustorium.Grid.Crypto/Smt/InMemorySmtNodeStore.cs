namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// An <see cref="ISmtNodeStore"/> in a hash map: for tests, tools and trees that are rebuilt at start-up.
/// Not thread-safe (like the tree that owns it).
/// </summary>
public sealed class InMemorySmtNodeStore : ISmtNodeStore
{
    private readonly Dictionary<Fr, SmtNode> _nodes;

    /// <summary>An empty store (root 0).</summary>
    public InMemorySmtNodeStore() : this(0) { }

    /// <summary>An empty store with room for <paramref name="capacity"/> nodes (a tree of n leaves has fewer than 2n + 254 nodes).</summary>
    public InMemorySmtNodeStore(int capacity)
    {
        // Fr's own hash code (HashCode.Combine, seeded per process) keeps the map resistant to keys ground to collide.
        _nodes = new Dictionary<Fr, SmtNode>(capacity);
    }

    /// <inheritdoc />
    public Fr Root { get; private set; }

    /// <summary>Number of stored nodes (leaves and middle nodes).</summary>
    public int NodeCount => _nodes.Count;

    /// <summary>Every stored node with its hash, in no particular order (to persist a tree built in memory).</summary>
    public IEnumerable<SmtNodeEntry> Nodes => _nodes.Select(pair => new SmtNodeEntry(pair.Key, pair.Value));

    /// <inheritdoc />
    public bool TryGetNode(in Fr hash, out SmtNode node) => _nodes.TryGetValue(hash, out node);

    /// <inheritdoc />
    public void Commit(SmtNodeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.OldRoot != Root)
            throw new SmtException(SmtErrorCode.Conflict,
                $"The store's root is {Root}, not {batch.OldRoot} as the batch expects: another writer changed the tree.");

        // Nothing below can fail half-way (no I/O), so applying in place is atomic.
        foreach (var hash in batch.Removed) _nodes.Remove(hash);
        // Presize only for bulk loads: EnsureCapacity grows to the exact size asked, so calling it on every small
        // commit would rehash the whole map again and again instead of doubling.
        if (batch.AddedCount > 4096) _nodes.EnsureCapacity(_nodes.Count + batch.AddedCount);
        foreach (ref readonly var entry in batch.Added) _nodes.TryAdd(entry.Hash, entry.Node);
        Root = batch.NewRoot;
    }
}
