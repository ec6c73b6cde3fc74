using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary><see cref="SparseMerkleTree.ApplyBatches"/>: several trees hashed in shared rounds end exactly as each would alone.</summary>
public sealed class SmtMultiTreeBatchTests
{
    [Fact]
    public void SharedRoundsGiveEveryTreeTheRootAndNodesItsOwnBatchGives()
    {
        var random = new Random(20261121);
        for (int round = 0; round < 40; round++)
        {
            int trees = random.Next(1, 9);
            var together = new List<SparseMerkleTree>();
            var alone = new List<SparseMerkleTree>();
            var changes = new List<SmtChange[]>();
            for (int t = 0; t < trees; t++)
            {
                // A tree of its own contents (deep paths: colliding low bits), then a batch of inserts, updates and deletes.
                var existing = Enumerable.Range(0, random.Next(0, 60)).Select(_ => (ulong)random.Next(1, 5000) << random.Next(0, 12)).Distinct().ToList();
                var a = new SparseMerkleTree();
                var b = new SparseMerkleTree();
                var initial = existing.Select(k => SmtChange.Insert(F(k), F(k + 1))).ToArray();
                a.ApplyBatch(initial);
                b.ApplyBatch(initial);
                var batch = new List<SmtChange>();
                var used = new HashSet<ulong>();
                foreach (var k in existing.Where(_ => random.Next(3) == 0))
                {
                    used.Add(k);
                    batch.Add(random.Next(2) == 0 ? SmtChange.Delete(F(k)) : SmtChange.Update(F(k), F(k + 7)));
                }
                for (int i = random.Next(0, 20); i > 0; i--)
                {
                    ulong k = (ulong)random.Next(5001, 9000) << random.Next(0, 12);
                    if (existing.Contains(k) || !used.Add(k)) continue;
                    batch.Add(SmtChange.Insert(F(k), F(k * 3)));
                }
                together.Add(a);
                alone.Add(b);
                changes.Add([.. batch]);
            }

            var errors = SparseMerkleTree.ApplyBatches(together, changes);
            for (int t = 0; t < trees; t++)
            {
                Assert.Null(errors[t]);
                alone[t].ApplyBatch(changes[t]);
                Assert.Equal(alone[t].Root, together[t].Root);
                Assert.Equal(((InMemorySmtNodeStore)alone[t].Store).NodeCount, ((InMemorySmtNodeStore)together[t].Store).NodeCount);
            }
        }
    }

    [Fact]
    public void AnInvalidBatchFailsItsTreeOnlyAndLeavesItUnchanged()
    {
        var good = new SparseMerkleTree();
        var bad = new SparseMerkleTree();
        bad.Insert(F(3), F(30));
        var badRoot = bad.Root;
        var errors = SparseMerkleTree.ApplyBatches([good, bad],
            [[SmtChange.Insert(F(1), F(10)), SmtChange.Insert(F(2), F(20))], [SmtChange.Insert(F(4), F(40)), SmtChange.Insert(F(3), F(31))]]);

        Assert.Null(errors[0]);
        Assert.Equal(SmtErrorCode.KeyExists, Assert.IsType<SmtException>(errors[1]).Code);
        Assert.Equal(badRoot, bad.Root);
        var expected = new SparseMerkleTree();
        expected.Insert(F(1), F(10));
        expected.Insert(F(2), F(20));
        Assert.Equal(expected.Root, good.Root);
    }

    [Fact]
    public void ArgumentsAreChecked()
    {
        var tree = new SparseMerkleTree();
        Assert.Throws<ArgumentException>(() => SparseMerkleTree.ApplyBatches([tree, tree], [[], []]));
        Assert.Throws<ArgumentException>(() => SparseMerkleTree.ApplyBatches([tree], [[], []]));
        Assert.All(SparseMerkleTree.ApplyBatches([tree, new SparseMerkleTree()], [[], []]), Assert.Null);
    }
}
