using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid;

/// <summary>
/// A proof about one key of one shard: the shard's identity, key range and version, and a sparse Merkle proof
/// against the shard's root at that version. Checkable by anyone, with no access to the grid.
/// </summary>
/// <remarks>
/// The tree holds <c>PoseidonBytes(key)</c> → <c>PoseidonBytes(value)</c> (see docs/proofs.md), so checking an
/// answer means: the key is inside the shard's range, the proof is about the hash of that key, it claims
/// exactly the value returned (or absence), and it verifies against its root.
/// </remarks>
public sealed record ShardProof(long ShardId, KeyRange Range, long Version, SmtProof Proof)
{
    /// <summary>The shard's root at <see cref="Version"/>.</summary>
    public Fr Root => Proof.Root;

    /// <summary>
    /// Checks that this proof shows <paramref name="key"/> holding <paramref name="value"/> (or, for a null
    /// value, being absent) in this shard at this version; returns the reason it does not, or null if it does.
    /// </summary>
    public string? Explain(ReadOnlySpan<byte> key, byte[]? value) => ExplainMany([(this, key.ToArray(), value)])[0];

    /// <summary>
    /// <see cref="Explain"/> of many answers at once (<c>result[i]</c> is the reason answer i is rejected, or null): the keys,
    /// values and Merkle paths of all of them are hashed together, eight at a time with AVX-512, several times cheaper
    /// than one by one. A client verifying the answers of many concurrent calls batches them through this.
    /// </summary>
    /// <exception cref="ArgumentException">An answer has a null proof or key.</exception>
    public static string?[] ExplainMany(IReadOnlyList<(ShardProof Proof, byte[] Key, byte[]? Value)> answers)
    {
        ArgumentNullException.ThrowIfNull(answers);
        int n = answers.Count;
        var reasons = new string?[n];
        var keyHashes = new Fr[n];
        PoseidonBytes.HashMany(answers.Select(a => a.Key ?? throw new ArgumentException("An answer has no key.", nameof(answers))).ToList(), keyHashes);
        var withValues = Enumerable.Range(0, n).Where(i => answers[i].Value is not null).ToList();
        var valueHashes = new Fr[withValues.Count];
        PoseidonBytes.HashMany(withValues.Select(i => answers[i].Value!).ToList(), valueHashes);

        var merkle = new List<int>(n);
        for (int i = 0, v = 0; i < n; i++)
        {
            var (shardProof, key, value) = answers[i];
            ArgumentNullException.ThrowIfNull(shardProof);
            var proof = shardProof.Proof;
            var valueHash = value is null ? default : valueHashes[v++];
            reasons[i] =
                !shardProof.Range.Contains(key) ? $"key {Convert.ToHexStringLower(key)} is outside shard {shardProof.ShardId}'s range {shardProof.Range}"
                : proof.Key != keyHashes[i] ? "the proof is about a different key"
                : value is null && proof.Exists ? "the key is reported absent but the proof shows it present"
                : value is not null && !proof.Exists ? "a value was returned but the proof shows the key absent"
                : value is not null && proof.Value != valueHash ? "the proof is for a different value than the one returned"
                : null;
            if (reasons[i] is null) merkle.Add(i);
        }

        var proofs = merkle.Select(i => answers[i].Proof.Proof).ToList();
        var roots = proofs.Select(p => p.Root).ToArray();
        var verified = new bool[merkle.Count];
        SmtVerifier.VerifyMany(proofs, roots, verified);
        for (int j = 0; j < merkle.Count; j++)
            if (!verified[j]) reasons[merkle[j]] = "the Merkle proof does not verify against its root";
        return reasons;
    }

    /// <summary>The error <see cref="EnsureVerifies"/> throws for <paramref name="reason"/>.</summary>
    public GridException Rejection(string reason) =>
        new(GridErrorCode.VerificationFailed, $"Proof from shard {ShardId} at version {Version} rejected: {reason}.");

    /// <summary>True if <see cref="Explain"/> finds nothing wrong.</summary>
    public bool Verifies(ReadOnlySpan<byte> key, byte[]? value) => Explain(key, value) is null;

    /// <summary>Throws <see cref="GridErrorCode.VerificationFailed"/> unless the proof shows exactly this answer.</summary>
    /// <exception cref="GridException">With <see cref="GridErrorCode.VerificationFailed"/> and the reason.</exception>
    public void EnsureVerifies(ReadOnlySpan<byte> key, byte[]? value)
    {
        var reason = Explain(key, value);
        if (reason is not null) throw Rejection(reason);
    }
}
