using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>
/// Stores tree nodes at their positions in <c>tree_nodes</c> (replacing what is there) on one connection: the writer's
/// commits and the schema-4 migration's copy both run it, so a node's columns are bound in one place.
/// </summary>
internal sealed class SqliteNodeUpsert : IDisposable
{
    private readonly SqliteRawStatement _statement;
    private readonly int _shard, _pos, _hash, _kind, _a, _b;

    public SqliteNodeUpsert(SqliteConnection connection)
    {
        _statement = new SqliteRawStatement(connection, SqliteStatements.UpsertNode);
        _shard = _statement.Parameter("$shard");
        _pos = _statement.Parameter("$pos");
        _hash = _statement.Parameter("$hash");
        _kind = _statement.Parameter("$kind");
        _a = _statement.Parameter("$a");
        _b = _statement.Parameter("$b");
    }

    /// <summary>The shard the following <see cref="TryStore"/> calls write to.</summary>
    public void BindShard(long shardId) => _statement.Bind(_shard, shardId);

    /// <summary>
    /// Stores <paramref name="entry"/>'s node at its position: a middle node's children or a leaf's key and value in
    /// columns a and b. False, and nothing written, for a node of no valid kind (the caller says how that is refused).
    /// </summary>
    public bool TryStore(in SmtNodeEntry entry)
    {
        var (hash, node, position) = entry;
        Crypto.Fr a, b;
        switch (node.Kind)
        {
            case SmtNodeKind.Middle:
                (a, b) = (node.Left, node.Right);
                break;
            case SmtNodeKind.Leaf:
                (a, b) = (node.Key, node.Value);
                break;
            default:
                return false;
        }
        Span<byte> bytes = stackalloc byte[Math.Max(SmtPosition.MaxEncodedLength, FieldBytes.Length)];
        _statement.Bind(_pos, bytes[..position.Encode(bytes)]);
        _statement.Bind(_kind, (long)node.Kind);
        a.WriteBigEndian(bytes);
        _statement.Bind(_a, bytes[..FieldBytes.Length]);
        b.WriteBigEndian(bytes);
        _statement.Bind(_b, bytes[..FieldBytes.Length]);
        hash.WriteBigEndian(bytes);
        _statement.Bind(_hash, bytes[..FieldBytes.Length]);
        _statement.Execute();
        return true;
    }

    public void Dispose() => _statement.Dispose();
}
