using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Tests;

/// <summary>
/// What the shard grain will do, reduced to the storage steps: change the tree through a
/// <see cref="ShardTreeNodeStore"/>, collect the data rows, and group-commit both in one <see cref="ShardCommit"/>.
/// </summary>
internal sealed class TestShardWriter : IShardChanges, IDisposable
{
    private readonly IShardStore _store;
    private readonly Func<byte[], Fr> _toField;
    private Dictionary<string, byte[]> _committed;
    private Dictionary<string, byte[]> _current;
    private readonly Dictionary<string, byte[]?> _pendingRows = new();

    private TestShardWriter(IShardStore store, ShardState state, Func<byte[], Fr> toField, int cacheCapacity)
    {
        _store = store;
        _toField = toField;
        State = state;
        Nodes = ShardTreeNodeStore.Open(store, state, cacheCapacity);
        Tree = new SparseMerkleTree(Nodes);
        _committed = new Dictionary<string, byte[]>();
        _current = new Dictionary<string, byte[]>();
    }

    /// <summary>Claims the shard and opens its tree at the stored root.</summary>
    public static async Task<TestShardWriter> OpenAsync(IShardStore store, long shardId, CancellationToken ct,
        Func<byte[], Fr>? toField = null, int cacheCapacity = ShardTreeNodeStore.DefaultCacheCapacity)
    {
        var state = await store.ClaimAsync(shardId, ct);
        return new TestShardWriter(store, state, toField ?? (static b => PoseidonBytes.Hash(b)), cacheCapacity);
    }

    public ShardState State { get; private set; }

    public ShardTreeNodeStore Nodes { get; }

    public SparseMerkleTree Tree { get; }

    public IReadOnlyDictionary<string, byte[]> Committed => _committed;

    public Fr FieldOf(byte[] bytes) => _toField(bytes);

    public void Put(byte[] key, byte[] value)
    {
        Tree.Upsert(_toField(key), _toField(value));
        _current[Convert.ToHexStringLower(key)] = value;
        _pendingRows[Convert.ToHexStringLower(key)] = value;
    }

    public void Delete(byte[] key)
    {
        Tree.Delete(_toField(key));
        _current.Remove(Convert.ToHexStringLower(key));
        _pendingRows[Convert.ToHexStringLower(key)] = null;
    }

    /// <summary>Several changes through one <see cref="SparseMerkleTree.ApplyBatch"/> (null value: delete).</summary>
    public void Apply(IReadOnlyList<(byte[] Key, byte[]? Value)> changes)
    {
        var tree = new SmtChange[changes.Count];
        for (int i = 0; i < changes.Count; i++)
        {
            var (key, value) = changes[i];
            tree[i] = value is null
                ? SmtChange.Delete(_toField(key))
                : SmtChange.Upsert(_toField(key), _toField(value));
        }
        Tree.ApplyBatch(tree);
        foreach (var (key, value) in changes)
        {
            var hex = Convert.ToHexStringLower(key);
            if (value is null) _current.Remove(hex);
            else _current[hex] = value;
            _pendingRows[hex] = value;
        }
    }

    /// <summary>
    /// Commits everything staged; on failure discards it (and rethrows). <paramref name="sabotage"/> expects a wrong
    /// version, to exercise the failure path.
    /// </summary>
    public async Task<StagedTreeChanges> CommitAsync(CancellationToken ct, bool sabotage = false)
    {
        var staged = Nodes.TakeStaged().InStoreOrder();
        var commit = new ShardCommit
        {
            ShardId = State.ShardId,
            Epoch = State.Epoch,
            ExpectedVersion = State.Version + (sabotage ? 1 : 0),
            NewVersion = State.Version + 1 + (sabotage ? 1 : 0),
            NewRoot = staged.NewRoot,
            NewKeyCount = _current.Count,
            TimestampMicros = 1_700_000_000_000_000 + State.Version,
            Rows = _pendingRows.Select(kv => new RowWrite(Convert.FromHexString(kv.Key), kv.Value)).ToArray(),
            AddedNodes = staged.AddedNodes,
            RemovedPositions = staged.RemovedPositions,
        };
        try
        {
            await _store.CommitAsync(commit, ct);
        }
        catch
        {
            Nodes.DiscardStaged();
            _current = new Dictionary<string, byte[]>(_committed);
            _pendingRows.Clear();
            throw;
        }
        Nodes.AcceptStaged();
        _committed = new Dictionary<string, byte[]>(_current);
        _pendingRows.Clear();
        State = State with
        {
            Version = commit.NewVersion, TreeVersion = commit.NewVersion, Root = commit.NewRoot!.Value, KeyCount = commit.NewKeyCount!.Value,
            UpdatedAtMicros = commit.TimestampMicros,
        };
        return staged;
    }

    public void Dispose() => Nodes.Dispose();
}

/// <summary>
/// An in-memory node store that also remembers every node it ever held and where (to check the shard store emptied the
/// positions of the dead ones): it follows the batches' positions as a store keyed by position would.
/// </summary>
internal sealed class RecordingNodeStore : ISmtNodeStore
{
    private readonly InMemorySmtNodeStore _inner = new();
    private readonly Dictionary<SmtPosition, Fr> _current = new();

    public HashSet<(Fr Hash, SmtPosition At)> Ever { get; } = new();

    public IEnumerable<(Fr Hash, SmtPosition At)> Current => _current.Select(p => (p.Value, p.Key));

    public Fr Root => _inner.Root;

    public bool TryGetNode(in Fr hash, out SmtNode node) => _inner.TryGetNode(hash, out node);

    public void Commit(SmtNodeBatch batch)
    {
        _inner.Commit(batch);
        foreach (var at in batch.RemovedPositions) _current.Remove(at);
        foreach (var move in batch.Moved) _current.Remove(move.From);
        foreach (var e in batch.Added) Hold(e.Hash, e.Position);
        foreach (var move in batch.Moved) Hold(move.Hash, move.To);
    }

    private void Hold(Fr hash, SmtPosition at)
    {
        _current[at] = hash;
        Ever.Add((hash, at));
    }
}

/// <summary>The changes a test applies, to a shard (through its store) or to a reference tree alike.</summary>
internal interface IShardChanges
{
    void Put(byte[] key, byte[] value);

    void Delete(byte[] key);

    void Apply(IReadOnlyList<(byte[] Key, byte[]? Value)> changes);
}

/// <summary>The same changes on an in-memory tree, with the same bytes-to-field mapping.</summary>
internal sealed class ReferenceTree(SparseMerkleTree tree, Func<byte[], Fr> toField) : IShardChanges
{
    public void Put(byte[] key, byte[] value) => tree.Upsert(toField(key), toField(value));

    public void Delete(byte[] key) => tree.Delete(toField(key));

    public void Apply(IReadOnlyList<(byte[] Key, byte[]? Value)> changes) =>
        tree.ApplyBatch(changes.Select(c => c.Value is null ? SmtChange.Delete(toField(c.Key)) : SmtChange.Upsert(toField(c.Key), toField(c.Value))).ToArray());
}
