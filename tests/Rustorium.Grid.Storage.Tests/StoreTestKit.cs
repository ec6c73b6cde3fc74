using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Tests;

/// <summary>Keys, layouts and commits shared by the storage tests.</summary>
internal static class StoreTestKit
{
    /// <summary>Bytes from hex ("" is the empty key).</summary>
    public static byte[] K(string hex) => Convert.FromHexString(hex);

    public static KeyRange Range(string startHex, string? endHex) => new(K(startHex), endHex is null ? null : K(endHex));

    /// <summary>[, 40) [40, 80) [80, ∞).</summary>
    public static IReadOnlyList<KeyRange> ThreeShards { get; } = [Range("", "40"), Range("40", "80"), Range("80", null)];

    /// <summary>Eight shards cut at 20, 40, … e0.</summary>
    public static IReadOnlyList<KeyRange> EightShards { get; } =
        Enumerable.Range(0, 8).Select(i => new KeyRange(i == 0 ? [] : [(byte)(i * 0x20)], i == 7 ? null : [(byte)((i + 1) * 0x20)])).ToArray();

    public static RowWrite Put(string keyHex, string valueHex) => new(K(keyHex), K(valueHex));

    public static RowWrite Put(byte[] key, byte[] value) => new(key, value);

    public static RowWrite Del(string keyHex) => new(K(keyHex), null);

    public static RowWrite Del(byte[] key) => new(key, null);

    /// <summary>The root of the tree of exactly <paramref name="rows"/> (all puts), keys and values mapped with <see cref="PoseidonBytes"/>.</summary>
    public static Fr TreeOfRows(IEnumerable<RowWrite> rows)
    {
        var tree = new SparseMerkleTree();
        var changes = rows.Select(r => SmtChange.Upsert(PoseidonBytes.Hash(r.Key), PoseidonBytes.Hash(r.Value!))).ToArray();
        if (changes.Length > 0) tree.ApplyBatch(changes);
        return tree.Root;
    }

    public static Fr F(ulong x) => Fr.FromUInt64(x);

    /// <summary>A commit on top of <paramref name="shard"/> (next version, its epoch) with the given rows; the root is a stand-in.</summary>
    public static ShardCommit Next(ShardState shard, long newKeyCount, params RowWrite[] rows) => new()
    {
        ShardId = shard.ShardId,
        Epoch = shard.Epoch,
        ExpectedVersion = shard.Version,
        NewVersion = shard.Version + 1,
        NewRoot = F((ulong)shard.Version + 1000),
        NewKeyCount = newKeyCount,
        TimestampMicros = 1_700_000_000_000_000 + shard.Version,
        Rows = rows,
    };

    /// <summary>A data commit on top of <paramref name="shard"/> (next version, its epoch): rows only, the store counts.</summary>
    public static ShardCommit DataCommit(ShardState shard, params RowWrite[] rows) => DataCommit(shard, null, rows);

    /// <summary>A data commit claiming <paramref name="newKeyCount"/> (null: the store counts).</summary>
    public static ShardCommit DataCommit(ShardState shard, long? newKeyCount, params RowWrite[] rows) => new()
    {
        ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedVersion = shard.Version, NewVersion = shard.Version + 1, NewRoot = null,
        NewKeyCount = newKeyCount, TimestampMicros = 1_700_000_300_000_000 + shard.Version, Rows = rows,
    };

    /// <summary>
    /// The tree commit that folds <paramref name="changes"/> (null value: deleted) into <paramref name="shard"/>'s stored tree, as
    /// the tree's owner builds it: on the stored root, with the staged node changes, from the shard's tree version to
    /// <paramref name="newTreeVersion"/>.
    /// </summary>
    public static ShardTreeCommit FoldOf(IShardStore store, ShardState shard, IEnumerable<RowWrite> changes, long newTreeVersion)
    {
        using var nodes = ShardTreeNodeStore.Open(store, shard);
        var tree = new SparseMerkleTree(nodes);
        foreach (var change in changes)
        {
            var key = PoseidonBytes.Hash(change.Key);
            if (change.Value is { } value) tree.Upsert(key, PoseidonBytes.Hash(value));
            else if (tree.Contains(key)) tree.Delete(key); // deleted, or inserted and deleted again before the fold
        }
        var staged = nodes.TakeStaged().InStoreOrder();
        return new ShardTreeCommit
        {
            ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedTreeVersion = shard.TreeVersion, NewTreeVersion = newTreeVersion,
            NewRoot = staged.NewRoot, AddedNodes = staged.AddedNodes, RemovedPositions = staged.RemovedPositions,
        };
    }

    /// <summary>
    /// Shards 1 and 2 of <see cref="ThreeShards"/> get 150 keys each through combined commits, shard 3 none: a store to
    /// turn into an older schema and migrate. Returns each shard's rows.
    /// </summary>
    public static async Task<Dictionary<long, List<RowWrite>>> FillForMigrationAsync(IShardStore store, CancellationToken ct)
    {
        var contents = new Dictionary<long, List<RowWrite>>();
        foreach (var shard in await store.InitializeAsync(ThreeShards, ct))
        {
            using var writer = await TestShardWriter.OpenAsync(store, shard.ShardId, ct);
            byte first = shard.Range.Start.IsEmpty ? (byte)0 : shard.Range.Start[0];
            var rows = Enumerable.Range(0, shard.ShardId == 3 ? 0 : 150).Select(i => Put([first, (byte)i, 7], [(byte)(i * 3)])).ToList();
            foreach (var row in rows) writer.Put(row.Key, row.Value!);
            await writer.CommitAsync(ct);
            contents[shard.ShardId] = rows;
        }
        return contents;
    }

    /// <summary>
    /// After a migration: every shard's tree, read from the store at its stored root, holds and proves exactly its rows,
    /// and takes a data commit and its fold (an insert, an update and a delete in shard 1).
    /// </summary>
    public static async Task AssertMigratedAsync(IShardStore store, Dictionary<long, List<RowWrite>> contents, CancellationToken ct)
    {
        foreach (var shard in await store.ListShardsAsync(ct))
        {
            Assert.Equal(TreeOfRows(contents[shard.ShardId]), shard.Root);
            using var nodes = ShardTreeNodeStore.Open(store, shard);
            var tree = new SparseMerkleTree(nodes);
            foreach (var row in contents[shard.ShardId])
            {
                var proof = tree.Prove(PoseidonBytes.Hash(row.Key));
                Assert.True(proof.Exists);
                Assert.Equal(PoseidonBytes.Hash(row.Value!), proof.Value);
                Assert.True(SmtVerifier.Verify(proof, shard.Root));
            }
        }
        var write = DataCommit(await store.GetShardAsync(1, ct), Put([0, 200, 7], [1]), Put([0, 1, 7], [2]), Del([0, 2, 7]));
        await store.CommitAsync(write, ct);
        await store.CommitTreeAsync(FoldOf(store, await store.GetShardAsync(1, ct), write.Rows, write.NewVersion), ct);
        var expected = contents[1].Where(r => r.Key[1] != 2).Select(r => r.Key[1] == 1 ? Put(r.Key, [2]) : r).Append(Put([0, 200, 7], [1]));
        Assert.Equal(TreeOfRows(expected), (await store.GetShardAsync(1, ct)).Root);
    }

    /// <summary><paramref name="node"/> with its hash, at <paramref name="at"/> or else at <see cref="At"/>.</summary>
    public static SmtNodeEntry Entry(SmtNode node, SmtPosition? at = null) => new(node.Hash(), node, at ?? At(node));

    /// <summary>
    /// Where the hand-made nodes of the storage tests sit: a leaf at level 16 on its key's path, a middle node at the root
    /// (tests that store several middle nodes give positions themselves).
    /// </summary>
    public static SmtPosition At(SmtNode node) => node.IsLeaf ? SmtPosition.Of(node.Key, 16) : SmtPosition.Root;

    /// <summary>Reads <paramref name="node"/> at <see cref="At"/>.</summary>
    public static bool TryGetNode(this IShardNodeReader reader, SmtNode node, out SmtNode got) => reader.TryGetNode(node.Hash(), At(node), out got);

    /// <summary>Reads the node of <paramref name="entry"/> at its position.</summary>
    public static bool TryGetNode(this IShardNodeReader reader, SmtNodeEntry entry, out SmtNode got) => reader.TryGetNode(entry.Hash, entry.Position, out got);

    public static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>A deadline for every store call of a test: a hung store fails the test instead of the run.</summary>
    public static CancellationToken Deadline(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
