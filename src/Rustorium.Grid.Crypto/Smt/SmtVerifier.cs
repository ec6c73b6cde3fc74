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
}
