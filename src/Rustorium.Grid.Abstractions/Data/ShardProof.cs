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
    public string? Explain(ReadOnlySpan<byte> key, byte[]? value)
    {
        if (!Range.Contains(key)) return $"key {Convert.ToHexStringLower(key)} is outside shard {ShardId}'s range {Range}";
        if (Proof.Key != PoseidonBytes.Hash(key)) return "the proof is about a different key";
        if (value is null)
        {
            if (Proof.Exists) return "the key is reported absent but the proof shows it present";
        }
        else
        {
            if (!Proof.Exists) return "a value was returned but the proof shows the key absent";
            if (Proof.Value != PoseidonBytes.Hash(value)) return "the proof is for a different value than the one returned";
        }
        if (!SmtVerifier.Verify(Proof, Proof.Root)) return "the Merkle proof does not verify against its root";
        return null;
    }

    /// <summary>True if <see cref="Explain"/> finds nothing wrong.</summary>
    public bool Verifies(ReadOnlySpan<byte> key, byte[]? value) => Explain(key, value) is null;

    /// <summary>Throws <see cref="GridErrorCode.VerificationFailed"/> unless the proof shows exactly this answer.</summary>
    /// <exception cref="GridException">With <see cref="GridErrorCode.VerificationFailed"/> and the reason.</exception>
    public void EnsureVerifies(ReadOnlySpan<byte> key, byte[]? value)
    {
        var reason = Explain(key, value);
        if (reason is not null)
            throw new GridException(GridErrorCode.VerificationFailed, $"Proof from shard {ShardId} at version {Version} rejected: {reason}.");
    }
}
