using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>The binary, JSON and circom forms of <see cref="SmtProof"/>, byte by byte and member by member.</summary>
public sealed class SmtProofFormatTests
{
    /// <summary>circomlib's test/smtverifier.js tree: {7: 77, 8: 88, 32: 3232}.</summary>
    private static SparseMerkleTree CircomlibTree()
    {
        var tree = new SparseMerkleTree();
        tree.Insert(F(7), F(77));
        tree.Insert(F(8), F(88));
        tree.Insert(F(32), F(3232));
        return tree;
    }

    private static byte[] Be(Fr x) => x.ToBytesBigEndian();

    [Fact]
    public void LayoutOfANonInclusionProofEndingInAnotherLeaf()
    {
        var tree = CircomlibTree();
        var proof = tree.Prove(F(0)); // siblings [s0, 0, 0, s3], old leaf 32
        var s = proof.Siblings;
        byte[] expected =
        [
            SmtProof.FormatVersion, 0x00, 4, 0b0000_1001,
            .. Be(s[0]), .. Be(s[3]),
            .. Be(tree.Root), .. Be(F(0)), .. Be(F(32)), .. Be(F(3232)),
        ];
        Assert.Equal(expected, proof.Encode());
        Assert.Equal(196, expected.Length);
    }

    [Fact]
    public void LayoutOfInclusionAndEmptyBranchProofs()
    {
        var tree = CircomlibTree();
        var inclusion = tree.Prove(F(7));
        Assert.Equal([1, 0x01, 1, 0x01, .. Be(inclusion.Siblings[0]), .. Be(tree.Root), .. Be(F(7)), .. Be(F(77))], inclusion.Encode());

        var empty = tree.Prove(F(6));
        Assert.Equal([1, 0x02, 2, 0x03, .. Be(empty.Siblings[0]), .. Be(empty.Siblings[1]), .. Be(tree.Root), .. Be(F(6))], empty.Encode());

        var emptyTree = new SparseMerkleTree().Prove(F(6));
        Assert.Equal([1, 0x02, 0, .. new byte[32], .. Be(F(6))], emptyTree.Encode());
    }

    [Fact]
    public void EveryTruncationAndAnyTrailingByteIsRejected()
    {
        var tree = CircomlibTree();
        foreach (var key in new ulong[] { 7, 0, 6 })
        {
            var bytes = tree.Prove(F(key)).Encode();
            for (int n = 0; n < bytes.Length; n++)
            {
                var e = Assert.Throws<SmtProofFormatException>(() => SmtProof.Decode(bytes.AsSpan(0, n)));
                Assert.Contains("runcated", e.Message);
            }
            Assert.Contains("trailing", Assert.Throws<SmtProofFormatException>(() => SmtProof.Decode([.. bytes, 0])).Message);
        }
    }

    [Theory]
    [InlineData(0, 2, "version")]        // version 2
    [InlineData(0, 0, "version")]        // version 0
    [InlineData(1, 0x04, "flags")]       // unknown flag
    [InlineData(1, 0x03, "both")]        // exists and isOld0
    [InlineData(2, 255, "depth")]        // deeper than 254
    [InlineData(3, 0b0001_1001, "past")] // bitmap bit past the depth (4)
    [InlineData(3, 0b0000_0001, "last")] // last sibling (level 3) absent
    public void MalformedHeadersAreRejectedWithAClearMessage(int index, int value, string expectedWord)
    {
        var bytes = CircomlibTree().Prove(F(0)).Encode();
        bytes[index] = (byte)value;
        var e = Assert.Throws<SmtProofFormatException>(() => SmtProof.Decode(bytes));
        Assert.Contains(expectedWord, e.Message);
    }

    [Fact]
    public void NonCanonicalFieldElementsAreRejected()
    {
        var tree = CircomlibTree();
        var bytes = tree.Prove(F(0)).Encode();

        var zeroSibling = (byte[])bytes.Clone();
        Array.Clear(zeroSibling, 4, 32); // sibling 0 listed in the bitmap but zero
        Assert.Contains("is zero", Assert.Throws<SmtProofFormatException>(() => SmtProof.Decode(zeroSibling)).Message);

        var bigRoot = (byte[])bytes.Clone();
        Fr.Modulus.ToByteArray(isUnsigned: true, isBigEndian: true).CopyTo(bigRoot, 4 + 64); // root = p
        Assert.Contains("root", Assert.Throws<SmtProofFormatException>(() => SmtProof.Decode(bigRoot)).Message);

        var allOnes = (byte[])bytes.Clone();
        allOnes.AsSpan(4 + 64 + 32, 32).Fill(0xFF); // key = 2^256 − 1
        Assert.Contains("key", Assert.Throws<SmtProofFormatException>(() => SmtProof.Decode(allOnes)).Message);
    }

    [Fact]
    public void ConstructorEnforcesCanonicalShape()
    {
        var one = Fr.One;
        Assert.Throws<ArgumentException>(() => new SmtProof(one, one, true, one, [one, Fr.Zero], false, Fr.Zero, Fr.Zero)); // trailing zero
        Assert.Throws<ArgumentException>(() => new SmtProof(one, one, true, one, [], true, Fr.Zero, Fr.Zero));             // exists + isOld0
        Assert.Throws<ArgumentException>(() => new SmtProof(one, one, true, one, [], false, one, Fr.Zero));                // inclusion with old key
        Assert.Throws<ArgumentException>(() => new SmtProof(one, one, false, one, [], false, one, one));                   // non-inclusion with value
        Assert.Throws<ArgumentException>(() => new SmtProof(one, one, false, Fr.Zero, [], true, one, Fr.Zero));            // empty branch with old key
        Assert.Throws<ArgumentException>(() => new SmtProof(one, one, false, Fr.Zero, new Fr[255].Select(_ => one).ToArray(), true, Fr.Zero, Fr.Zero));
    }

    [Fact]
    public void VerifierRejectsAnOldLeafThatCannotSitOnTheKeysPath()
    {
        var tree = CircomlibTree();
        var proof = tree.Prove(F(0)); // old leaf 32 at depth 4: 0 and 32 share bits 0..3
        Assert.True(proof.Verify());
        // Same siblings and old leaf, but claimed for key 1 (bit 0 differs): the recomputed root differs anyway,
        // and for key 32 itself (equal to the old key) the verifier refuses before hashing.
        Assert.False(new SmtProof(proof.Root, F(1), false, Fr.Zero, proof.SiblingSpan, false, F(32), F(3232)).Verify());
        Assert.False(new SmtProof(proof.Root, F(32), false, Fr.Zero, proof.SiblingSpan, false, F(32), F(3232)).Verify());
        // An old leaf whose key leaves the path above the depth is refused even if someone found a root for it.
        Assert.False(new SmtProof(proof.Root, F(0), false, Fr.Zero, proof.SiblingSpan, false, F(33), F(3232)).Verify());
    }

    [Fact]
    public void JsonRoundTripsAndCarriesTheCircomInput()
    {
        var tree = CircomlibTree();
        foreach (var key in new ulong[] { 7, 0, 6, 9 })
        {
            var proof = tree.Prove(F(key));
            var json = proof.ToJson();
            Assert.True(SmtProof.FromJson(json).Equals(proof));

            using var doc = JsonDocument.Parse(json);
            var o = doc.RootElement;
            Assert.Equal(1, o.GetProperty("version").GetInt32());
            Assert.Equal(tree.Root.ToString(), o.GetProperty("root").GetString());
            Assert.Equal(key.ToString(), o.GetProperty("key").GetString());
            Assert.Equal(proof.Exists, o.GetProperty("exists").GetBoolean());
            Assert.Equal(proof.Depth, o.GetProperty("siblings").GetArrayLength());
            var circom = o.GetProperty("circom");
            Assert.Equal(10, circom.GetProperty("nLevels").GetInt32());
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(proof.ToCircomInputJson(10)), JsonNode.Parse(circom.GetProperty("input").GetRawText())));
        }
    }

    [Fact]
    public void CircomInputFollowsCircomlibsSmtVerifierTest()
    {
        // The inputs circomlib's test/smtverifier.js passes to SMTVerifier(10) for the same tree.
        var tree = CircomlibTree();
        var root = tree.Root.ToString();

        var inclusion = Inputs(tree.Prove(F(8)).ToCircomInputJson(10));
        Assert.Equal(["1", "0", root, "0", "0", "0", "8", "88"],
            new[] { "enabled", "fnc", "root", "oldKey", "oldValue", "isOld0", "key", "value" }.Select(n => inclusion[n]));

        var emptyBranch = Inputs(tree.Prove(F(6)).ToCircomInputJson(10));
        Assert.Equal(["1", "1", root, "0", "0", "1", "6", "0"],
            new[] { "enabled", "fnc", "root", "oldKey", "oldValue", "isOld0", "key", "value" }.Select(n => emptyBranch[n]));

        var proof = tree.Prove(F(0));
        var otherLeaf = Inputs(proof.ToCircomInputJson(10));
        Assert.Equal(["1", "1", root, "32", "3232", "0", "0", "0"],
            new[] { "enabled", "fnc", "root", "oldKey", "oldValue", "isOld0", "key", "value" }.Select(n => otherLeaf[n]));

        using var doc = JsonDocument.Parse(proof.ToCircomInputJson(10));
        var siblings = doc.RootElement.GetProperty("siblings").EnumerateArray().Select(e => e.GetString()).ToArray();
        Assert.Equal(10, siblings.Length);
        Assert.Equal(proof.Siblings.Select(s => s.ToString()).Concat(Enumerable.Repeat("0", 6)), siblings);
        Assert.Equal(9, doc.RootElement.EnumerateObject().Count());

        static Dictionary<string, string> Inputs(string json)
        {
            using var d = JsonDocument.Parse(json);
            return d.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String)
                .ToDictionary(p => p.Name, p => p.Value.GetString()!);
        }
    }

    [Fact]
    public void CircomExportNeedsALevelMoreThanTheDepth()
    {
        var proof = CircomlibTree().Prove(F(0)); // depth 4
        Assert.Throws<ArgumentException>(() => proof.ToCircomInputJson(4));  // SMTLevIns needs a zero last sibling
        proof.ToCircomInputJson(5);
        Assert.Throws<ArgumentOutOfRangeException>(() => proof.ToCircomInputJson(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => proof.ToCircomInputJson(255));
        Assert.Contains("\"nLevels\": 5", proof.ToJson(5));
    }

    [Theory]
    [InlineData("not json", "valid JSON")]
    [InlineData("[]", "object")]
    [InlineData("{}", "lacks")]
    public void FromJsonRejectsGarbage(string json, string expectedWords)
    {
        Assert.Contains(expectedWords, Assert.Throws<SmtProofFormatException>(() => SmtProof.FromJson(json)).Message);
    }

    [Fact]
    public void FromJsonIsStrict()
    {
        var json = CircomlibTree().Prove(F(0)).ToJson(); // non-inclusion, old leaf 32, siblings [s0, 0, 0, s3]
        Assert.True(SmtProof.FromJson(json).Verify());

        void Rejects(Action<JsonObject> edit, string word)
        {
            var o = JsonNode.Parse(json)!.AsObject();
            edit(o);
            Assert.Contains(word, Assert.Throws<SmtProofFormatException>(() => SmtProof.FromJson(o.ToJsonString())).Message);
        }

        Rejects(o => o["version"] = 2, "version");
        Rejects(o => o["key"] = 0, "decimal string");
        Rejects(o => o["key"] = "00", "canonical");
        Rejects(o => o["oldKey"] = "0x20", "canonical");
        Rejects(o => o["key"] = Fr.Modulus.ToString(), "canonical");
        Rejects(o => o["exists"] = 0, "true or false");
        Rejects(o => o["value"] = "5", "no value");
        Rejects(o => o["extra"] = 1, "unknown member");
        Rejects(o => o.Remove("isOld0"), "lacks");
        Rejects(o => o["siblings"]!.AsArray().Add("0"), "trailing zero");
        Rejects(o => o["siblings"] = "1", "array");
        Rejects(o => o["siblings"] = new JsonArray(Enumerable.Range(0, 255).Select(_ => (JsonNode?)JsonValue.Create("1")).ToArray()), "maximum");

        var withoutCircom = JsonNode.Parse(json)!.AsObject();
        withoutCircom.Remove("circom"); // derived data: optional on input
        Assert.True(SmtProof.FromJson(withoutCircom.ToJsonString()).Verify());
    }

    [Fact]
    public void ProofsOfAFewThousandRandomKeysStaySmall()
    {
        // Size = 3 + ⌈depth/8⌉ + 32·(non-zero siblings) + 64 (+32 or +64). Non-zero siblings track log2(n), the
        // zero ones between log2(n) and the leaf cost a bitmap bit each. 10^6 keys ≈ 20 non-zero siblings ≈ 0.8 KiB.
        const int n = 2048;
        var random = new Random(2024);
        var keys = Enumerable.Range(0, n).Select(_ => F(new BigInteger(random.NextInt64()) << 64 | new BigInteger(random.NextInt64()))).ToArray();
        var tree = Build(keys.Distinct().Select(k => KeyValuePair.Create(k, Fr.One)));
        int maxNonZero = 0, maxBytes = 0;
        foreach (var key in keys.Take(256))
        {
            var proof = tree.Prove(key);
            int nonZero = proof.Siblings.Count(s => !s.IsZero);
            var bytes = proof.Encode();
            Assert.Equal(3 + (proof.Depth + 7) / 8 + 32 * nonZero + 96, bytes.Length);
            maxNonZero = Math.Max(maxNonZero, nonZero);
            maxBytes = Math.Max(maxBytes, bytes.Length);
        }
        Assert.InRange(maxNonZero, 11, 11 + 8); // log2(2048) = 11
        Assert.True(maxBytes <= 1024, $"largest proof {maxBytes} bytes");
    }
}
