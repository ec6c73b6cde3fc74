using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>Reading stored records back into the contract's types, refusing anything a healthy store cannot contain.</summary>
internal static class SqliteRecords
{
    public static SqliteCommand Command(SqliteConnection connection, string sql) => new(sql, connection);

    public static SqliteParameter Parameter(SqliteCommand command, string name, SqliteType type)
    {
        var p = new SqliteParameter(name, type);
        command.Parameters.Add(p);
        return p;
    }

    /// <summary>A shard row in <see cref="SqliteStatements"/>' shard column order.</summary>
    public static ShardState ReadShard(SqliteDataReader r)
    {
        long id = r.GetInt64(0);
        var range = ReadRange(r, 1, id);
        var root = ReadField(r, 5, $"root of shard {id}");
        return new ShardState(id, range, r.GetInt64(3), r.GetInt64(4), root, r.GetInt64(6), r.GetInt64(7), r.GetInt64(8));
    }

    /// <summary>A range from (range_start, range_end) at <paramref name="ordinal"/> and the next column.</summary>
    public static KeyRange ReadRange(SqliteDataReader r, int ordinal, long shardId)
    {
        var start = r.GetFieldValue<byte[]>(ordinal);
        var end = r.IsDBNull(ordinal + 1) ? null : r.GetFieldValue<byte[]>(ordinal + 1);
        try
        {
            return new KeyRange(start, end);
        }
        catch (GridException e)
        {
            throw new GridException(GridErrorCode.Corrupted, $"Stored range of shard {shardId} is invalid: {e.Message}", e);
        }
    }

    public static Fr ReadField(SqliteDataReader r, int ordinal, string what) => FieldBytes.Read(r.GetFieldValue<byte[]>(ordinal), what);

    /// <summary>A node from the columns kind, a, b starting at <paramref name="column"/>.</summary>
    public static SmtNode ReadNode(SqliteDataReader r, in Fr hash, int column = 0) =>
        NodeFrom(r.GetInt64(column), r.GetFieldValue<byte[]>(column + 1), r.GetFieldValue<byte[]>(column + 2), hash);

    /// <summary>The node <paramref name="hash"/> from its stored kind and fields.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> for an unknown kind or a field that is no canonical element.</exception>
    public static SmtNode NodeFrom(long kind, ReadOnlySpan<byte> aBytes, ReadOnlySpan<byte> bBytes, in Fr hash)
    {
        var a = FieldBytes.ReadOfNode(aBytes, "child/key", hash);
        var b = FieldBytes.ReadOfNode(bBytes, "child/value", hash);
        return kind switch
        {
            (long)SmtNodeKind.Middle => SmtNode.Middle(a, b),
            (long)SmtNodeKind.Leaf => SmtNode.Leaf(a, b),
            _ => throw new GridException(GridErrorCode.Corrupted, $"Stored node {hash} has unknown kind {kind}: the store is corrupt."),
        };
    }

    /// <summary>A row of (key, value, version, ts).</summary>
    public static StoredRow ReadRow(SqliteDataReader r) =>
        new(r.GetFieldValue<byte[]>(0), r.GetFieldValue<byte[]>(1), r.GetInt64(2), r.GetInt64(3));

    /// <summary>The bytes of <paramref name="memory"/> as an array to bind, without copying when it already is a whole array.</summary>
    public static byte[] AsArray(ReadOnlyMemory<byte> memory) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(memory, out var segment)
        && segment.Offset == 0 && segment.Array is not null && segment.Count == segment.Array.Length
            ? segment.Array
            : memory.ToArray();

    public static long NowMicros() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
}
