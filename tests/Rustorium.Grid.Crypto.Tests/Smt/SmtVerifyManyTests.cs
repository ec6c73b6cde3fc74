using FsCheck;
using FsCheck.Fluent;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Crypto.Tests.Smt.SmtTestKit;

namespace Rustorium.Grid.Crypto.Tests.Smt;

/// <summary>Verifying many proofs together (hashes in lock step, eight lanes at a time) must judge each exactly as one by one.</summary>
public sealed class SmtVerifyManyTests
{
    /// <summary>Honest proofs of all three kinds and forgeries of each, against the true root or a wrong one.</summary>
    private static List<(SmtProof Proof, Fr Root)> Claims(KeyValuePair<Fr, Fr>[] contents, Fr[] probes)
    {
        var tree = Build(contents);
        var root = tree.Root;
        var claims = new List<(SmtProof, Fr)>();
        foreach (var key in contents.Select(kv => kv.Key).Concat(probes))
        {
            var proof = tree.Prove(key);
            claims.Add((proof, root));
            claims.Add((proof, root + Fr.One)); // a wrong root
            var siblings = proof.SiblingSpan.ToArray();
            int nonZero = Array.FindLastIndex(siblings, s => !s.IsZero);
            if (nonZero >= 0)
            {
                siblings[nonZero] += Fr.One; // a tampered sibling
                claims.Add((new SmtProof(root, key, proof.Exists, proof.Value, siblings, proof.IsOld0, proof.OldKey, proof.OldValue), root));
            }
            claims.Add(proof.Exists
                ? (new SmtProof(root, key, true, proof.Value + Fr.One, proof.SiblingSpan, false, Fr.Zero, Fr.Zero), root) // another value
                : (new SmtProof(root, key, true, Fr.Zero, proof.SiblingSpan, false, Fr.Zero, Fr.Zero), root));          // "present with 0"
            if (proof.Exists)
            {
                claims.Add((new SmtProof(root, key, false, Fr.Zero, proof.SiblingSpan, true, Fr.Zero, Fr.Zero), root));      // false absence
                claims.Add((new SmtProof(root, key, false, Fr.Zero, proof.SiblingSpan, false, key, proof.Value), root)); // "old leaf" = itself
            }
        }
        return claims;
    }

    [Fact]
    public void ManyProofsOfEveryKindAndTheirForgeriesAreJudgedExactlyAsOneByOne()
    {
        int accepted = 0, rejected = 0;
        Prop.ForAll(Contents(20).ToArbitrary(), Gen.ArrayOf(Key, 5).ToArbitrary(), (contents, probes) =>
        {
            var claims = Claims(contents, probes);
            var results = new bool[claims.Count];
            SmtVerifier.VerifyMany(claims.Select(c => c.Proof).ToList(), claims.Select(c => c.Root).ToArray(), results);
            for (int i = 0; i < claims.Count; i++)
            {
                bool alone = SmtVerifier.Verify(claims[i].Proof, claims[i].Root);
                Assert.Equal(alone, results[i]);
                if (alone) accepted++; else rejected++;
            }
            return true;
        }).Check(Runs(25));
        Assert.True(accepted > 100 && rejected > 300, $"accepted {accepted}, rejected {rejected}");
    }

    [Fact]
    public void AnEmptyTreeAOneLeafTreeAndNoProofsAtAll()
    {
        var empty = new SparseMerkleTree();
        var one = new SparseMerkleTree();
        one.Insert(Fr.FromUInt64(5), Fr.FromUInt64(6));
        var proofs = new List<SmtProof> { empty.Prove(Fr.FromUInt64(1)), one.Prove(Fr.FromUInt64(5)), one.Prove(Fr.FromUInt64(7)), one.Prove(Fr.FromUInt64(5)) };
        var roots = new[] { empty.Root, one.Root, one.Root, empty.Root };
        var results = new bool[4];
        SmtVerifier.VerifyMany(proofs, roots, results);
        Assert.Equal([true, true, true, false], results);

        SmtVerifier.VerifyMany([], [], []);
        Assert.Throws<ArgumentException>(() => SmtVerifier.VerifyMany(proofs, roots.AsSpan(0, 3), new bool[4]));
        Assert.Throws<ArgumentException>(() => SmtVerifier.VerifyMany(proofs, roots, new bool[3]));
    }
}
