using System.Buffers;
using System.Runtime.InteropServices;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Crypto.Smt;

public sealed partial class SparseMerkleTree
{
    /// <summary>
    /// Applies many changes at once, hashing each new node exactly once: the result equals applying the
    /// changes one by one (in any order), but a node touched by several changes is hashed once, not once per
    /// change, and nothing is rehashed on the way.
    /// </summary>
    /// <remarks>
    /// <para>Two phases. <b>Plan:</b> the changes are sorted in path order (key bits read from bit 0 up) and
    /// split by key bit level by level down the existing tree; below each existing leaf or empty branch the
    /// new subtree is laid out from the merged key set; middle nodes that end with one leaf and an empty
    /// side collapse upward. All validation happens here, before any hashing. <b>Hash:</b> the planned new
    /// nodes are hashed bottom-up in rounds of independent hashes (eight at a time through
    /// <see cref="PoseidonHash.HashMany"/> where the CPU has AVX-512) and committed to the store in one
    /// <see cref="SmtNodeBatch"/>.</para>
    /// <para>Atomic: if any change is invalid nothing is committed and the tree is unchanged. Errors, in
    /// order of precedence: a key repeated in the batch (<see cref="SmtErrorCode.DuplicateKeyInBatch"/>),
    /// then the first invalid change met in path order (<see cref="SmtErrorCode.KeyExists"/> for an insert
    /// of a present key, <see cref="SmtErrorCode.KeyNotFound"/> for an update or delete of an absent one).</para>
    /// </remarks>
    /// <exception cref="ArgumentException">A change has an undefined <see cref="SmtOp"/>.</exception>
    /// <exception cref="SmtException">An invalid change (see remarks), <see cref="SmtErrorCode.CorruptStore"/>,
    /// or <see cref="SmtErrorCode.Conflict"/> from the store.</exception>
    public void ApplyBatch(ReadOnlySpan<SmtChange> changes)
    {
        if (changes.IsEmpty)
        {
            _preloaded.Clear();
            return;
        }
        var items = SortedItems(changes);

        var batch = BeginBatch();
        BatchPlanner? planner = null;
        try
        {
            var oldRoot = batch.OldRoot;
            Preload(in oldRoot, items);
            planner = new BatchPlanner(this, batch, items.Length);
            int rootRef = planner.Plan(oldRoot, 0, items);
            planner.Prepare(rootRef);
            HashRounds([planner]);
            var newRoot = planner.Finish(rootRef);
            if (batch.IsEmpty && newRoot == oldRoot) return; // only same-value updates
            Commit(batch, in newRoot);
        }
        finally
        {
            planner?.Release();
            batch.Clear();
            _preloaded.Clear();
        }
    }

    /// <summary>
    /// Looks up many keys at once: <paramref name="found"/>[i] and <paramref name="values"/>[i] are what
    /// <see cref="TryGet"/> gives for <paramref name="keys"/>[i]. Over a store that reads in bulk
    /// (<see cref="ISmtBulkNodeReader"/>) the paths are read a level per call, and the nodes read stay at hand for an
    /// <see cref="ApplyBatch"/> of the same keys that follows (which then reads nothing more for them).
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    /// <exception cref="SmtException"><see cref="SmtErrorCode.CorruptStore"/> if a node on a path is missing.</exception>
    public void GetMany(ReadOnlySpan<Fr> keys, Span<Fr> values, Span<bool> found)
    {
        if (values.Length != keys.Length || found.Length != keys.Length)
            throw new ArgumentException($"{keys.Length} keys need as many value and found slots; got {values.Length} and {found.Length}.", nameof(values));
        _preloaded.Clear();
        if ((_store is ISmtBulkNodeReader || _positioned is not null) && keys.Length > 1)
        {
            var items = new BatchItem[keys.Length];
            for (int i = 0; i < keys.Length; i++) items[i] = new BatchItem(SmtChange.Upsert(keys[i], Fr.Zero), KeyBits.Of(keys[i]));
            items.AsSpan().Sort(static (a, b) => KeyBits.ComparePathOrder(a.Bits, b.Bits));
            Preload(_store.Root, items);
        }
        for (int i = 0; i < keys.Length; i++) found[i] = TryGet(keys[i], out values[i]);
    }

    /// <summary>
    /// Reads ahead, one tree level per <see cref="ISmtBulkNodeReader.GetNodes"/> call, every stored node the plan of
    /// <paramref name="items"/> (path order) will walk from <paramref name="root"/>; nothing if the store cannot read in
    /// bulk. Nodes already at hand (from <see cref="GetMany"/>) are not read again. Planning then finds them in
    /// <see cref="_preloaded"/>; a node the store lacks is left for planning to report. Nodes are content-addressed, so
    /// one read ahead stays right for as long as it is kept: the batch clears them when it ends.
    /// </summary>
    private void Preload(in Fr root, ReadOnlySpan<BatchItem> items)
    {
        var bulk = _store as ISmtBulkNodeReader;
        if ((bulk is null && _positioned is null) || root.IsZero) return;
        var frontier = new List<(Fr Hash, int Start, int End)> { (root, 0, items.Length) };
        var next = new List<(Fr Hash, int Start, int End)>();
        var hashes = new List<Fr>();
        var positions = new List<SmtPosition>();
        var nodes = Array.Empty<SmtNode>();
        var found = Array.Empty<bool>();
        for (int level = 0; frontier.Count > 0 && level <= MaxDepth; level++)
        {
            hashes.Clear();
            positions.Clear();
            foreach (var (hash, start, _) in frontier)
            {
                if (_preloaded.ContainsKey(hash)) continue;
                hashes.Add(hash);
                if (_positioned is not null) positions.Add(SmtPosition.Of(items[start].Bits, level));
            }
            if (hashes.Count > 0)
            {
                if (nodes.Length < hashes.Count)
                {
                    nodes = new SmtNode[Math.Max(hashes.Count, 2 * nodes.Length)];
                    found = new bool[nodes.Length];
                }
                if (_positioned is not null)
                    _positioned.GetNodesAt(CollectionsMarshal.AsSpan(hashes), CollectionsMarshal.AsSpan(positions), nodes.AsSpan(0, hashes.Count), found.AsSpan(0, hashes.Count));
                else
                    bulk!.GetNodes(CollectionsMarshal.AsSpan(hashes), nodes.AsSpan(0, hashes.Count), found.AsSpan(0, hashes.Count));
                for (int i = 0; i < hashes.Count; i++)
                    if (found[i]) _preloaded[hashes[i]] = nodes[i];
            }
            next.Clear();
            foreach (var (hash, start, end) in frontier)
            {
                if (!_preloaded.TryGetValue(hash, out var node) || !node.IsMiddle) continue;
                int split = start + SplitByBit(items[start..end], level);
                if (split > start && !node.A.IsZero) next.Add((node.A, start, split));
                if (split < end && !node.B.IsZero) next.Add((node.B, split, end));
            }
            (frontier, next) = (next, frontier);
        }
    }

    /// <summary>How many of <paramref name="items"/> (path order within one subtree) take the left child at <paramref name="level"/>.</summary>
    private static int SplitByBit(ReadOnlySpan<BatchItem> items, int level)
    {
        int lo = 0, hi = items.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (items[mid].Bits.Bit(level)) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    /// <summary>The changes with their key bits, in path order; refuses undefined operations and repeated keys.</summary>
    private static BatchItem[] SortedItems(ReadOnlySpan<SmtChange> changes)
    {
        var items = new BatchItem[changes.Length];
        for (int i = 0; i < changes.Length; i++)
        {
            var c = changes[i];
            if (c.Op is not (SmtOp.Insert or SmtOp.Update or SmtOp.Delete or SmtOp.Upsert))
                throw new ArgumentException($"Change {i} (key {c.Key}) has undefined operation {(byte)c.Op}.", nameof(changes));
            items[i] = new BatchItem(c, KeyBits.Of(c.Key));
        }
        items.AsSpan().Sort(static (a, b) => KeyBits.ComparePathOrder(a.Bits, b.Bits));
        for (int i = 1; i < items.Length; i++)
        {
            if (KeyBits.ComparePathOrder(items[i - 1].Bits, items[i].Bits) == 0) throw SmtException.DuplicateKey(items[i].Change.Key);
        }
        return items;
    }

    /// <summary>
    /// Applies one batch of changes to each of several distinct trees, as <see cref="ApplyBatch"/> would to each, but hashes
    /// the new nodes of all of them together: round by round (the new leaves, then the middle nodes by height), every
    /// tree's hashes of that round go through one <see cref="PoseidonHash.HashMany"/> call, so small batches of many trees
    /// fill the eight AVX-512 lanes that each alone would leave mostly empty.
    /// </summary>
    /// <param name="trees">The trees; each at most once.</param>
    /// <param name="changes">The changes of each tree (same order; may be empty).</param>
    /// <returns>
    /// Per tree, null if its batch was applied, or the exception <see cref="ApplyBatch"/> would have thrown for it (an invalid
    /// change, a corrupt or conflicting store). Each tree's batch is atomic on its own; one tree's failure does not affect
    /// the others.
    /// </returns>
    /// <exception cref="ArgumentException">The lists differ in length, or a tree appears twice.</exception>
    public static Exception?[] ApplyBatches(IReadOnlyList<SparseMerkleTree> trees, IReadOnlyList<SmtChange[]> changes)
    {
        ArgumentNullException.ThrowIfNull(trees);
        ArgumentNullException.ThrowIfNull(changes);
        if (trees.Count != changes.Count) throw new ArgumentException($"{trees.Count} trees but {changes.Count} change lists.", nameof(changes));
        if (trees.Distinct(ReferenceEqualityComparer.Instance).Count() != trees.Count) throw new ArgumentException("A tree appears twice.", nameof(trees));

        int k = trees.Count;
        var errors = new Exception?[k];
        var planners = new BatchPlanner?[k];
        var roots = new int[k];
        for (int t = 0; t < k; t++)
        {
            var tree = trees[t];
            if (changes[t] is not { Length: > 0 } list)
            {
                tree._preloaded.Clear();
                continue;
            }
            BatchPlanner? planning = null;
            try
            {
                var items = SortedItems(list);
                var batch = tree.BeginBatch();
                tree.Preload(batch.OldRoot, items);
                planning = new BatchPlanner(tree, batch, items.Length);
                roots[t] = planning.Plan(batch.OldRoot, 0, items);
                planning.Prepare(roots[t]);
                planners[t] = planning;
            }
            catch (Exception e)
            {
                // Planning reads the tree's store, which may fail (I/O) as well as refuse a change: this tree only.
                planning?.Release();
                errors[t] = e;
                tree._batch.Clear();
            }
            finally
            {
                tree._preloaded.Clear();
            }
        }

        HashRounds(planners);

        for (int t = 0; t < k; t++)
        {
            var planner = planners[t];
            if (planner is null) continue;
            var tree = trees[t];
            var batch = tree._batch;
            try
            {
                var newRoot = planner.Finish(roots[t]);
                if (batch.IsEmpty && newRoot == batch.OldRoot) continue; // only same-value updates
                tree.Commit(batch, in newRoot);
            }
            catch (Exception e)
            {
                errors[t] = e;
            }
            finally
            {
                planner.Release();
                batch.Clear();
            }
        }
        return errors;
    }

    /// <summary>
    /// Hashes the prepared plans of <paramref name="planners"/> (nulls skipped) in shared rounds: every plan's new leaves,
    /// then every plan's middle nodes of each height, each round one <see cref="PoseidonHash.HashMany"/> call.
    /// </summary>
    private static void HashRounds(IReadOnlyList<BatchPlanner?> planners)
    {
        int maxHeight = -1, leafTotal = 0;
        foreach (var planner in planners)
        {
            if (planner is null) continue;
            maxHeight = Math.Max(maxHeight, planner.MaxHeight);
            leafTotal += planner.LeafCount;
        }
        int widest = leafTotal;
        for (int h = 0; h <= maxHeight; h++)
        {
            int sum = 0;
            foreach (var planner in planners) sum += planner?.RoundCount(h) ?? 0;
            widest = Math.Max(widest, sum);
        }
        var inputs = new Fr[3 * Math.Max(1, widest)];
        var outputs = new Fr[Math.Max(1, widest)];
        if (leafTotal > 0)
        {
            int at = 0;
            foreach (var planner in planners) if (planner is not null) at += planner.WriteLeafInputs(inputs.AsSpan(3 * at));
            PoseidonHash.HashMany(inputs.AsSpan(0, 3 * at), 3, outputs.AsSpan(0, at));
            at = 0;
            foreach (var planner in planners)
            {
                if (planner is null) continue;
                planner.ReadLeafOutputs(outputs.AsSpan(at, planner.LeafCount));
                at += planner.LeafCount;
            }
        }
        for (int h = 0; h <= maxHeight; h++)
        {
            int at = 0;
            foreach (var planner in planners) if (planner is not null) at += planner.WriteRoundInputs(h, inputs.AsSpan(2 * at));
            if (at == 0) continue;
            PoseidonHash.HashMany(inputs.AsSpan(0, 2 * at), 2, outputs.AsSpan(0, at));
            at = 0;
            foreach (var planner in planners)
            {
                if (planner is null) continue;
                int n = planner.RoundCount(h);
                planner.ReadRoundOutputs(h, outputs.AsSpan(at, n));
                at += n;
            }
        }
    }

    private readonly record struct BatchItem(SmtChange Change, KeyBits Bits);

    /// <summary>A leaf of a subtree being laid out: its key's bits and its planned node.</summary>
    private readonly record struct LeafEntry(KeyBits Bits, int Ref);

    private enum PendingKind : byte
    {
        /// <summary>A stored node of unknown kind (loaded only if a collapse needs to know).</summary>
        Existing,
        ExistingLeaf,
        ExistingMiddle,
        NewLeaf,
        NewMiddle,
    }

    /// <summary>
    /// A node of the planned tree: existing (A = its hash, Pos = where it is stored, Node = the leaf once known), a new leaf
    /// (A = key, B = value) or a new middle node (Left/Right refs). New nodes get their positions when the plan is finished.
    /// </summary>
    private struct Pending
    {
        public PendingKind Kind;
        public Fr A, B;
        public int Left, Right;
        public SmtPosition Pos;
        public SmtNode Node;
    }

    /// <summary>Plans and hashes one batch. Node references are indexes into <see cref="_pending"/>; <see cref="Empty"/> is the empty subtree.</summary>
    private sealed class BatchPlanner
    {
        public const int Empty = -1;

        private readonly SparseMerkleTree _tree;
        private readonly SmtNodeBatch _batch;
        private Pending[] _pending;
        private int _count;
        private readonly LeafEntry[] _leaves;

        public BatchPlanner(SparseMerkleTree tree, SmtNodeBatch batch, int changes)
        {
            _tree = tree;
            _batch = batch;
            // Rented: a fold of thousands of keys plans hundreds of thousands of entries (~200 B each), and allocating them
            // anew for every batch put megabytes a fold on the large-object heap (a quarter of a silo's allocations).
            _pending = ArrayPool<Pending>.Shared.Rent(Math.Max(16, 2 * changes + 2 * MaxDepth));
            // One subtree is laid out at a time, from at most all changes plus one existing leaf.
            _leaves = new LeafEntry[changes + 1];
        }

        // -------------------------------------------------------------- phase 1: plan

        /// <summary>The planned replacement of the subtree <paramref name="hash"/> at <paramref name="level"/> after <paramref name="items"/> (non-empty, one subtree's keys, path order).</summary>
        public int Plan(Fr hash, int level, Span<BatchItem> items)
        {
            if (hash.IsZero) return PlanAtEmpty(level, items);
            var at = SmtPosition.Of(items[0].Bits, level);
            var node = _tree.Load(in hash, in at);
            if (node.IsLeaf) return PlanAtLeaf(in hash, in node, in at, items);
            if (level >= MaxDepth)
                throw SmtException.Corrupt($"Middle node {hash} at level {level}: no two keys below p can share {MaxDepth} path bits.");

            int split = SplitByBit(items, level);
            int left = split == 0 ? Existing(node.A, at.Child(false)) : Plan(node.A, level + 1, items[..split]);
            int right = split == items.Length ? Existing(node.B, at.Child(true)) : Plan(node.B, level + 1, items[split..]);

            if (IsUnchanged(left, node.A) && IsUnchanged(right, node.B)) return AddExisting(PendingKind.ExistingMiddle, hash, at);

            _batch.Remove(hash, at);
            if (left == Empty && right == Empty) return Empty;
            if (left == Empty && IsLeaf(right)) return right;   // the lone leaf moves up
            if (right == Empty && IsLeaf(left)) return left;
            return AddMiddle(left, right);
        }

        private int PlanAtEmpty(int level, Span<BatchItem> items)
        {
            for (int i = 0; i < items.Length; i++)
            {
                var c = items[i].Change;
                if (c.Op is SmtOp.Update or SmtOp.Delete) throw SmtException.KeyNotFound(c.Key, OpName(c.Op));
                _leaves[i] = new LeafEntry(items[i].Bits, Add(PendingKind.NewLeaf, c.Key, c.Value));
            }
            return Layout(level, _leaves.AsSpan(0, items.Length));
        }

        private int PlanAtLeaf(in Fr hash, in SmtNode node, in SmtPosition at, Span<BatchItem> items)
        {
            int level = at.Level;
            var oldKey = node.A;
            var oldBits = KeyBits.Of(oldKey);
            int diverge = oldBits.FirstDifference(items[0].Bits);
            if (diverge < level)
                throw SmtException.Corrupt($"Leaf of key {oldKey} sits at level {level} on a path its key does not follow (bit {diverge} differs).");

            // Where the existing leaf goes in path order: at its own change, or before the first larger key.
            int index = 0;
            bool matched = false;
            while (index < items.Length)
            {
                int cmp = KeyBits.ComparePathOrder(items[index].Bits, oldBits);
                if (cmp == 0) { matched = true; break; }
                if (cmp > 0) break;
                index++;
            }

            int n = 0;
            for (int i = 0; i < items.Length; i++)
            {
                if (i == index && !matched) _leaves[n++] = new LeafEntry(oldBits, AddExistingLeaf(in hash, in node, in at));
                var c = items[i].Change;
                if (matched && i == index)
                {
                    switch (c.Op)
                    {
                        case SmtOp.Insert:
                            throw SmtException.KeyExists(c.Key);
                        case SmtOp.Delete:
                            _batch.Remove(hash, at);
                            break;
                        default: // Update, Upsert
                            if (c.Value == node.B)
                            {
                                _leaves[n++] = new LeafEntry(oldBits, AddExistingLeaf(in hash, in node, in at));
                            }
                            else
                            {
                                _batch.Remove(hash, at);
                                _leaves[n++] = new LeafEntry(oldBits, Add(PendingKind.NewLeaf, c.Key, c.Value));
                            }
                            break;
                    }
                    continue;
                }
                if (c.Op is SmtOp.Update or SmtOp.Delete) throw SmtException.KeyNotFound(c.Key, OpName(c.Op));
                _leaves[n++] = new LeafEntry(items[i].Bits, Add(PendingKind.NewLeaf, c.Key, c.Value));
            }
            if (index == items.Length) _leaves[n++] = new LeafEntry(oldBits, AddExistingLeaf(in hash, in node, in at));
            return Layout(level, _leaves.AsSpan(0, n));
        }

        /// <summary>Lays out distinct leaves (path order) as a fresh canonical subtree rooted at <paramref name="level"/>.</summary>
        private int Layout(int level, Span<LeafEntry> leaves)
        {
            if (leaves.Length == 0) return Empty;
            if (leaves.Length == 1) return leaves[0].Ref;
            if (level >= MaxDepth) throw new InvalidOperationException("Distinct keys below p cannot share every path bit.");
            int split = Split(leaves, level);
            int left = Layout(level + 1, leaves[..split]);
            int right = Layout(level + 1, leaves[split..]);
            return AddMiddle(left, right);
        }

        // -------------------------------------------------------------- phase 2: hash

        // Hashing state between Prepare and Finish (several planners' rounds can then share HashMany calls).
        private int[] _height = [];
        private int[] _start = [];
        private int[] _order = [];
        private int[] _leafGroup = [];
        private Fr[] _hashes = [];
        private int _maxHeight = -1;

        /// <summary>The number of rounds of middle-node hashes (heights 0.._maxHeight), after <see cref="Prepare"/>.</summary>
        public int MaxHeight => _maxHeight;

        /// <summary>New leaves to hash, after <see cref="Prepare"/>.</summary>
        public int LeafCount => _leafGroup.Length;

        /// <summary>Middle nodes to hash at height <paramref name="h"/>, after <see cref="Prepare"/>.</summary>
        public int RoundCount(int h) => h > _maxHeight ? 0 : _start[h + 1] - _start[h];

        /// <summary>
        /// Orders the new nodes reachable from <paramref name="root"/> (children before parents) into rounds by height above
        /// the new leaves, so each round is a set of independent hashes of one arity.
        /// </summary>
        /// <remarks>
        /// Plan entries are created children first, so one forward pass computes heights and one backward pass finds the
        /// entries reachable from the root (a new node is always reachable; this makes it certain).
        /// </remarks>
        public void Prepare(int root)
        {
            int n = _count;
            var live = new bool[n];
            if (root != Empty) live[root] = true;
            for (int i = n - 1; i >= 0; i--)
            {
                ref readonly var p = ref _pending[i];
                if (!live[i] || p.Kind != PendingKind.NewMiddle) continue;
                if (p.Left != Empty) live[p.Left] = true;
                if (p.Right != Empty) live[p.Right] = true;
            }

            // Height: new leaf 0; new middle 1 + the highest new child (0 if it has none); others −1.
            var height = new int[n];
            int leaves = 0, maxHeight = -1;
            for (int i = 0; i < n; i++)
            {
                ref readonly var p = ref _pending[i];
                if (!live[i] || p.Kind < PendingKind.NewLeaf)
                {
                    height[i] = -1;
                }
                else if (p.Kind == PendingKind.NewLeaf)
                {
                    height[i] = 0;
                    leaves++;
                }
                else
                {
                    int h = 1 + Math.Max(HeightOf(height, p.Left), HeightOf(height, p.Right));
                    height[i] = h;
                    maxHeight = Math.Max(maxHeight, h);
                }
            }

            // Middle nodes grouped by height (counting sort), each group in creation order.
            var start = new int[maxHeight + 2];
            for (int i = 0; i < n; i++) if (height[i] >= 0 && _pending[i].Kind == PendingKind.NewMiddle) start[height[i] + 1]++;
            for (int h = 0; h <= maxHeight; h++) start[h + 1] += start[h];
            var order = new int[start[maxHeight + 1]];
            var fill = (int[])start.Clone();
            for (int i = 0; i < n; i++) if (height[i] >= 0 && _pending[i].Kind == PendingKind.NewMiddle) order[fill[height[i]]++] = i;

            var leafGroup = new int[leaves];
            for (int i = 0, g = 0; i < n; i++)
                if (height[i] == 0 && _pending[i].Kind == PendingKind.NewLeaf) leafGroup[g++] = i;

            _height = height;
            _start = start;
            _order = order;
            _leafGroup = leafGroup;
            _maxHeight = maxHeight;
            _hashes = new Fr[n];
        }

        /// <summary>Writes the new leaves' hash inputs (key, value, 1) into <paramref name="inputs"/>; returns how many leaves.</summary>
        public int WriteLeafInputs(Span<Fr> inputs)
        {
            for (int g = 0; g < _leafGroup.Length; g++)
            {
                ref readonly var p = ref _pending[_leafGroup[g]];
                inputs[3 * g] = p.A;
                inputs[3 * g + 1] = p.B;
                inputs[3 * g + 2] = Fr.One;
            }
            return _leafGroup.Length;
        }

        /// <summary>Takes the leaves' hashes, in the order of <see cref="WriteLeafInputs"/>.</summary>
        public void ReadLeafOutputs(ReadOnlySpan<Fr> outputs)
        {
            for (int g = 0; g < _leafGroup.Length; g++) _hashes[_leafGroup[g]] = outputs[g];
        }

        /// <summary>Writes the inputs (left, right) of the middle nodes at height <paramref name="h"/>; returns how many. Their children's rounds must have run.</summary>
        public int WriteRoundInputs(int h, Span<Fr> inputs)
        {
            if (h > _maxHeight) return 0;
            var group = _order.AsSpan(_start[h], _start[h + 1] - _start[h]);
            for (int j = 0; j < group.Length; j++)
            {
                ref readonly var p = ref _pending[group[j]];
                inputs[2 * j] = HashOf(_hashes, p.Left);
                inputs[2 * j + 1] = HashOf(_hashes, p.Right);
            }
            return group.Length;
        }

        /// <summary>Takes the hashes of the middle nodes at height <paramref name="h"/>, in the order of <see cref="WriteRoundInputs"/>.</summary>
        public void ReadRoundOutputs(int h, ReadOnlySpan<Fr> outputs)
        {
            if (h > _maxHeight) return;
            var group = _order.AsSpan(_start[h], _start[h + 1] - _start[h]);
            for (int j = 0; j < group.Length; j++) _hashes[group[j]] = outputs[j];
        }

        /// <summary>
        /// Adds every new node to the batch at its position, children before parents, and every stored leaf that changed
        /// level as a move; returns the new root hash (every round has run).
        /// </summary>
        public Fr Finish(int root)
        {
            if (root == Empty) return Fr.Zero;
            Emit(root, SmtPosition.Root);
            return HashOf(_hashes, root);
        }

        private void Emit(int r, in SmtPosition at)
        {
            if (r == Empty) return;
            ref readonly var p = ref _pending[r];
            switch (p.Kind)
            {
                case PendingKind.NewLeaf:
                    _batch.Add(_hashes[r], SmtNode.Leaf(p.A, p.B), at);
                    break;
                case PendingKind.NewMiddle:
                    Emit(p.Left, at.Child(false));
                    Emit(p.Right, at.Child(true));
                    _batch.Add(_hashes[r], SmtNode.Middle(HashOf(_hashes, p.Left), HashOf(_hashes, p.Right)), at);
                    break;
                case PendingKind.ExistingLeaf:
                    if (p.Pos != at) _batch.Move(p.A, p.Node, p.Pos, at);
                    break;
                default:
                    // Only leaves move: a middle node's hash fixes the shape below it, and so its level.
                    if (p.Pos != at) throw new InvalidOperationException($"Stored middle node {p.A} planned at {at}, but it is stored at {p.Pos}.");
                    break;
            }
        }

        private static int HeightOf(int[] height, int r) => r == Empty ? -1 : height[r];

        /// <summary>The hash of a planned node once its round has run: new nodes from <paramref name="hashes"/>, stored ones are their own hash.</summary>
        private Fr HashOf(Fr[] hashes, int r) =>
            r == Empty ? Fr.Zero : _pending[r].Kind >= PendingKind.NewLeaf ? hashes[r] : _pending[r].A;

        // -------------------------------------------------------------- helpers

        private int Existing(in Fr hash, in SmtPosition at) => hash.IsZero ? Empty : AddExisting(PendingKind.Existing, hash, at);

        private int AddExisting(PendingKind kind, in Fr hash, in SmtPosition at)
        {
            int r = Add(kind, hash, default);
            _pending[r].Pos = at;
            return r;
        }

        private int AddExistingLeaf(in Fr hash, in SmtNode node, in SmtPosition at)
        {
            int r = AddExisting(PendingKind.ExistingLeaf, hash, at);
            _pending[r].Node = node;
            return r;
        }

        private bool IsUnchanged(int r, in Fr oldHash) =>
            r == Empty ? oldHash.IsZero : _pending[r].Kind <= PendingKind.ExistingMiddle && _pending[r].A == oldHash;

        private bool IsLeaf(int r)
        {
            ref var p = ref _pending[r];
            if (p.Kind == PendingKind.Existing)
            {
                var node = _tree.Load(in p.A, in p.Pos);
                p.Kind = node.IsLeaf ? PendingKind.ExistingLeaf : PendingKind.ExistingMiddle;
                p.Node = node;
            }
            return p.Kind is PendingKind.ExistingLeaf or PendingKind.NewLeaf;
        }

        private int Add(PendingKind kind, in Fr a, in Fr b)
        {
            if (_count == _pending.Length) Grow();
            // The whole entry: a rented array holds whatever its last user left.
            _pending[_count] = new Pending { Kind = kind, A = a, B = b, Left = Empty, Right = Empty };
            return _count++;
        }

        private void Grow()
        {
            var bigger = ArrayPool<Pending>.Shared.Rent(_pending.Length * 2);
            _pending.AsSpan(0, _count).CopyTo(bigger);
            ArrayPool<Pending>.Shared.Return(_pending);
            _pending = bigger;
        }

        /// <summary>Gives the plan's entries back to the pool; the planner is unusable after.</summary>
        public void Release()
        {
            if (_pending.Length == 0) return;
            ArrayPool<Pending>.Shared.Return(_pending);
            _pending = [];
            _count = 0;
        }

        private int AddMiddle(int left, int right)
        {
            int r = Add(PendingKind.NewMiddle, default, default);
            _pending[r].Left = left;
            _pending[r].Right = right;
            return r;
        }

        /// <summary>Index of the first item whose key has bit <paramref name="level"/> set (items share all lower bits and are in path order).</summary>
        private static int Split(Span<LeafEntry> leaves, int level)
        {
            int lo = 0, hi = leaves.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (leaves[mid].Bits.Bit(level)) hi = mid; else lo = mid + 1;
            }
            return lo;
        }

        private static string OpName(SmtOp op) => op == SmtOp.Update ? "update" : "delete";
    }
}
