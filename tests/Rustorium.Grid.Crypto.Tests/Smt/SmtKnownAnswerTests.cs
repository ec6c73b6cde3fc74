using System.Numerics;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>
/// Small trees whose roots are built by hand from the Poseidon API, plus roots frozen from circomlibjs 0.1.7
/// (<c>newMemEmptyTrie()</c>, then the same inserts/updates/deletes; values printed with <c>F.toObject</c>).
/// Path bit i of a key is bit i of its value, least significant first; 1 = right.
/// </summary>
public sealed class SmtKnownAnswerTests
{
    // circomlibjs 0.1.7 roots.
    private const string RootA = "6525056641794203554583616941316772618766382307684970171204065038799368146416";  // {1:11}
    private const string RootB = "12580425853610408100112529597081692644986696906182591091297347861264185197153"; // {1:11, 2:22}
    private const string RootC = "5728150753037409838458607616756643890462851952017563162778054352271559479183";  // {1:11, 9:99}
    private const string RootD = "9897304588009779451043099447159084354541077537210394768878574637697259411479";  // {1:11, 9:99, 3:33}
    private const string RootE = "16797818670491194348249868563697804441293516695295768428725464454437473025192"; // {7:77, 8:88, 32:3232}
    private const string RootF = "18822971298568243207914037203880389269155300295744169292061567788411754494737"; // {5:1, 5+2^253:2}
    private const string RootH = "3681248090108270759122456001041960673466780248944511243556972611043508253005";  // k:k² for k < 40
    private const string RootH2 = "17837160408856969587773336158154226293970095857599199662839221793900703184136"; // H, delete k≡0, k≡1 → k+1000 (mod 3)

    [Fact]
    public void EmptyTreeHasRootZeroAndProvesNonInclusion()
    {
        var store = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(store);
        Assert.True(tree.Root.IsZero);
        Assert.False(tree.Contains(F(5)));
        var proof = tree.Prove(F(5));
        Assert.False(proof.Exists);
        Assert.True(proof.IsOld0);
        Assert.Equal(0, proof.Depth);
        Assert.True(proof.Verify());
        Assert.Equal(0, store.NodeCount);
    }

    [Fact]
    public void SingleLeafRootIsTheLeafHash()
    {
        var tree = new SparseMerkleTree();
        tree.Insert(F(1), F(11));
        Assert.Equal(LeafHash(1, 11), tree.Root);
        Assert.Equal(RootA, tree.Root.ToString());
        Assert.True(tree.TryGet(F(1), out var v));
        Assert.Equal(F(11), v);
    }

    [Fact]
    public void KeysDifferingInBit0SplitAtTheRoot()
    {
        var tree = new SparseMerkleTree();
        tree.Insert(F(1), F(11)); // bit 0 = 1: right
        tree.Insert(F(2), F(22)); // bit 0 = 0: left
        Assert.Equal(Mid(LeafHash(2, 22), LeafHash(1, 11)), tree.Root);
        Assert.Equal(RootB, tree.Root.ToString());
    }

    [Fact]
    public void KeysSharingLowBitsArePushedDownToTheirFirstDifferentBit()
    {
        // 1 = 0b0001 and 9 = 0b1001 share bits 0..2 (1, 0, 0) and differ at bit 3.
        var tree = new SparseMerkleTree();
        tree.Insert(F(1), F(11));
        tree.Insert(F(9), F(99));
        var l3 = Mid(LeafHash(1, 11), LeafHash(9, 99)); // bit 3: 0 → left, 1 → right
        var l2 = Mid(l3, Fr.Zero);                      // bit 2 = 0
        var l1 = Mid(l2, Fr.Zero);                      // bit 1 = 0
        var l0 = Mid(Fr.Zero, l1);                      // bit 0 = 1
        Assert.Equal(l0, tree.Root);
        Assert.Equal(RootC, tree.Root.ToString());

        var proof = tree.Prove(F(1));
        Assert.True(proof.Exists);
        Assert.Equal([Fr.Zero, Fr.Zero, Fr.Zero, LeafHash(9, 99)], proof.Siblings);
        Assert.True(proof.Verify());
    }

    [Fact]
    public void DeletesCollapseTheLoneLeafUpward()
    {
        var store = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(store);
        tree.Insert(F(1), F(11));
        tree.Insert(F(9), F(99));
        tree.Insert(F(3), F(33)); // 3 = 0b0011: shares bit 0 with 1 and 9, goes right at level 1
        var sub19 = Mid(Mid(LeafHash(1, 11), LeafHash(9, 99)), Fr.Zero); // the {1, 9} node at level 2 (bit 2 = 0 for both)
        Assert.Equal(Mid(Fr.Zero, Mid(sub19, LeafHash(3, 33))), tree.Root);
        Assert.Equal(RootD, tree.Root.ToString());
        Assert.Equal(3 + 4, store.NodeCount); // 3 leaves + middle nodes at levels 0..3

        tree.Delete(F(3)); // its sibling is a middle node: the path stays, with an empty branch
        Assert.Equal(RootC, tree.Root.ToString());
        Assert.Equal(2 + 4, store.NodeCount);

        tree.Delete(F(9)); // leaf 1 rises four levels to the root
        Assert.Equal(LeafHash(1, 11), tree.Root);
        Assert.Equal(RootA, tree.Root.ToString());
        Assert.Equal(1, store.NodeCount);

        tree.Delete(F(1));
        Assert.True(tree.Root.IsZero);
        Assert.Equal(0, store.NodeCount);
    }

    [Fact]
    public void CircomlibVerifierTestTreeGivesCircomlibjsRootAndSiblings()
    {
        // The tree of circomlib's test/smtverifier.js.
        var tree = new SparseMerkleTree();
        tree.Insert(F(7), F(77));
        tree.Insert(F(8), F(88));
        tree.Insert(F(32), F(3232));
        Assert.Equal(RootE, tree.Root.ToString());

        var inclusion = tree.Prove(F(7));
        Assert.True(inclusion.Exists);
        Assert.Equal(F(77), inclusion.Value);
        Assert.Equal(["3175708756784007584835495801424747224482504115070783937148492422993448606467"], inclusion.Siblings.Select(s => s.ToString()));

        var oldLeaf = tree.Prove(F(0)); // path of 0 ends at 32's leaf (0 and 32 share bits 0..4)
        Assert.False(oldLeaf.Exists);
        Assert.False(oldLeaf.IsOld0);
        Assert.Equal(F(32), oldLeaf.OldKey);
        Assert.Equal(F(3232), oldLeaf.OldValue);
        Assert.Equal(
            ["7623680454338960526645764969964785413027269598530557012829785131842723566171", "0", "0",
             "8199520123371559548495425428157097842501569495702004037304582533739096128775"],
            oldLeaf.Siblings.Select(s => s.ToString()));

        var empty = tree.Prove(F(6));
        Assert.True(empty.IsOld0);
        Assert.Equal(
            ["7623680454338960526645764969964785413027269598530557012829785131842723566171",
             "5332364101836556510539786187038289331420539727748818927090139851535737808468"],
            empty.Siblings.Select(s => s.ToString()));

        var other = tree.Prove(F(9));
        Assert.Equal(F(7), other.OldKey);
        foreach (var p in new[] { inclusion, oldLeaf, empty, other }) Assert.True(p.Verify());
    }

    [Fact]
    public void DeepestPossibleSplitHasDepth254()
    {
        // 5 and 5 + 2^253 agree on bits 0..252: the split is at level 253 and both leaves sit at 254.
        var far = F(new BigInteger(5) + BigInteger.Pow(2, 253));
        var store = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(store);
        tree.Insert(F(5), F(1));
        tree.Insert(far, F(2));
        Assert.Equal(RootF, tree.Root.ToString());
        Assert.Equal(2 + 254, store.NodeCount);

        var proof = tree.Prove(far);
        Assert.Equal(SparseMerkleTree.MaxDepth, proof.Depth);
        Assert.True(proof.Verify());
        var bytes = proof.Encode();
        Assert.Equal(254, bytes[2]);
        Assert.Equal(3 + 32 + 32 + 3 * 32, bytes.Length); // one non-zero sibling
        Assert.True(SmtProof.Decode(bytes).Equals(proof));
        Assert.Throws<ArgumentException>(() => proof.ToCircomInputJson(SmtProof.MaxCircomLevels));
        Assert.DoesNotContain("\"circom\"", proof.ToJson());
        Assert.True(SmtProof.FromJson(proof.ToJson()).Equals(proof));

        var absent = tree.Prove(F(new BigInteger(5) + BigInteger.Pow(2, 252))); // ends in the empty branch at level 253
        Assert.True(absent.IsOld0);
        Assert.Equal(253, absent.Depth);
        Assert.True(absent.Verify());
        Assert.Contains("\"nLevels\": 254", absent.ToJson());

        tree.Delete(F(5));
        Assert.Equal(SmtNode.Leaf(far, F(2)).Hash(), tree.Root); // the survivor rises 254 levels to the root
        Assert.Equal(1, store.NodeCount);
    }

    [Fact]
    public void KeysSplittingAtLimbBoundariesMatchCircomlibjs()
    {
        // 7 and 7 + 2^e for e = 63, 64, 127, 128, 191, 192: splits on both sides of every 64-bit limb boundary.
        int[] exponents = [0, 63, 64, 127, 128, 191, 192];
        Fr KeyOf(int e) => e == 0 ? F(7) : F(new BigInteger(7) + BigInteger.Pow(2, e));
        var tree = new SparseMerkleTree();
        foreach (int e in exponents) tree.Insert(KeyOf(e), F((ulong)e));
        Assert.Equal("11998599673457753039256235361885374660644499953216528803311513182706286206429", tree.Root.ToString());
        Assert.Equal(tree.Root, Build(exponents.Select(e => KeyValuePair.Create(KeyOf(e), F((ulong)e)))).Root);
        Assert.Equal(64, tree.Prove(KeyOf(63)).Depth); // 7 + 2^63 parts from 7 at bit 63
        Assert.Equal(65, tree.Prove(KeyOf(64)).Depth);
        foreach (int e in exponents) Assert.True(tree.Prove(KeyOf(e)).Verify());

        tree.Delete(KeyOf(63));
        Assert.Equal("12830721069175385044259418612407406100336297890238673171596746339502943532789", tree.Root.ToString());
        tree.Delete(KeyOf(0));
        Assert.Equal("1105282504651302874973481997404834390805200764291447692006692919672623284568", tree.Root.ToString());
    }

    [Fact]
    public void FortyKeysThenDeletesAndUpdatesMatchCircomlibjs()
    {
        var tree = new SparseMerkleTree();
        for (ulong k = 0; k < 40; k++) tree.Insert(F(k), F(k * k));
        Assert.Equal(RootH, tree.Root.ToString());
        for (ulong k = 0; k < 40; k += 3) tree.Delete(F(k));
        for (ulong k = 1; k < 40; k += 3) tree.Update(F(k), F(k + 1000));
        Assert.Equal(RootH2, tree.Root.ToString());

        var batched = new SparseMerkleTree();
        batched.ApplyBatch(Enumerable.Range(0, 40).Select(k => SmtChange.Insert(F((ulong)k), F((ulong)(k * k)))).ToArray());
        Assert.Equal(RootH, batched.Root.ToString());
        batched.ApplyBatch(Enumerable.Range(0, 40).Where(k => k % 3 != 2)
            .Select(k => k % 3 == 0 ? SmtChange.Delete(F((ulong)k)) : SmtChange.Update(F((ulong)k), F((ulong)k + 1000))).ToArray());
        Assert.Equal(RootH2, batched.Root.ToString());
    }

    [Fact]
    public void InvalidOperationsThrowTypedErrorsNamingTheKeyAndChangeNothing()
    {
        var tree = new SparseMerkleTree();
        tree.Insert(F(1), F(11));
        tree.Insert(F(9), F(99));
        var root = tree.Root;

        var exists = Assert.Throws<SmtException>(() => tree.Insert(F(9), F(5)));
        Assert.Equal(SmtErrorCode.KeyExists, exists.Code);
        Assert.Contains("9", exists.Message);
        var update = Assert.Throws<SmtException>(() => tree.Update(F(17), F(5))); // 17 shares 1's low bits: path ends at a leaf
        Assert.Equal(SmtErrorCode.KeyNotFound, update.Code);
        Assert.Contains("17", update.Message);
        var delete = Assert.Throws<SmtException>(() => tree.Delete(F(2))); // path ends in an empty branch
        Assert.Equal(SmtErrorCode.KeyNotFound, delete.Code);
        Assert.Contains("2", delete.Message);
        Assert.Equal(root, tree.Root);
    }

    [Fact]
    public void UpdateAndUpsert()
    {
        var store = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(store);
        tree.Upsert(F(1), F(11)); // insert
        tree.Upsert(F(9), F(5));
        tree.Upsert(F(9), F(99)); // update
        Assert.Equal(RootC, tree.Root.ToString());

        var nodes = store.NodeCount;
        tree.Update(F(9), F(99)); // same value: nothing to do
        Assert.Equal(RootC, tree.Root.ToString());
        Assert.Equal(nodes, store.NodeCount);

        tree.Update(F(1), F(12));
        Assert.Equal(Mid(Fr.Zero, Mid(Mid(Mid(LeafHash(1, 12), LeafHash(9, 99)), Fr.Zero), Fr.Zero)), tree.Root);
        Assert.Equal(nodes, store.NodeCount); // replaced nodes were deleted
    }

    [Fact]
    public void SingleOperationsStoreOneNodePerLevelAndDeleteTheReplacedPath()
    {
        // What a single operation commits is what it hashed: one leaf plus one middle node per level.
        var recorder = new RecordingSmtNodeStore(new InMemorySmtNodeStore());
        var tree = new SparseMerkleTree(recorder);
        tree.Insert(F(1), F(11)); // empty tree: the leaf becomes the root
        tree.Insert(F(9), F(99)); // 1 and 9 split at bit 3: leaf + middles at levels 3..0; leaf 1 is kept
        tree.Insert(F(3), F(33)); // 3 = 0b0011 goes right at level 1, where the branch is empty: leaf + 2 middles
        tree.Update(F(3), F(34)); // same path: leaf + 2 middles replace leaf + 2 middles
        tree.Delete(F(9));        // 9's sibling is leaf 1: it rises from level 4 to level 2, next to 3's leaf
        tree.Upsert(F(9), F(99)); // 9's path now ends at leaf 1 (level 2): both go down to level 4

        Assert.Equal([(1, 0), (1 + 4, 0), (1 + 2, 2), (1 + 2, 1 + 2), (2, 1 + 4), (1 + 4, 2)], recorder.Commits);
        Assert.Equal(tree.Root, Build(new Dictionary<Fr, Fr> { [F(1)] = F(11), [F(3)] = F(34), [F(9)] = F(99) }).Root);
    }

    [Fact]
    public void MissingNodeIsReportedAsCorruptStore()
    {
        var recorder = new RecordingSmtNodeStore(new InMemorySmtNodeStore());
        var tree = new SparseMerkleTree(recorder);
        tree.Insert(F(1), F(11));
        tree.Insert(F(9), F(99));
        recorder.Hidden = LeafHash(9, 99);
        var root = tree.Root;
        // 25 = 0b11001 and 41 = 0b101001 follow 9's path (bits 0..3 = 1, 0, 0, 1) to its hidden leaf.
        var e = Assert.Throws<SmtException>(() => tree.Insert(F(25), F(1)));
        Assert.Equal(SmtErrorCode.CorruptStore, e.Code);
        Assert.Contains(LeafHash(9, 99).ToString(), e.Message);
        Assert.Equal(SmtErrorCode.CorruptStore, Assert.Throws<SmtException>(() => tree.ApplyBatch([SmtChange.Insert(F(41), F(1))])).Code);
        Assert.Equal(SmtErrorCode.CorruptStore, Assert.Throws<SmtException>(() => tree.Prove(F(9))).Code);
        Assert.Equal(root, tree.Root);
        Assert.True(tree.Contains(F(1))); // other paths still work
    }

    [Fact]
    public void BatchErrorsAreTypedAndLeaveTheTreeUnchanged()
    {
        var store = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(store);
        tree.ApplyBatch([SmtChange.Insert(F(1), F(11)), SmtChange.Insert(F(9), F(99))]);
        var root = tree.Root;
        int nodes = store.NodeCount;

        void Rejects(SmtErrorCode code, params SmtChange[] changes)
        {
            var e = Assert.Throws<SmtException>(() => tree.ApplyBatch(changes));
            Assert.Equal(code, e.Code);
            Assert.Equal(root, tree.Root);
            Assert.Equal(nodes, store.NodeCount);
        }

        Rejects(SmtErrorCode.DuplicateKeyInBatch, SmtChange.Insert(F(2), F(1)), SmtChange.Upsert(F(2), F(2)));
        Rejects(SmtErrorCode.KeyExists, SmtChange.Insert(F(2), F(1)), SmtChange.Insert(F(9), F(1)));
        Rejects(SmtErrorCode.KeyNotFound, SmtChange.Insert(F(2), F(1)), SmtChange.Update(F(17), F(1)));
        Rejects(SmtErrorCode.KeyNotFound, SmtChange.Delete(F(1)), SmtChange.Delete(F(4)));
        Assert.Throws<ArgumentException>(() => tree.ApplyBatch([new SmtChange((SmtOp)9, F(2), F(2))]));

        tree.ApplyBatch([]);
        tree.ApplyBatch([SmtChange.Update(F(9), F(99)), SmtChange.Upsert(F(1), F(11))]); // same values: no change
        Assert.Equal(root, tree.Root);
        Assert.Equal(nodes, store.NodeCount);
    }
}
