using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>
/// Batches over a store that reads in bulk (<see cref="ISmtBulkNodeReader"/>): the tree reads the batch's paths a level
/// per call instead of a node per call, and ends exactly where the same batch over a plain store ends.
/// </summary>
public sealed class SmtBulkReadTests
{
    /// <summary>An in-memory store that counts single and bulk reads.</summary>
    private sealed class CountingBulkStore : ISmtNodeStore, ISmtBulkNodeReader
    {
        private readonly InMemorySmtNodeStore _inner = new();
        public int SingleReads;
        public int BulkCalls;
        public int BulkHashes;

        public Fr Root => _inner.Root;

        public bool TryGetNode(in Fr hash, out SmtNode node)
        {
            SingleReads++;
            return _inner.TryGetNode(hash, out node);
        }

        public void GetNodes(ReadOnlySpan<Fr> hashes, Span<SmtNode> nodes, Span<bool> found)
        {
            BulkCalls++;
            BulkHashes += hashes.Length;
            for (int i = 0; i < hashes.Length; i++) found[i] = _inner.TryGetNode(hashes[i], out nodes[i]);
        }

        public void Commit(SmtNodeBatch batch) => _inner.Commit(batch);

        public void ResetCounts() => SingleReads = BulkCalls = BulkHashes = 0;
    }

    [Fact]
    public void InsertsAndUpdatesReadTheirPathsOneLevelPerCallAndNeverOneByOne()
    {
        var random = new Random(1121);
        var keys = Enumerable.Range(0, 3000).Select(_ => (ulong)random.NextInt64(1, long.MaxValue)).Distinct().ToList();
        var store = new CountingBulkStore();
        var bulk = new SparseMerkleTree(store);
        var plain = new SparseMerkleTree();
        var initial = keys.Select(k => SmtChange.Insert(F(k), F(k % 1000))).ToArray();
        bulk.ApplyBatch(initial);
        plain.ApplyBatch(initial);

        var batch = keys.Where((_, i) => i % 7 == 0).Select(k => SmtChange.Update(F(k), F(k + 1)))
            .Concat(Enumerable.Range(0, 200).Select(i => SmtChange.Insert(F((ulong)random.NextInt64(long.MaxValue / 2, long.MaxValue) | 1), F((ulong)i))))
            .DistinctBy(c => c.Key).ToArray();
        store.ResetCounts();
        bulk.ApplyBatch(batch);
        plain.ApplyBatch(batch);

        Assert.Equal(plain.Root, bulk.Root);
        Assert.Equal(0, store.SingleReads);
        // One call per level walked: a tree of 3,000 random keys is a few dozen levels deep at most, not hundreds.
        Assert.InRange(store.BulkCalls, 10, 64);
        Assert.True(store.BulkHashes >= batch.Length, $"{store.BulkHashes} nodes read for {batch.Length} changes");
    }

    [Fact]
    public void BatchesWithDeletesAndMissingKeysEndAsOverAPlainStore()
    {
        var random = new Random(2026);
        for (int round = 0; round < 30; round++)
        {
            // Colliding low bits make deep paths and collapses.
            var existing = Enumerable.Range(0, random.Next(0, 200)).Select(_ => (ulong)random.Next(1, 4000) << random.Next(0, 16)).Distinct().ToList();
            var store = new CountingBulkStore();
            var bulk = new SparseMerkleTree(store);
            var plain = new SparseMerkleTree();
            var initial = existing.Select(k => SmtChange.Insert(F(k), F(k + 1))).ToArray();
            bulk.ApplyBatch(initial);
            plain.ApplyBatch(initial);

            var used = new HashSet<ulong>();
            var changes = new List<SmtChange>();
            foreach (var k in existing.Where(_ => random.Next(3) == 0))
            {
                used.Add(k);
                changes.Add(random.Next(2) == 0 ? SmtChange.Delete(F(k)) : SmtChange.Update(F(k), F(k + 9)));
            }
            for (int i = random.Next(0, 40); i > 0; i--)
            {
                ulong k = (ulong)random.Next(4001, 9000) << random.Next(0, 16);
                if (!existing.Contains(k) && used.Add(k)) changes.Add(SmtChange.Insert(F(k), F(k * 5)));
            }
            bulk.ApplyBatch([.. changes]);
            plain.ApplyBatch([.. changes]);
            Assert.Equal(plain.Root, bulk.Root);

            // An invalid batch (an update of an absent key) still fails as it does over a plain store, changing nothing.
            var before = bulk.Root;
            var bad = new[] { SmtChange.Update(F(999_999_937), F(1)) };
            var expected = Assert.Throws<SmtException>(() => plain.ApplyBatch(bad));
            var actual = Assert.Throws<SmtException>(() => bulk.ApplyBatch(bad));
            Assert.Equal(expected.Code, actual.Code);
            Assert.Equal(before, bulk.Root);
        }
    }

    [Fact]
    public void GetManyAnswersAsTryGetAndTheBatchThatFollowsReadsNothingMore()
    {
        var random = new Random(77);
        var keys = Enumerable.Range(0, 2000).Select(_ => (ulong)random.NextInt64(1, long.MaxValue)).Distinct().ToList();
        var store = new CountingBulkStore();
        var tree = new SparseMerkleTree(store);
        tree.ApplyBatch(keys.Select(k => SmtChange.Insert(F(k), F(k % 97))).ToArray());

        // Present keys, absent keys, and a key asked twice.
        var asked = keys.Where((_, i) => i % 5 == 0).Select(k => F(k))
            .Concat(Enumerable.Range(0, 100).Select(_ => F((ulong)random.NextInt64(long.MaxValue / 2, long.MaxValue) | 1)))
            .Append(F(keys[0])).ToArray();
        var values = new Fr[asked.Length];
        var found = new bool[asked.Length];
        store.ResetCounts();
        tree.GetMany(asked, values, found);
        Assert.Equal(0, store.SingleReads);
        Assert.InRange(store.BulkCalls, 5, 64);
        for (int i = 0; i < asked.Length; i++)
        {
            Assert.Equal(tree.TryGet(asked[i], out var value), found[i]);
            Assert.Equal(value, values[i]);
        }
        Assert.Equal(keys.Count / 5 + (keys.Count % 5 == 0 ? 0 : 1) + 1, found.Count(f => f));

        // The batch of the same keys finds every node it walks at hand.
        var reference = new SparseMerkleTree();
        reference.ApplyBatch(keys.Select(k => SmtChange.Insert(F(k), F(k % 97))).ToArray());
        var changes = asked.Distinct().Select((k, i) => SmtChange.Upsert(k, F((ulong)i + 5))).ToArray();
        tree.GetMany(asked, values, found);
        store.ResetCounts();
        tree.ApplyBatch(changes);
        reference.ApplyBatch(changes);
        Assert.Equal(0, store.BulkCalls);
        Assert.Equal(0, store.SingleReads);
        Assert.Equal(reference.Root, tree.Root);

        Assert.Throws<ArgumentException>(() => tree.GetMany(asked, new Fr[1], found));
    }
}
