namespace Rustorium.Grid.Crypto.Smt;

/// <summary>
/// A Merkle proof about one key of a <see cref="SparseMerkleTree"/>, in circomlib's terms: either
/// <b>inclusion</b> (<see cref="Exists"/>: the key holds <see cref="Value"/>) or <b>non-inclusion</b>,
/// where the key's path ends in an empty branch (<see cref="IsOld0"/>) or in the leaf of another key
/// (<see cref="OldKey"/>, <see cref="OldValue"/>). Immutable.
/// </summary>
/// <remarks>
/// <para>Every instance has canonical shape (checked on construction): at most
/// <see cref="SparseMerkleTree.MaxDepth"/> siblings, the last one non-zero (circomlibjs trims trailing
/// zeros), fields that the kind of proof does not use are zero. Whether the proof is <i>true</i> is a
/// separate question answered by <see cref="Verify"/> / <see cref="SmtVerifier"/>.</para>
/// <para>Serialized forms: the compact binary <see cref="Encode"/> / <see cref="Decode"/>, JSON
/// (<see cref="ToJson()"/> / <see cref="FromJson"/>) and circom witness input
/// (<see cref="ToCircomInputJson"/>); see docs/proofs.md.</para>
/// </remarks>
public sealed partial class SmtProof : IEquatable<SmtProof>
{
    private readonly Fr[] _siblings;

    /// <summary>Builds a proof from its parts.</summary>
    /// <param name="root">The tree root the proof is about.</param>
    /// <param name="key">The key the proof is about.</param>
    /// <param name="exists">True for inclusion, false for non-inclusion.</param>
    /// <param name="value">The key's value (inclusion); must be 0 for non-inclusion.</param>
    /// <param name="siblings">Sibling hashes from the root (level 0) downward; the last one non-zero.</param>
    /// <param name="isOld0">Non-inclusion only: the path ends in an empty branch.</param>
    /// <param name="oldKey">Non-inclusion with a leaf at the end of the path: that leaf's key; else 0.</param>
    /// <param name="oldValue">Non-inclusion with a leaf at the end of the path: that leaf's value; else 0.</param>
    /// <exception cref="ArgumentException">The parts do not form a canonical proof (see remarks on the type).</exception>
    public SmtProof(Fr root, Fr key, bool exists, Fr value, ReadOnlySpan<Fr> siblings, bool isOld0, Fr oldKey, Fr oldValue)
    {
        var problem = ShapeProblem(exists, value, siblings, isOld0, oldKey, oldValue);
        if (problem is not null) throw new ArgumentException(problem);
        Root = root;
        Key = key;
        Exists = exists;
        Value = value;
        IsOld0 = isOld0;
        OldKey = oldKey;
        OldValue = oldValue;
        _siblings = siblings.ToArray();
    }

    /// <summary>The root this proof is about.</summary>
    public Fr Root { get; }

    /// <summary>The key this proof is about.</summary>
    public Fr Key { get; }

    /// <summary>True: inclusion of <see cref="Key"/> with <see cref="Value"/>. False: non-inclusion of <see cref="Key"/>.</summary>
    public bool Exists { get; }

    /// <summary>The key's value for an inclusion proof; 0 otherwise.</summary>
    public Fr Value { get; }

    /// <summary>Non-inclusion whose path ends in an empty branch (circomlib <c>isOld0</c>).</summary>
    public bool IsOld0 { get; }

    /// <summary>Non-inclusion whose path ends in another leaf: that leaf's key. 0 otherwise.</summary>
    public Fr OldKey { get; }

    /// <summary>Non-inclusion whose path ends in another leaf: that leaf's value. 0 otherwise.</summary>
    public Fr OldValue { get; }

    /// <summary>The sibling hashes from the root (index 0 = level 0) downward, as a fresh copy.</summary>
    public Fr[] Siblings => (Fr[])_siblings.Clone();

    /// <summary>The sibling hashes without copying.</summary>
    public ReadOnlySpan<Fr> SiblingSpan => _siblings;

    /// <summary>Number of siblings: the level of the leaf or empty branch the proof ends at (0..254).</summary>
    public int Depth => _siblings.Length;

    /// <summary>True if the proof is consistent and recomputes to its own <see cref="Root"/> (see <see cref="SmtVerifier.Verify"/>).</summary>
    public bool Verify() => SmtVerifier.Verify(this, Root);

    /// <summary>True if the proof is consistent and recomputes to <paramref name="expectedRoot"/> (which must also be its <see cref="Root"/>).</summary>
    public bool VerifyAgainst(Fr expectedRoot) => SmtVerifier.Verify(this, expectedRoot);

    /// <summary>Same root, key, kind, value, siblings and old leaf.</summary>
    public bool Equals(SmtProof? other) =>
        other is not null && Root == other.Root && Key == other.Key && Exists == other.Exists && Value == other.Value
        && IsOld0 == other.IsOld0 && OldKey == other.OldKey && OldValue == other.OldValue
        && _siblings.AsSpan().SequenceEqual(other._siblings);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as SmtProof);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Root, Key, Exists, Value, OldKey, Depth);

    /// <summary>A one-line description, e.g. "inclusion of key 7 = 77 at depth 2 under root …".</summary>
    public override string ToString() =>
        Exists ? $"inclusion of key {Key} = {Value} at depth {Depth} under root {Root}"
        : IsOld0 ? $"non-inclusion of key {Key} (empty branch at depth {Depth}) under root {Root}"
        : $"non-inclusion of key {Key} (leaf of key {OldKey} at depth {Depth}) under root {Root}";

    private static string? ShapeProblem(bool exists, in Fr value, ReadOnlySpan<Fr> siblings, bool isOld0, in Fr oldKey, in Fr oldValue)
    {
        if (siblings.Length > SparseMerkleTree.MaxDepth)
            return $"A proof has at most {SparseMerkleTree.MaxDepth} siblings; got {siblings.Length}.";
        if (siblings.Length > 0 && siblings[^1].IsZero)
            return "The last sibling is zero; trailing zero siblings must be trimmed.";
        if (exists && isOld0) return "An inclusion proof cannot end in an empty branch (exists and isOld0 both set).";
        if (exists && !(oldKey.IsZero && oldValue.IsZero)) return "An inclusion proof has no old leaf: oldKey and oldValue must be 0.";
        if (!exists && !value.IsZero) return "A non-inclusion proof has no value: value must be 0.";
        if (isOld0 && !(oldKey.IsZero && oldValue.IsZero)) return "A proof ending in an empty branch has no old leaf: oldKey and oldValue must be 0.";
        return null;
    }
}
