using Rustorium.Grid.Crypto;
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

    public static SmtNodeEntry Entry(SmtNode node) => new(node.Hash(), node);

    public static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>A deadline for every store call of a test: a hung store fails the test instead of the run.</summary>
    public static CancellationToken Deadline(int seconds = 120) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
