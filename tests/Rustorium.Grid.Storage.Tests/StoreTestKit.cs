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
        var staged = nodes.TakeStaged();
        return new ShardTreeCommit
        {
            ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedTreeVersion = shard.TreeVersion, NewTreeVersion = newTreeVersion,
            NewRoot = staged.NewRoot, AddedNodes = staged.AddedNodes, RemovedNodes = staged.RemovedNodes,
        };
    }

    public static SmtNodeEntry Entry(SmtNode node) => new(node.Hash(), node);

    public static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>A deadline for every store call of a test: a hung store fails the test instead of the run.</summary>
    public static CancellationToken Deadline(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
