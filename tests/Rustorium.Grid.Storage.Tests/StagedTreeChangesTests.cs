using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Tests;

/// <summary>The order <see cref="StagedTreeChanges.InStoreOrder"/> gives, independent of any store.</summary>
public sealed class StagedTreeChangesTests
{
    [Fact]
    public void The_sort_key_of_a_position_orders_as_its_encoding_does_byte_by_byte()
    {
        // Random walks from the root, many short (their encodings are prefixes of others' and differ in length),
        // some to the deepest levels; every pair must compare as the encodings' bytes do.
        var rng = new Random(11);
        var positions = new List<SmtPosition> { SmtPosition.Root };
        for (int walk = 0; walk < 300; walk++)
        {
            var at = SmtPosition.Root;
            int depth = walk % 3 == 0 ? rng.Next(1, 254) : rng.Next(1, 20);
            for (int d = 0; d < depth; d++)
            {
                // Mostly left turns early on: long runs of zero bits make the padding cases (a prefix ending in a zero byte).
                at = at.Child(rng.Next(d < 16 ? 4 : 2) == 0);
                if (rng.Next(4) == 0) positions.Add(at);
            }
            positions.Add(at);
        }
        // One path to the deepest level with every node from level 240 on: encodings that share their first 32 bytes
        // and differ only in the 33rd (the level).
        var deep = SmtPosition.Root;
        for (int d = 0; d < 254; d++)
        {
            deep = deep.Child(rng.Next(2) == 0);
            if (d >= 240) positions.Add(deep);
        }
        positions = positions.Distinct().ToList();
        for (int i = 0; i < positions.Count; i++)
        for (int j = 0; j < positions.Count; j++)
        {
            int bytes = Math.Sign(positions[i].ToBytes().AsSpan().SequenceCompareTo(positions[j].ToBytes()));
            int keys = Math.Sign(StagedTreeChanges.PositionKey.Of(positions[i], 0).CompareTo(StagedTreeChanges.PositionKey.Of(positions[j], 0)));
            Assert.True(bytes == keys, $"{positions[i]} vs {positions[j]}: bytes {bytes}, keys {keys}");
        }
        Assert.True(positions.Count > 500, $"{positions.Count} positions");
    }
}
