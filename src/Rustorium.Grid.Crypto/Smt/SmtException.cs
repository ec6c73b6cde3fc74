namespace Rustorium.Grid.Crypto.Smt;

/// <summary>Why a sparse Merkle tree operation failed. Wire/CLI-visible: explicit values, append-only.</summary>
public enum SmtErrorCode
{
    /// <summary>Insert of a key that is already in the tree.</summary>
    KeyExists = 1,

    /// <summary>Update or delete of a key that is not in the tree.</summary>
    KeyNotFound = 2,

    /// <summary>The same key appears more than once in one <see cref="SparseMerkleTree.ApplyBatch"/>.</summary>
    DuplicateKeyInBatch = 3,

    /// <summary>The store is missing a node the tree refers to, or holds a node that cannot be where it is.</summary>
    CorruptStore = 4,

    /// <summary>The store's root changed between the tree reading it and committing (two writers on one store).</summary>
    Conflict = 5,
}

/// <summary>A sparse Merkle tree operation failed; the tree and its store are unchanged.</summary>
public sealed class SmtException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SmtException(SmtErrorCode code, string message) : base(message)
    {
        Code = code;
    }

    /// <summary>What went wrong.</summary>
    public SmtErrorCode Code { get; }

    internal static SmtException KeyExists(in Fr key) =>
        new(SmtErrorCode.KeyExists, $"Key {key} is already in the tree; use Update or Upsert to change its value.");

    internal static SmtException KeyNotFound(in Fr key, string operation) =>
        new(SmtErrorCode.KeyNotFound, $"Cannot {operation} key {key}: it is not in the tree.");

    internal static SmtException DuplicateKey(in Fr key) =>
        new(SmtErrorCode.DuplicateKeyInBatch, $"Key {key} appears more than once in the batch; a batch may touch each key once.");

    internal static SmtException MissingNode(in Fr hash, int level) =>
        new(SmtErrorCode.CorruptStore, $"The node store has no node {hash} (referenced at level {level}): the store is corrupt or incomplete.");

    internal static SmtException Corrupt(string message) => new(SmtErrorCode.CorruptStore, message);
}

/// <summary>A serialized <see cref="SmtProof"/> (binary or JSON) is truncated, malformed or not canonical.</summary>
public sealed class SmtProofFormatException : FormatException
{
    /// <summary>Creates the exception with a message that says what was wrong.</summary>
    public SmtProofFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public SmtProofFormatException(string message, Exception inner) : base(message, inner) { }
}
