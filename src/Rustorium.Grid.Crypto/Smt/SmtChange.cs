namespace Rustorium.Grid.Crypto.Smt;

/// <summary>The kind of one change in <see cref="SparseMerkleTree.ApplyBatch"/>. Wire-visible: explicit values, append-only.</summary>
public enum SmtOp : byte
{
    /// <summary>Add a key that must not be present.</summary>
    Insert = 1,

    /// <summary>Change the value of a key that must be present.</summary>
    Update = 2,

    /// <summary>Remove a key that must be present (the value is ignored).</summary>
    Delete = 3,

    /// <summary>Insert the key, or update it if present.</summary>
    Upsert = 4,
}

/// <summary>One change of a batch.</summary>
/// <param name="Op">What to do.</param>
/// <param name="Key">The key.</param>
/// <param name="Value">The new value (ignored for <see cref="SmtOp.Delete"/>).</param>
public readonly record struct SmtChange(SmtOp Op, Fr Key, Fr Value)
{
    /// <summary>An insert of <paramref name="key"/> = <paramref name="value"/>.</summary>
    public static SmtChange Insert(Fr key, Fr value) => new(SmtOp.Insert, key, value);

    /// <summary>An update of <paramref name="key"/> to <paramref name="value"/>.</summary>
    public static SmtChange Update(Fr key, Fr value) => new(SmtOp.Update, key, value);

    /// <summary>A delete of <paramref name="key"/>.</summary>
    public static SmtChange Delete(Fr key) => new(SmtOp.Delete, key, Fr.Zero);

    /// <summary>An upsert of <paramref name="key"/> = <paramref name="value"/>.</summary>
    public static SmtChange Upsert(Fr key, Fr value) => new(SmtOp.Upsert, key, value);
}
