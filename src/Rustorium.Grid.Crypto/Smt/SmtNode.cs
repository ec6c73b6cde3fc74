using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Crypto.Smt;

/// <summary>What a stored sparse Merkle tree node is. Persisted: explicit values, append-only.</summary>
public enum SmtNodeKind : byte
{
    /// <summary>An inner node with two children (either may be the empty subtree, hash 0).</summary>
    Middle = 1,

    /// <summary>A leaf holding one key and its value.</summary>
    Leaf = 2,
}

/// <summary>
/// One node of the iden3 sparse Merkle tree, as kept in an <see cref="ISmtNodeStore"/> under its hash.
/// A middle node hashes to Poseidon(left, right); a leaf to Poseidon(key, value, 1) (circomlibjs
/// <c>hash0</c> / <c>hash1</c>). The empty subtree is not a node: it is the hash 0.
/// </summary>
/// <remarks>The two hash functions take a different number of inputs, so they are different Poseidon
/// permutations: a leaf can never be read as a middle node or the other way round.</remarks>
public readonly struct SmtNode : IEquatable<SmtNode>
{
    private readonly Fr _a;
    private readonly Fr _b;

    private SmtNode(SmtNodeKind kind, in Fr a, in Fr b)
    {
        Kind = kind;
        _a = a;
        _b = b;
    }

    /// <summary>Middle or leaf; 0 only for <c>default(SmtNode)</c>, which is not a valid node.</summary>
    public SmtNodeKind Kind { get; }

    /// <summary>True for a leaf.</summary>
    public bool IsLeaf => Kind == SmtNodeKind.Leaf;

    /// <summary>True for a middle node.</summary>
    public bool IsMiddle => Kind == SmtNodeKind.Middle;

    /// <summary>The left child's hash (bit 0 of the key at this level); 0 = empty subtree.</summary>
    /// <exception cref="InvalidOperationException">The node is not a middle node.</exception>
    public Fr Left => Kind == SmtNodeKind.Middle ? _a : throw WrongKind(SmtNodeKind.Middle);

    /// <summary>The right child's hash (bit 1 of the key at this level); 0 = empty subtree.</summary>
    /// <exception cref="InvalidOperationException">The node is not a middle node.</exception>
    public Fr Right => Kind == SmtNodeKind.Middle ? _b : throw WrongKind(SmtNodeKind.Middle);

    /// <summary>The leaf's key.</summary>
    /// <exception cref="InvalidOperationException">The node is not a leaf.</exception>
    public Fr Key => Kind == SmtNodeKind.Leaf ? _a : throw WrongKind(SmtNodeKind.Leaf);

    /// <summary>The leaf's value.</summary>
    /// <exception cref="InvalidOperationException">The node is not a leaf.</exception>
    public Fr Value => Kind == SmtNodeKind.Leaf ? _b : throw WrongKind(SmtNodeKind.Leaf);

    /// <summary>First field without a kind check: left child or key (for code that switched on <see cref="Kind"/>).</summary>
    internal Fr A => _a;

    /// <summary>Second field without a kind check: right child or value.</summary>
    internal Fr B => _b;

    /// <summary>A middle node over two child hashes (0 = empty subtree).</summary>
    public static SmtNode Middle(in Fr left, in Fr right) => new(SmtNodeKind.Middle, left, right);

    /// <summary>A leaf for <paramref name="key"/> holding <paramref name="value"/>.</summary>
    public static SmtNode Leaf(in Fr key, in Fr value) => new(SmtNodeKind.Leaf, key, value);

    /// <summary>
    /// The node's hash, its address in the store: Poseidon(left, right) for a middle node,
    /// Poseidon(key, value, 1) for a leaf. Costs one Poseidon permutation; callers cache it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The node is <c>default</c> (no kind).</exception>
    public Fr Hash() => Kind switch
    {
        SmtNodeKind.Middle => PoseidonHash.Hash(_a, _b),
        SmtNodeKind.Leaf => PoseidonHash.Hash(_a, _b, Fr.One),
        _ => throw new InvalidOperationException("default(SmtNode) is not a node and has no hash."),
    };

    /// <inheritdoc />
    public bool Equals(SmtNode other) => Kind == other.Kind && _a == other._a && _b == other._b;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is SmtNode other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Kind, _a, _b);

    /// <summary>Equality of kind and both fields.</summary>
    public static bool operator ==(SmtNode left, SmtNode right) => left.Equals(right);

    /// <summary>Inequality of kind or either field.</summary>
    public static bool operator !=(SmtNode left, SmtNode right) => !left.Equals(right);

    /// <summary>"Middle(left, right)" or "Leaf(key, value)" in decimal.</summary>
    public override string ToString() => Kind switch
    {
        SmtNodeKind.Middle => $"Middle({_a}, {_b})",
        SmtNodeKind.Leaf => $"Leaf({_a}, {_b})",
        _ => "(no node)",
    };

    private InvalidOperationException WrongKind(SmtNodeKind wanted) =>
        new($"This SMT node is a {(Kind == 0 ? "default (invalid) node" : Kind.ToString())}, not a {wanted} node.");
}
