using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// Verifies <see cref="SmtProof"/>s without a tree or store: the same check circomlib's
/// <c>SMTVerifier</c> circuit makes, plus the path consistency of the old leaf that the circuit leaves to
/// the tree's canonical shape.
/// </summary>
public static class SmtVerifier
{
    /// <summary>
    /// True if <paramref name="proof"/> proves its claim against <paramref name="root"/>.
    /// </summary>
    /// <remarks>
    /// Rules: the proof's <see cref="SmtProof.Root"/> must be <paramref name="root"/>. The node at the end
    /// of the path is the leaf Poseidon(key, value, 1) for inclusion, 0 for non-inclusion ending in an
    /// empty branch, and Poseidon(oldKey, oldValue, 1) for non-inclusion ending in another leaf — then
    /// oldKey must differ from the key and share its path bits 0..depth−1 (otherwise that leaf could not
    /// sit on the key's path). Folding the siblings upward (bit i of the key = 1: the running hash is the
    /// right child at level i) must give <paramref name="root"/>. Shape rules (trimmed siblings, unused
    /// fields zero) are guaranteed by <see cref="SmtProof"/>'s constructor. Costs depth + 1 Poseidon hashes.
    /// </remarks>
    public static bool Verify(SmtProof proof, Fr root)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (proof.Root != root) return false;

        var key = proof.Key;
        var bits = KeyBits.Of(key);
        var siblings = proof.SiblingSpan;
        Fr h;
        if (proof.Exists)
        {
            h = PoseidonHash.Hash(key, proof.Value, Fr.One);
        }
        else if (proof.IsOld0)
        {
            h = Fr.Zero;
        }
        else
        {
            var oldKey = proof.OldKey;
            if (oldKey == key) return false;
            if (bits.FirstDifference(KeyBits.Of(oldKey)) < siblings.Length) return false;
            h = PoseidonHash.Hash(oldKey, proof.OldValue, Fr.One);
        }

        for (int level = siblings.Length - 1; level >= 0; level--)
        {
            h = bits.Bit(level) ? PoseidonHash.Hash(siblings[level], h) : PoseidonHash.Hash(h, siblings[level]);
        }
        return h == root;
    }

    /// <summary>
    /// <see cref="Verify"/> of many proofs at once: <c>results[i] = Verify(proofs[i], roots[i])</c>. The proofs' hashes are
    /// computed in lock step, one tree level of every proof per <see cref="PoseidonHash.HashMany"/> call (eight at a time with
    /// AVX-512), so many proofs cost several times less than verifying them one by one.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths of <paramref name="proofs"/>, <paramref name="roots"/> and <paramref name="results"/> differ, or a proof is null.</exception>
    public static void VerifyMany(IReadOnlyList<SmtProof> proofs, ReadOnlySpan<Fr> roots, Span<bool> results)
    {
        ArgumentNullException.ThrowIfNull(proofs);
        int n = proofs.Count;
        if (roots.Length != n || results.Length != n)
            throw new ArgumentException($"{n} proofs need {n} roots and {n} results; got {roots.Length} and {results.Length}.", nameof(roots));

        // Where each proof's climb starts: a leaf to hash (its key, value, 1), or zero; proofs failing a cheap rule drop out.
        var current = new Fr[n];
        var bits = new KeyBits[n];
        var level = new int[n]; // the next sibling level to fold in; −1 once at the root (or out)
        var leafInputs = new List<Fr>();
        var leafOf = new List<int>();
        for (int i = 0; i < n; i++)
        {
            var proof = proofs[i] ?? throw new ArgumentException($"Proof {i} is null.", nameof(proofs));
            results[i] = false;
            level[i] = -1;
            if (proof.Root != roots[i]) continue;
            var key = proof.Key;
            bits[i] = KeyBits.Of(key);
            if (proof.Exists)
            {
                leafInputs.Add(key); leafInputs.Add(proof.Value); leafInputs.Add(Fr.One);
                leafOf.Add(i);
            }
            else if (!proof.IsOld0)
            {
                var oldKey = proof.OldKey;
                if (oldKey == key || bits[i].FirstDifference(KeyBits.Of(oldKey)) < proof.SiblingSpan.Length) continue;
                leafInputs.Add(oldKey); leafInputs.Add(proof.OldValue); leafInputs.Add(Fr.One);
                leafOf.Add(i);
            }
            level[i] = proof.SiblingSpan.Length - 1;
            results[i] = true; // still in the running
        }
        var leaves = new Fr[leafOf.Count];
        PoseidonHash.HashMany(leafInputs.ToArray(), 3, leaves);
        for (int j = 0; j < leafOf.Count; j++) current[leafOf[j]] = leaves[j];

        // Climb: every round hashes one level of every proof that has levels left.
        var pairs = new Fr[2 * n];
        var hashes = new Fr[n];
        var climbing = new int[n];
        while (true)
        {
            int count = 0;
            for (int i = 0; i < n; i++)
            {
                if (!results[i] || level[i] < 0) continue;
                var sibling = proofs[i].SiblingSpan[level[i]];
                bool right = bits[i].Bit(level[i]);
                pairs[2 * count] = right ? sibling : current[i];
                pairs[2 * count + 1] = right ? current[i] : sibling;
                climbing[count++] = i;
            }
            if (count == 0) break;
            PoseidonHash.HashMany(pairs.AsSpan(0, 2 * count), 2, hashes.AsSpan(0, count));
            for (int j = 0; j < count; j++)
            {
                current[climbing[j]] = hashes[j];
                level[climbing[j]]--;
            }
        }
        for (int i = 0; i < n; i++) results[i] = results[i] && current[i] == roots[i];
    }
}
