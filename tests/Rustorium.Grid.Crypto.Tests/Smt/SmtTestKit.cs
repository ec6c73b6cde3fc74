using System.Numerics;
using FsCheck;
using FsCheck.Fluent;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>Hashes, generators and store doubles shared by the SMT tests.</summary>
internal static class SmtTestKit
{
    public static Fr F(ulong x) => Fr.FromUInt64(x);

    public static Fr F(BigInteger x) => Fr.FromBigInteger(x);

    /// <summary>circomlibjs hash1: the leaf hash.</summary>
    public static Fr LeafHash(ulong key, ulong value) => PoseidonHash.Hash(F(key), F(value), Fr.One);

    /// <summary>circomlibjs hash0: the middle node hash.</summary>
    public static Fr Mid(in Fr left, in Fr right) => PoseidonHash.Hash(left, right);

    /// <summary>A tree holding exactly <paramref name="contents"/>, built in one batch from empty.</summary>
    public static SparseMerkleTree Build(IEnumerable<KeyValuePair<Fr, Fr>> contents, InMemorySmtNodeStore? store = null)
    {
        var tree = new SparseMerkleTree(store ?? new InMemorySmtNodeStore());
        tree.ApplyBatch(contents.Select(kv => SmtChange.Insert(kv.Key, kv.Value)).ToArray());
        return tree;
    }

    // ------------------------------------------------------------------ generators

    /// <summary>
    /// Keys from small spaces so that low path bits collide all the time: tiny integers, 12-bit values, and a
    /// few keys that share their low 20 bits (paths 20+ levels deep), and a family differing only in bits 30-31.
    /// </summary>
    public static readonly Gen<Fr> Key = Gen.Frequency(
        (5, Gen.Choose(0, 31).Select(i => F((ulong)i))),
        (4, Gen.Choose(0, 4095).Select(i => F((ulong)i))),
        (1, Gen.Choose(0, 15).Select(i => F(((ulong)i << 20) | 0x5A5A5))),
        (1, Gen.Choose(0, 3).Select(i => F(((ulong)i << 30) | 7))));

    /// <summary>Values: often tiny (so updates to the same value happen), sometimes anywhere in the field.</summary>
    public static readonly Gen<Fr> Value = Gen.Frequency(
        (3, Gen.Choose(0, 3).Select(i => F((ulong)i))),
        (1, Gen.ArrayOf(Gen.Choose(0, 255), 32).Select(b => F(new BigInteger(b.Select(x => (byte)x).ToArray(), isUnsigned: true) % Fr.Modulus))));

    public static readonly Gen<SmtOp> Op = Gen.Elements(SmtOp.Insert, SmtOp.Insert, SmtOp.Update, SmtOp.Delete, SmtOp.Upsert);

    public static readonly Gen<SmtChange> Change =
        Gen.Zip(Op, Gen.Zip(Key, Value)).Select(t => new SmtChange(t.Item1, t.Item2.Item1, t.Item2.Item2));

    /// <summary>Distinct key/value pairs, 0 to <paramref name="max"/> of them.</summary>
    public static Gen<KeyValuePair<Fr, Fr>[]> Contents(int max) =>
        Gen.Choose(0, max).SelectMany(n => Gen.ArrayOf(Gen.Zip(Key, Value), n)).Select(pairs =>
        {
            var d = new Dictionary<Fr, Fr>();
            foreach (var (k, v) in pairs) d[k] = v;
            return d.ToArray();
        });

    public static Gen<SmtChange[]> Changes(int max) => Gen.Choose(0, max).SelectMany(n => Gen.ArrayOf(Change, n));

    /// <summary>Turns arbitrary changes into ones that are valid one after another against <paramref name="model"/>
    /// (which it updates), with no key twice, so they are also a valid batch.</summary>
    public static SmtChange[] MakeValidBatch(IEnumerable<SmtChange> changes, Dictionary<Fr, Fr> model)
    {
        var seen = new HashSet<Fr>();
        var result = new List<SmtChange>();
        foreach (var c in changes)
        {
            if (!seen.Add(c.Key)) continue;
            bool present = model.ContainsKey(c.Key);
            var op = c.Op switch
            {
                SmtOp.Insert when present => SmtOp.Update,
                SmtOp.Update or SmtOp.Delete when !present => SmtOp.Insert,
                _ => c.Op,
            };
            var fixedChange = op == SmtOp.Delete ? SmtChange.Delete(c.Key) : new SmtChange(op, c.Key, c.Value);
            result.Add(fixedChange);
            if (op == SmtOp.Delete) model.Remove(c.Key); else model[c.Key] = c.Value;
        }
        return result.ToArray();
    }

    /// <summary>Applies one change the way a caller would, one operation at a time.</summary>
    public static void ApplyOne(SparseMerkleTree tree, SmtChange c)
    {
        switch (c.Op)
        {
            case SmtOp.Insert: tree.Insert(c.Key, c.Value); break;
            case SmtOp.Update: tree.Update(c.Key, c.Value); break;
            case SmtOp.Delete: tree.Delete(c.Key); break;
            case SmtOp.Upsert: tree.Upsert(c.Key, c.Value); break;
        }
    }

    public static Config Runs(int n) => Config.QuickThrowOnFailure.WithMaxTest(n);
}

/// <summary>Wraps a store and records every committed batch (counts), optionally hiding one node.</summary>
internal sealed class RecordingSmtNodeStore(InMemorySmtNodeStore inner) : ISmtNodeStore
{
    public List<(int Added, int Removed)> Commits { get; } = [];

    public Fr? Hidden { get; set; }

    public Fr Root => inner.Root;

    public bool TryGetNode(in Fr hash, out SmtNode node)
    {
        if (Hidden is { } h && h == hash)
        {
            node = default;
            return false;
        }
        return inner.TryGetNode(hash, out node);
    }

    public void Commit(SmtNodeBatch batch)
    {
        Commits.Add((batch.AddedCount, batch.RemovedCount));
        inner.Commit(batch);
    }
}

/// <summary>
/// A store keyed by position that checks every change against what it holds: a removal or a move must name the node
/// that is at that position, and an addition must land on a position that is empty by then. A tree that reported one
/// wrong position would fail here (or find a node missing when it reads).
/// </summary>
internal sealed class StrictPositionedSmtNodeStore : ISmtPositionedNodeStore
{
    private readonly Dictionary<SmtPosition, SmtNodeEntry> _at = new();

    public Fr Root { get; private set; }

    public int Reads { get; private set; }

    public int Moves { get; private set; }

    public IReadOnlyDictionary<SmtPosition, SmtNodeEntry> Nodes => _at;

    public bool TryGetNode(in Fr hash, out SmtNode node) =>
        throw new InvalidOperationException("A tree over a positioned store must read by position.");

    public bool TryGetNodeAt(in Fr hash, in SmtPosition position, out SmtNode node)
    {
        Reads++;
        if (_at.TryGetValue(position, out var entry) && entry.Hash == hash)
        {
            node = entry.Node;
            return true;
        }
        node = default;
        return false;
    }

    public void GetNodesAt(ReadOnlySpan<Fr> hashes, ReadOnlySpan<SmtPosition> positions, Span<SmtNode> nodes, Span<bool> found)
    {
        if (positions.Length != hashes.Length || nodes.Length != hashes.Length || found.Length != hashes.Length)
            throw new ArgumentException("The spans differ in length.");
        for (int i = 0; i < hashes.Length; i++) found[i] = TryGetNodeAt(hashes[i], positions[i], out nodes[i]);
    }

    public void Commit(SmtNodeBatch batch)
    {
        if (batch.OldRoot != Root) throw new SmtException(SmtErrorCode.Conflict, "root moved");
        var next = new Dictionary<SmtPosition, SmtNodeEntry>(_at);
        for (int i = 0; i < batch.RemovedCount; i++) Take(next, batch.Removed[i], batch.RemovedPositions[i], "removal");
        foreach (var move in batch.Moved)
        {
            Assert.True(move.Node.IsLeaf, $"Only leaves move; {move.Hash} is not one.");
            Assert.NotEqual(move.From, move.To);
            Take(next, move.Hash, move.From, "move");
        }
        foreach (var entry in batch.Added) Put(next, entry);
        foreach (var move in batch.Moved) Put(next, new SmtNodeEntry(move.Hash, move.Node, move.To));
        foreach (var key in next.Keys.ToList()) _at[key] = next[key];
        foreach (var key in _at.Keys.Where(k => !next.ContainsKey(k)).ToList()) _at.Remove(key);
        Moves += batch.Moved.Length;
        Root = batch.NewRoot;
    }

    private static void Take(Dictionary<SmtPosition, SmtNodeEntry> nodes, Fr hash, SmtPosition at, string what)
    {
        Assert.True(at.IsKnown, $"A {what} of {hash} came without a position.");
        Assert.True(nodes.TryGetValue(at, out var there), $"A {what} of {hash} names {at}, which is empty.");
        Assert.True(there.Hash == hash, $"A {what} of {hash} names {at}, which holds {there.Hash}.");
        nodes.Remove(at);
    }

    private static void Put(Dictionary<SmtPosition, SmtNodeEntry> nodes, SmtNodeEntry entry)
    {
        Assert.True(entry.Position.IsKnown, $"Node {entry.Hash} came without a position.");
        Assert.False(nodes.TryGetValue(entry.Position, out var there), $"Node {entry.Hash} lands on {entry.Position}, which still holds {there.Hash}.");
        nodes[entry.Position] = entry;
    }
}
