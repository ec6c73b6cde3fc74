using FsCheck;
using FsCheck.Fluent;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>
/// FsCheck properties of the tree and its proofs. Keys come from small spaces (<see cref="SmtTestKit.Key"/>)
/// so shared low bits, pushed-down leaves and collapsing deletes happen in most cases. Case counts are
/// sized so that the whole class hashes a few tens of thousands of times (Poseidon dominates the run time).
/// </summary>
public sealed class SmtPropertyTests
{
    [Fact]
    public void SingleOperationsMatchADictionaryModelAndStayCanonical()
    {
        Prop.ForAll(Changes(40).ToArbitrary(), changes =>
        {
            var store = new InMemorySmtNodeStore();
            var tree = new SparseMerkleTree(store);
            var model = new Dictionary<Fr, Fr>();
            foreach (var c in changes)
            {
                bool present = model.ContainsKey(c.Key);
                SmtErrorCode? expected = c.Op switch
                {
                    SmtOp.Insert when present => SmtErrorCode.KeyExists,
                    SmtOp.Update or SmtOp.Delete when !present => SmtErrorCode.KeyNotFound,
                    _ => null,
                };
                var before = tree.Root;
                if (expected is { } code)
                {
                    Assert.Equal(code, Assert.Throws<SmtException>(() => ApplyOne(tree, c)).Code);
                    Assert.Equal(before, tree.Root);
                    continue;
                }
                ApplyOne(tree, c);
                if (c.Op == SmtOp.Delete) model.Remove(c.Key); else model[c.Key] = c.Value;
            }

            foreach (var (k, v) in model)
            {
                Assert.True(tree.TryGet(k, out var got));
                Assert.Equal(v, got);
            }
            foreach (var c in changes.Where(c => !model.ContainsKey(c.Key))) Assert.False(tree.Contains(c.Key));

            // Canonical shape: the same root and the same nodes (no stale ones) as a tree built from scratch.
            var fresh = new InMemorySmtNodeStore();
            Assert.Equal(Build(model, fresh).Root, tree.Root);
            Assert.Equal(fresh.NodeCount, store.NodeCount);
            return true;
        }).Check(Runs(50));
    }

    [Fact]
    public void ApplyBatchEqualsApplyingTheChangesOneByOne()
    {
        Prop.ForAll(Contents(30).ToArbitrary(), Changes(30).ToArbitrary(), (contents, raw) =>
        {
            var model = contents.ToDictionary();
            var batch = MakeValidBatch(raw, model);

            var sequentialStore = new InMemorySmtNodeStore();
            var sequential = Build(contents, sequentialStore);
            foreach (var c in batch) ApplyOne(sequential, c);

            var batchedStore = new InMemorySmtNodeStore();
            var batched = Build(contents, batchedStore);
            batched.ApplyBatch(batch);

            Assert.Equal(sequential.Root, batched.Root);
            Assert.Equal(sequentialStore.NodeCount, batchedStore.NodeCount);
            foreach (var (k, v) in model) Assert.True(batched.TryGet(k, out var got) && got == v);
            return true;
        }).Check(Runs(40));
    }

    [Fact]
    public void InsertThenDeleteRestoresTheRootAndTheNodes()
    {
        Prop.ForAll(Contents(25).ToArbitrary(), Key.ToArbitrary(), Value.ToArbitrary(), (contents, key, value) =>
        {
            var store = new InMemorySmtNodeStore();
            var tree = Build(contents, store);
            var root = tree.Root;
            int nodes = store.NodeCount;
            if (tree.TryGet(key, out var old))
            {
                tree.Delete(key);
                tree.Insert(key, old);
            }
            else
            {
                tree.Insert(key, value);
                Assert.NotEqual(root, tree.Root);
                tree.Delete(key);
            }
            Assert.Equal(root, tree.Root);
            Assert.Equal(nodes, store.NodeCount);
            return true;
        }).Check(Runs(60));
    }

    [Fact]
    public void RootDoesNotDependOnInsertionOrder()
    {
        var arb = Contents(24).SelectMany(c => Gen.Shuffle(c).Select(s => (c, s))).ToArbitrary();
        Prop.ForAll(arb, t =>
        {
            var (contents, shuffled) = t;
            var a = new SparseMerkleTree();
            foreach (var (k, v) in contents) a.Insert(k, v);
            var b = new SparseMerkleTree();
            foreach (var (k, v) in shuffled) b.Upsert(k, v);
            Assert.Equal(a.Root, b.Root);
            Assert.Equal(a.Root, Build(shuffled).Root);
            return true;
        }).Check(Runs(30));
    }

    [Fact]
    public void EveryProofVerifiesRoundTripsAndTellsTheTruth()
    {
        int inclusion = 0, emptyBranch = 0, otherLeaf = 0;
        var probes = Gen.ArrayOf(Key, 6).ToArbitrary();
        Prop.ForAll(Contents(25).ToArbitrary(), probes, (contents, extra) =>
        {
            var tree = Build(contents);
            var root = tree.Root;
            foreach (var key in contents.Select(kv => kv.Key).Take(6).Concat(extra))
            {
                var proof = tree.Prove(key);
                Assert.Equal(root, proof.Root);
                Assert.Equal(key, proof.Key);
                Assert.Equal(tree.TryGet(key, out var value), proof.Exists);
                Assert.Equal(value, proof.Value);
                Assert.True(proof.VerifyAgainst(root));
                if (proof.Exists) inclusion++; else if (proof.IsOld0) emptyBranch++; else otherLeaf++;

                var bytes = proof.Encode();
                var decoded = SmtProof.Decode(bytes);
                Assert.True(decoded.Equals(proof));
                Assert.Equal(bytes, decoded.Encode());
                Assert.True(SmtProof.FromJson(proof.ToJson()).Equals(proof));

                // A wrong root, or a claim about another value, never verifies.
                Assert.False(proof.VerifyAgainst(root + Fr.One));
                if (!root.IsZero) Assert.False(SmtVerifier.Verify(proof, Fr.Zero));
                var wrongValue = proof.Exists
                    ? new SmtProof(root, key, true, proof.Value + Fr.One, proof.SiblingSpan, false, Fr.Zero, Fr.Zero)
                    : new SmtProof(root, key, true, Fr.Zero, proof.SiblingSpan, false, Fr.Zero, Fr.Zero); // "present with 0"
                Assert.False(wrongValue.Verify());
                if (proof.Exists)
                {
                    // Claiming absence of a present key fails both ways.
                    Assert.False(new SmtProof(root, key, false, Fr.Zero, proof.SiblingSpan, true, Fr.Zero, Fr.Zero).Verify());
                    Assert.False(new SmtProof(root, key, false, Fr.Zero, proof.SiblingSpan, false, key, proof.Value).Verify());
                }
            }
            return true;
        }).Check(Runs(30));
        Assert.True(inclusion > 0 && emptyBranch > 0 && otherLeaf > 0, $"kinds seen: {inclusion} / {emptyBranch} / {otherLeaf}");
    }

    [Fact]
    public void NoSingleBitFlipOfAnEncodedProofProvesAFalseClaim()
    {
        // Every flip must fail to decode or fail to verify, with one honest exception: flipping a key bit at or
        // above the depth of a NON-inclusion proof yields a valid non-inclusion proof of that other key, which is
        // then also absent (its path ends in the same empty branch or foreign leaf). That is a true claim.
        var arb = Gen.Zip(Contents(14), Gen.Zip(Key, Gen.Choose(0, int.MaxValue))).ToArbitrary();
        Prop.ForAll(arb, t =>
        {
            var (contents, (key, seed)) = t;
            var tree = Build(contents);
            var proof = tree.Prove(key);
            var bytes = proof.Encode();
            var random = new Random(seed);
            int fixedBits = 8 * (3 + (proof.Depth + 7) / 8);
            var bits = Enumerable.Range(0, fixedBits).Concat(Enumerable.Range(0, 48).Select(_ => random.Next(fixedBits, 8 * bytes.Length)));
            foreach (int bit in bits)
            {
                var mutated = (byte[])bytes.Clone();
                mutated[bit >> 3] ^= (byte)(1 << (bit & 7));
                SmtProof decoded;
                try
                {
                    decoded = SmtProof.Decode(mutated);
                }
                catch (SmtProofFormatException)
                {
                    continue;
                }
                if (!decoded.Verify()) continue;
                Assert.False(proof.Exists, $"bit {bit}: a mutated inclusion proof verified");
                Assert.NotEqual(proof.Key, decoded.Key);
                Assert.Equal(proof.Root, decoded.Root);
                Assert.False(tree.Contains(decoded.Key), $"bit {bit}: a mutated proof claims {decoded.Key} is absent, but it is present");
            }
            return true;
        }).Check(Runs(30));
    }

    [Fact]
    public void AnInvalidBatchChangesNothing()
    {
        // A valid batch with one planted fault at a random position: a repeated key, an insert of a present
        // key, or an update/delete of an absent key. The batch must be rejected with that code and no trace.
        var fault = Gen.Zip(Gen.Choose(0, 2), Gen.Zip(Gen.Choose(0, 1000), Gen.Zip(Key, Value)));
        Prop.ForAll(Gen.Zip(Contents(20), Gen.Zip(Changes(12), fault)).ToArbitrary(), t =>
        {
            var (contents, (raw, (kind, (position, (faultKey, faultValue))))) = t;
            var model = contents.ToDictionary();
            var batch = MakeValidBatch(raw, new Dictionary<Fr, Fr>(model)).ToList();
            var inBatch = batch.Select(c => c.Key).ToHashSet();
            var untouchedPresent = model.Keys.Where(k => !inBatch.Contains(k)).ToList();

            SmtChange bad;
            SmtErrorCode expected;
            if (kind == 0 && batch.Count > 0)
            {
                bad = SmtChange.Upsert(batch[position % batch.Count].Key, faultValue);
                expected = SmtErrorCode.DuplicateKeyInBatch;
            }
            else if (kind == 1 && untouchedPresent.Count > 0)
            {
                bad = SmtChange.Insert(untouchedPresent[position % untouchedPresent.Count], faultValue);
                expected = SmtErrorCode.KeyExists;
            }
            else if (!model.ContainsKey(faultKey) && !inBatch.Contains(faultKey))
            {
                bad = position % 2 == 0 ? SmtChange.Delete(faultKey) : SmtChange.Update(faultKey, faultValue);
                expected = SmtErrorCode.KeyNotFound;
            }
            else
            {
                return true; // no fault of the drawn kind fits this case
            }
            batch.Insert(position % (batch.Count + 1), bad);

            var store = new InMemorySmtNodeStore();
            var tree = Build(contents, store);
            var root = tree.Root;
            int nodes = store.NodeCount;
            Assert.Equal(expected, Assert.Throws<SmtException>(() => tree.ApplyBatch(batch.ToArray())).Code);
            Assert.Equal(root, tree.Root);
            Assert.Equal(nodes, store.NodeCount);
            foreach (var (k, v) in model) Assert.True(tree.TryGet(k, out var got) && got == v);
            return true;
        }).Check(Runs(80));
    }

    [Fact]
    public void DecodeAcceptsOnlyCanonicalEncodingsAndNeverThrowsAnythingElse()
    {
        // Start from real encodings, then truncate, extend or overwrite bytes: deep into the parser, cheaply.
        var tree = Build(Enumerable.Range(0, 40).Select(i => KeyValuePair.Create(F((ulong)(i * 7)), F((ulong)i))));
        var seeds = new ulong[] { 0, 7, 14, 3, 5, 4096, 1UL << 40 }.Select(k => tree.Prove(F(k)).Encode()).ToArray();
        var edit = Gen.Zip(Gen.Elements(seeds), Gen.Zip(Gen.Choose(0, 3), Gen.Zip(Gen.Choose(0, 400), Gen.Choose(0, 255))));
        Prop.ForAll(edit.ToArbitrary(), t =>
        {
            var (seed, (kind, (pos, b))) = t;
            var bytes = kind switch
            {
                0 => seed[..Math.Min(pos, seed.Length)],
                1 => [.. seed, (byte)b],
                2 => Overwrite(seed, pos % seed.Length, (byte)b),
                _ => Overwrite(seed, pos % Math.Min(seed.Length, 5), (byte)b),
            };
            try
            {
                var proof = SmtProof.Decode(bytes);
                Assert.Equal(bytes, proof.Encode()); // accepted ⇒ it was the canonical encoding of what it decodes to
            }
            catch (SmtProofFormatException)
            {
            }
            return true;
        }).Check(Runs(600));

        static byte[] Overwrite(byte[] source, int at, byte value)
        {
            var copy = (byte[])source.Clone();
            copy[at] = value;
            return copy;
        }
    }
}
