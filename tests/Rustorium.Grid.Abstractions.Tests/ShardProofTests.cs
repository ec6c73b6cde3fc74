using System.Text;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Abstractions.Tests;

/// <summary>A client-side check must accept exactly the stored answer and reject everything else.</summary>
public sealed class ShardProofTests
{
    private static readonly KeyRange Range = new("k"u8, Encoding.UTF8.GetBytes("l"));

    private static (SparseMerkleTree Tree, Dictionary<string, string> Data) Shard()
    {
        var tree = new SparseMerkleTree();
        var data = new Dictionary<string, string>();
        for (int i = 0; i < 50; i++)
        {
            string k = $"key:{i}", v = $"value-{i}";
            data[k] = v;
            tree.Insert(PoseidonBytes.Hash(Encoding.UTF8.GetBytes(k)), PoseidonBytes.Hash(Encoding.UTF8.GetBytes(v)));
        }
        return (tree, data);
    }

    private static ShardProof ProofFor(SparseMerkleTree tree, string key) =>
        new(7, Range, 42, tree.Prove(PoseidonBytes.Hash(Encoding.UTF8.GetBytes(key))));

    [Fact]
    public void AcceptsTheStoredValueAndTheTrueAbsence()
    {
        var (tree, data) = Shard();
        foreach (var (k, v) in data)
        {
            var proof = ProofFor(tree, k);
            Assert.Null(proof.Explain(Encoding.UTF8.GetBytes(k), Encoding.UTF8.GetBytes(v)));
            proof.EnsureVerifies(Encoding.UTF8.GetBytes(k), Encoding.UTF8.GetBytes(v));
        }
        var absent = ProofFor(tree, "key:absent");
        Assert.True(absent.Verifies("key:absent"u8, null));
    }

    [Fact]
    public void RejectsAnotherValueAFalseAbsenceAFalsePresenceAnotherKeyAndAKeyOutsideTheRange()
    {
        var (tree, _) = Shard();
        var proof = ProofFor(tree, "key:1");
        Assert.Contains("different value", proof.Explain("key:1"u8, "value-2"u8.ToArray()));
        Assert.Contains("present", proof.Explain("key:1"u8, null));
        Assert.Contains("different key", proof.Explain("key:2"u8, "value-1"u8.ToArray()));

        var absent = ProofFor(tree, "key:absent");
        Assert.Contains("absent", absent.Explain("key:absent"u8, "anything"u8.ToArray()));

        var outside = new ShardProof(7, new KeyRange("a"u8, Encoding.UTF8.GetBytes("b")), 42, proof.Proof);
        Assert.Contains("outside", outside.Explain("key:1"u8, "value-1"u8.ToArray()));

        var ex = Assert.Throws<GridException>(() => proof.EnsureVerifies("key:1"u8, "forged"u8.ToArray()));
        Assert.Equal(GridErrorCode.VerificationFailed, ex.Code);
    }

    [Fact]
    public void RejectsAProofAgainstATamperedRoot()
    {
        var (tree, _) = Shard();
        var p = tree.Prove(PoseidonBytes.Hash("key:3"u8));
        var forged = new SmtProof(p.Root + Fr.One, p.Key, p.Exists, p.Value, p.Siblings, p.IsOld0, p.OldKey, p.OldValue);
        var proof = new ShardProof(7, Range, 42, forged);
        Assert.Contains("does not verify", proof.Explain("key:3"u8, "value-3"u8.ToArray()));
    }

    [Fact]
    public void ManyAnswersCheckedTogetherGetTheReasonsEachGetsAlone()
    {
        var (tree, data) = Shard();
        var answers = new List<(ShardProof Proof, byte[] Key, byte[]? Value)>();
        foreach (var (k, v) in data.Take(20))
        {
            byte[] key = Encoding.UTF8.GetBytes(k), value = Encoding.UTF8.GetBytes(v);
            var proof = ProofFor(tree, k);
            answers.Add((proof, key, value));                                 // true
            answers.Add((proof, key, "forged"u8.ToArray()));                  // another value
            answers.Add((proof, key, null));                                  // a false absence
            answers.Add((proof, "key:other"u8.ToArray(), value));             // another key
            var p = proof.Proof;
            answers.Add((new ShardProof(7, Range, 42, new SmtProof(p.Root + Fr.One, p.Key, p.Exists, p.Value, p.Siblings, p.IsOld0, p.OldKey, p.OldValue)), key, value));
            answers.Add((new ShardProof(7, new KeyRange("a"u8, "b"u8.ToArray()), 42, p), key, value));
        }
        for (int i = 0; i < 5; i++)
        {
            var absent = ProofFor(tree, $"key:absent-{i}");
            answers.Add((absent, Encoding.UTF8.GetBytes($"key:absent-{i}"), null));       // a true absence
            answers.Add((absent, Encoding.UTF8.GetBytes($"key:absent-{i}"), [1, 2, 3])); // a false presence
        }

        var reasons = ShardProof.ExplainMany(answers);
        Assert.Equal(answers.Count, reasons.Length);
        for (int i = 0; i < answers.Count; i++)
        {
            var (proof, key, value) = answers[i];
            var alone = proof.Explain(key, value);
            Assert.Equal(alone, reasons[i]);
        }
        Assert.Equal(25, reasons.Count(r => r is null));
        Assert.Contains(reasons, r => r is not null && r.Contains("does not verify"));
        Assert.Empty(ShardProof.ExplainMany([]));
    }
}
