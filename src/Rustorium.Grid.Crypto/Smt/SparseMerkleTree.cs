using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// The iden3 sparse Merkle tree over BN254 with Poseidon, bit-exact with circomlibjs 0.1.7
/// (<c>smt.js</c>): after any sequence of inserts, updates and deletes the <see cref="Root"/> equals
/// circomlibjs's root for the same sequence, and proofs verify with circomlib's <c>SMTVerifier</c>.
/// </summary>
/// <remarks>
/// <para><b>Shape.</b> Leaf = Poseidon(key, value, 1), middle node = Poseidon(left, right), empty
/// subtree = 0. Bit i of the key's canonical value (least significant first) picks the child at level i,
/// 1 = right. Each leaf sits at the shallowest level where its key's path prefix is unique among the
/// tree's keys, so the tree (and its root) is a function of the key/value set alone, whatever the order
/// of operations. Keys are below p &lt; 2^254, so leaves sit at most at level <see cref="MaxDepth"/>.</para>
/// <para><b>Cost.</b> A single operation reads one path and computes exactly the hashes circomlibjs
/// computes for the new path (one leaf hash plus one hash per level, plus the pushed-down levels when an
/// insert splits a leaf); it never rehashes the old path (its hashes are the addresses it walked) and
/// allocates nothing once its scratch buffers exist. <see cref="ApplyBatch"/> hashes each changed node once
/// for the whole batch.</para>
/// <para><b>Threading.</b> Not thread-safe: one writer (and no concurrent readers) per instance.</para>
/// <para><b>Failures.</b> Every operation validates before it commits; on <see cref="SmtException"/> the
/// tree and store are unchanged.</para>
/// </remarks>
public sealed partial class SparseMerkleTree
{
    /// <summary>
    /// The deepest level a leaf can sit at, which is also the most siblings a proof can have: two keys
    /// below p &lt; 2^254 differ in some bit ≤ 253, and the middle node that splits them sits at that level.
    /// </summary>
    public const int MaxDepth = 254;

    private readonly ISmtNodeStore _store;
    private readonly ISmtPositionedNodeStore? _positioned;
    private readonly SmtNodeBatch _batch = new(64);

    // The last walk: _path[i] is the middle node at level i, _siblings[i] the other child there.
    private readonly Fr[] _path = new Fr[MaxDepth + 1];
    private readonly Fr[] _siblings = new Fr[MaxDepth + 1];
    private int _depth;
    private bool _endIsLeaf;

    // Nodes read ahead for the batch being planned (see Preload); empty outside ApplyBatch(es).
    private readonly Dictionary<Fr, SmtNode> _preloaded = new();
    private Fr _leafHash, _leafKey, _leafValue;

    /// <summary>A tree over <paramref name="store"/>, continuing from the store's current root.</summary>
    public SparseMerkleTree(ISmtNodeStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _positioned = store as ISmtPositionedNodeStore;
    }

    /// <summary>An empty tree in a new <see cref="InMemorySmtNodeStore"/>.</summary>
    public SparseMerkleTree() : this(new InMemorySmtNodeStore()) { }

    /// <summary>The store holding the nodes.</summary>
    public ISmtNodeStore Store => _store;

    /// <summary>The root hash; 0 for the empty tree.</summary>
    public Fr Root => _store.Root;

    // ------------------------------------------------------------------ reads

    /// <summary>Looks up <paramref name="key"/>.</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.CorruptStore"/> if a node on the path is missing.</exception>
    public bool TryGet(Fr key, out Fr value)
    {
        var bits = KeyBits.Of(key);
        if (Walk(in bits) && _leafKey == key)
        {
            value = _leafValue;
            return true;
        }
        value = Fr.Zero;
        return false;
    }

    /// <summary>True if <paramref name="key"/> is in the tree.</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.CorruptStore"/> if a node on the path is missing.</exception>
    public bool Contains(Fr key) => TryGet(key, out _);

    /// <summary>
    /// A proof about <paramref name="key"/> against the current <see cref="Root"/>: of inclusion (with its
    /// value) if the key is present, of non-inclusion otherwise — either the key's path ends in an empty
    /// branch (<see cref="SmtProof.IsOld0"/>) or in another key's leaf (<see cref="SmtProof.OldKey"/>).
    /// </summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.CorruptStore"/> if the path is inconsistent.</exception>
    public SmtProof Prove(Fr key)
    {
        var bits = KeyBits.Of(key);
        bool leaf = Walk(in bits);
        int depth = _depth;
        // circomlibjs trims trailing zero siblings; a canonical tree never has them at the end of a path.
        while (depth > 0 && _siblings[depth - 1].IsZero) depth--;
        var siblings = _siblings.AsSpan(0, depth);
        var root = _store.Root;

        if (!leaf) return new SmtProof(root, key, false, Fr.Zero, siblings, isOld0: true, Fr.Zero, Fr.Zero);
        if (_leafKey == key) return new SmtProof(root, key, true, _leafValue, siblings, isOld0: false, Fr.Zero, Fr.Zero);
        CheckLeafOnPath(in bits, _depth);
        return new SmtProof(root, key, false, Fr.Zero, siblings, isOld0: false, _leafKey, _leafValue);
    }

    /// <summary>
    /// Every node reachable from the root with its hash and position, parents before children (depth first, left before
    /// right), read through the store as the enumeration goes: to copy a tree into a store keyed by position, or to check
    /// one. Do not change the tree while enumerating.
    /// </summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.CorruptStore"/> if a node is missing or a middle node sits too deep.</exception>
    public IEnumerable<SmtNodeEntry> EnumerateNodes()
    {
        var root = _store.Root;
        if (root.IsZero) yield break;
        var stack = new Stack<(Fr Hash, SmtPosition At)>();
        stack.Push((root, SmtPosition.Root));
        while (stack.Count > 0)
        {
            var (hash, at) = stack.Pop();
            var node = Load(in hash, in at);
            if (node.IsLeaf && SmtPosition.Of(node.A, at.Level) != at)
                throw SmtException.Corrupt($"Leaf of key {node.A} sits at {at}, which is not on its key's path.");
            yield return new SmtNodeEntry(hash, node, at);
            if (!node.IsMiddle) continue;
            if (at.Level >= MaxDepth)
                throw SmtException.Corrupt($"Middle node {hash} at level {at.Level}: no two keys below p can share {MaxDepth} path bits.");
            if (!node.B.IsZero) stack.Push((node.B, at.Child(true)));
            if (!node.A.IsZero) stack.Push((node.A, at.Child(false)));
        }
    }

    // ------------------------------------------------------------------ single operations

    /// <summary>Adds <paramref name="key"/> = <paramref name="value"/> (circomlibjs <c>insert</c>).</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.KeyExists"/> if the key is present;
    /// <see cref="SmtErrorCode.CorruptStore"/>; <see cref="SmtErrorCode.Conflict"/> from the store.</exception>
    public void Insert(Fr key, Fr value)
    {
        var bits = KeyBits.Of(key);
        if (Walk(in bits) && _leafKey == key) throw SmtException.KeyExists(key);
        InsertAfterWalk(in bits, in key, in value);
    }

    /// <summary>Changes the value of <paramref name="key"/> (circomlibjs <c>update</c>). Setting the value it already has changes nothing.</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.KeyNotFound"/> if the key is absent;
    /// <see cref="SmtErrorCode.CorruptStore"/>; <see cref="SmtErrorCode.Conflict"/> from the store.</exception>
    public void Update(Fr key, Fr value)
    {
        var bits = KeyBits.Of(key);
        if (!Walk(in bits) || _leafKey != key) throw SmtException.KeyNotFound(key, "update");
        UpdateAfterWalk(in bits, in key, in value);
    }

    /// <summary>Inserts <paramref name="key"/> = <paramref name="value"/>, or updates it if present.</summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.CorruptStore"/>; <see cref="SmtErrorCode.Conflict"/> from the store.</exception>
    public void Upsert(Fr key, Fr value)
    {
        var bits = KeyBits.Of(key);
        if (Walk(in bits) && _leafKey == key) UpdateAfterWalk(in bits, in key, in value);
        else InsertAfterWalk(in bits, in key, in value);
    }

    /// <summary>
    /// Removes <paramref name="key"/> (circomlibjs <c>delete</c>): if its sibling is a leaf, that leaf moves
    /// up to the shallowest level where it has a non-empty sibling (or becomes the root).
    /// </summary>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.KeyNotFound"/> if the key is absent;
    /// <see cref="SmtErrorCode.CorruptStore"/>; <see cref="SmtErrorCode.Conflict"/> from the store.</exception>
    public void Delete(Fr key)
    {
        var bits = KeyBits.Of(key);
        if (!Walk(in bits) || _leafKey != key) throw SmtException.KeyNotFound(key, "delete");

        var batch = BeginBatch();
        int d = _depth;
        batch.Remove(_leafHash, SmtPosition.Of(in bits, d));
        Fr h = Fr.Zero;
        int level = d - 1;
        if (d > 0)
        {
            var sibling = _siblings[d - 1];
            if (sibling.IsZero)
                throw SmtException.Corrupt($"Key {key}'s leaf at level {d} has an empty sibling; such a leaf should have moved up.");
            var siblingAt = SmtPosition.Of(in bits, d - 1).Child(!bits.Bit(d - 1));
            var siblingNode = Load(in sibling, in siblingAt);
            if (siblingNode.IsLeaf)
            {
                // The sibling leaf rises while the level above it has nothing else (circomlibjs: !mixed).
                h = sibling;
                batch.Remove(_path[level], SmtPosition.Of(in bits, level));
                level--;
                while (level >= 0 && _siblings[level].IsZero)
                {
                    batch.Remove(_path[level], SmtPosition.Of(in bits, level));
                    level--;
                }
                batch.Move(sibling, siblingNode, siblingAt, SmtPosition.Of(in bits, level + 1));
            }
        }
        for (; level >= 0; level--)
        {
            h = HashMiddle(batch, in bits, level, in h, in _siblings[level]);
            batch.Remove(_path[level], SmtPosition.Of(in bits, level));
        }
        Commit(batch, in h);
    }

    private void InsertAfterWalk(in KeyBits bits, in Fr key, in Fr value)
    {
        var batch = BeginBatch();
        int d = _depth;
        Fr h;
        if (_endIsLeaf)
        {
            // Another key's leaf holds the slot: push both down to the first bit where the keys differ.
            int split = CheckLeafOnPath(in bits, d);
            var splitAt = SmtPosition.Of(in bits, split);
            h = HashLeaf(batch, in key, in value, splitAt.Child(bits.Bit(split)));
            batch.Move(_leafHash, SmtNode.Leaf(_leafKey, _leafValue), SmtPosition.Of(in bits, d), splitAt.Child(!bits.Bit(split)));
            var node = bits.Bit(split) ? SmtNode.Middle(_leafHash, h) : SmtNode.Middle(h, _leafHash);
            h = node.Hash();
            batch.Add(h, node, splitAt);
            for (int level = split - 1; level >= d; level--) h = HashMiddle(batch, in bits, level, in h, Fr.Zero);
        }
        else
        {
            h = HashLeaf(batch, in key, in value, SmtPosition.Of(in bits, d));
        }
        for (int level = d - 1; level >= 0; level--)
        {
            h = HashMiddle(batch, in bits, level, in h, in _siblings[level]);
            batch.Remove(_path[level], SmtPosition.Of(in bits, level));
        }
        Commit(batch, in h);
    }

    private void UpdateAfterWalk(in KeyBits bits, in Fr key, in Fr value)
    {
        if (_leafValue == value) return; // same leaf, same root: nothing to hash or store
        var batch = BeginBatch();
        var leafAt = SmtPosition.Of(in bits, _depth);
        batch.Remove(_leafHash, leafAt);
        var h = HashLeaf(batch, in key, in value, leafAt);
        for (int level = _depth - 1; level >= 0; level--)
        {
            h = HashMiddle(batch, in bits, level, in h, in _siblings[level]);
            batch.Remove(_path[level], SmtPosition.Of(in bits, level));
        }
        Commit(batch, in h);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>
    /// Follows <paramref name="bits"/> from the root, filling <see cref="_path"/>/<see cref="_siblings"/>
    /// up to <see cref="_depth"/>. Returns true if the path ends at a leaf (then in <see cref="_leafKey"/>…),
    /// false if it ends in an empty branch.
    /// </summary>
    private bool Walk(in KeyBits bits)
    {
        var h = _store.Root;
        int level = 0;
        while (!h.IsZero)
        {
            var node = Load(in h, SmtPosition.Of(in bits, level));
            if (node.IsLeaf)
            {
                _depth = level;
                _endIsLeaf = true;
                _leafHash = h;
                _leafKey = node.A;
                _leafValue = node.B;
                return true;
            }
            if (level >= MaxDepth)
                throw SmtException.Corrupt($"Middle node {h} at level {level}: no two keys below p can share {MaxDepth} path bits.");
            _path[level] = h;
            if (bits.Bit(level))
            {
                _siblings[level] = node.A;
                h = node.B;
            }
            else
            {
                _siblings[level] = node.B;
                h = node.A;
            }
            level++;
        }
        _depth = level;
        _endIsLeaf = false;
        return false;
    }

    /// <summary>
    /// Checks that the leaf found at <paramref name="depth"/> belongs there (its key shares the walked
    /// path bits) and returns the first level where its key and the walked key diverge.
    /// </summary>
    private int CheckLeafOnPath(in KeyBits bits, int depth)
    {
        int split = bits.FirstDifference(KeyBits.Of(_leafKey));
        if (split < depth)
            throw SmtException.Corrupt($"Leaf of key {_leafKey} sits at level {depth} on a path its key does not follow (bit {split} differs).");
        return split;
    }

    /// <summary>The node <paramref name="hash"/>, expected at <paramref name="position"/> (where a positioned store looks).</summary>
    private SmtNode Load(in Fr hash, in SmtPosition position)
    {
        if (_preloaded.Count == 0 || !_preloaded.TryGetValue(hash, out var node))
        {
            bool found = _positioned is not null ? _positioned.TryGetNodeAt(hash, position, out node) : _store.TryGetNode(hash, out node);
            if (!found) throw SmtException.MissingNode(hash, position.Level);
        }
        if (node.Kind is not (SmtNodeKind.Middle or SmtNodeKind.Leaf))
            throw SmtException.Corrupt($"The node store returned a node of unknown kind {(byte)node.Kind} for {hash}.");
        return node;
    }

    private SmtNodeBatch BeginBatch()
    {
        _batch.Clear();
        _batch.OldRoot = _store.Root;
        return _batch;
    }

    private void Commit(SmtNodeBatch batch, in Fr newRoot)
    {
        batch.NewRoot = newRoot;
        try
        {
            _store.Commit(batch);
        }
        finally
        {
            batch.Clear();
        }
    }

    private static Fr HashLeaf(SmtNodeBatch batch, in Fr key, in Fr value, in SmtPosition position)
    {
        var node = SmtNode.Leaf(key, value);
        var h = PoseidonHash.Hash(key, value, Fr.One);
        batch.Add(h, node, position);
        return h;
    }

    /// <summary>Hashes the middle node at <paramref name="level"/> on the path of <paramref name="bits"/> with <paramref name="child"/> on the key's side.</summary>
    private static Fr HashMiddle(SmtNodeBatch batch, in KeyBits bits, int level, in Fr child, in Fr sibling)
    {
        var node = bits.Bit(level) ? SmtNode.Middle(sibling, child) : SmtNode.Middle(child, sibling);
        var h = PoseidonHash.Hash(node.A, node.B);
        batch.Add(h, node, SmtPosition.Of(in bits, level));
        return h;
    }
}
