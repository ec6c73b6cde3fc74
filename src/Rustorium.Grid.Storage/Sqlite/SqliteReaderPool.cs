using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Storage.Sqlite.SqliteRecords;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>
/// A fixed set of read-only connections, each with its statements prepared once. In WAL mode a reader sees the
/// last commit that completed before its statement started and never blocks, nor is blocked by, the writer.
/// </summary>
internal sealed class SqliteReaderPool : IDisposable
{
    private readonly ConcurrentStack<SqliteReadSession> _idle = new();
    private readonly SemaphoreSlim _available;
    private readonly int _size;
    private volatile bool _disposed;

    public SqliteReaderPool(string connectionString, SqliteShardStoreOptions options)
    {
        _size = options.ReaderConnections;
        try
        {
            for (int i = 0; i < _size; i++) _idle.Push(new SqliteReadSession(connectionString, options));
        }
        catch
        {
            while (_idle.TryPop(out var s)) s.Dispose();
            throw;
        }
        _available = new SemaphoreSlim(_size, _size);
    }

    /// <summary>Waits for an idle connection (for async callers).</summary>
    public async ValueTask<Lease> RentAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _available.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Take();
    }

    /// <summary>Waits for an idle connection (for the synchronous tree-node reads).</summary>
    public Lease Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _available.Wait();
        return Take();
    }

    private Lease Take()
    {
        if (_disposed)
        {
            _available.Release();
            throw new ObjectDisposedException(nameof(SqliteShardStore));
        }
        _idle.TryPop(out var session);
        return new Lease(this, session!);
    }

    private void Return(SqliteReadSession session)
    {
        _idle.Push(session);
        _available.Release();
    }

    /// <summary>Waits for the reads in flight, then closes every connection.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int i = 0; i < _size; i++) _available.Wait();
        while (_idle.TryPop(out var session)) session.Dispose();
        _available.Dispose();
    }

    /// <summary>One rented connection; dispose to give it back.</summary>
    public readonly struct Lease(SqliteReaderPool pool, SqliteReadSession session) : IDisposable
    {
        public SqliteReadSession Session => session;

        public void Dispose() => pool.Return(session);
    }
}

/// <summary>One read-only connection and its prepared statements. Used by one thread at a time (through a lease).</summary>
internal sealed class SqliteReadSession : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _selectShards, _selectShard, _shardExists, _selectRow, _scan, _scanToEnd, _selectNode;
    private readonly SqliteParameter _shardId, _existsId, _rowShard, _rowKey, _scanShard, _scanStart, _scanEnd, _scanLimit;
    private readonly SqliteParameter _toEndShard, _toEndStart, _toEndLimit, _nodeShard, _nodePos;
    private readonly byte[] _hash = new byte[FieldBytes.Length], _storedHash = new byte[FieldBytes.Length];
    private readonly PositionBuffers _positions = new();

    public SqliteReadSession(string connectionString, SqliteShardStoreOptions options)
    {
        _connection = new SqliteConnection(connectionString);
        try
        {
            _connection.Open();
            Execute(SqliteStatements.BusyTimeout((int)options.BusyTimeout.TotalMilliseconds));
            Execute(SqliteStatements.CacheSize(options.CacheSizeKiB));

            _selectShards = Command(_connection, SqliteStatements.SelectShards);
            _selectShard = Command(_connection, SqliteStatements.SelectShard);
            _shardId = Parameter(_selectShard, "$id", SqliteType.Integer);
            _shardExists = Command(_connection, SqliteStatements.ShardExists);
            _existsId = Parameter(_shardExists, "$id", SqliteType.Integer);

            _selectRow = Command(_connection, SqliteStatements.SelectRow);
            _rowShard = Parameter(_selectRow, "$shard", SqliteType.Integer);
            _rowKey = Parameter(_selectRow, "$key", SqliteType.Blob);

            _scan = Command(_connection, SqliteStatements.ScanRows);
            _scanShard = Parameter(_scan, "$shard", SqliteType.Integer);
            _scanStart = Parameter(_scan, "$start", SqliteType.Blob);
            _scanEnd = Parameter(_scan, "$end", SqliteType.Blob);
            _scanLimit = Parameter(_scan, "$limit", SqliteType.Integer);
            _scanToEnd = Command(_connection, SqliteStatements.ScanRowsToEnd);
            _toEndShard = Parameter(_scanToEnd, "$shard", SqliteType.Integer);
            _toEndStart = Parameter(_scanToEnd, "$start", SqliteType.Blob);
            _toEndLimit = Parameter(_scanToEnd, "$limit", SqliteType.Integer);

            _selectNode = Command(_connection, SqliteStatements.SelectNode);
            _nodeShard = Parameter(_selectNode, "$shard", SqliteType.Integer);
            _nodePos = Parameter(_selectNode, "$pos", SqliteType.Blob);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
    }

    public List<ShardState> ListShards()
    {
        var shards = new List<ShardState>();
        using var r = _selectShards.ExecuteReader();
        while (r.Read()) shards.Add(ReadShard(r));
        return shards;
    }

    public ShardState? GetShard(long shardId)
    {
        _shardId.Value = shardId;
        using var r = _selectShard.ExecuteReader();
        return r.Read() ? ReadShard(r) : null;
    }

    public bool ShardExists(long shardId)
    {
        _existsId.Value = shardId;
        return _shardExists.ExecuteScalar() is not null;
    }

    public StoredRow? GetRow(long shardId, byte[] key)
    {
        _rowShard.Value = shardId;
        _rowKey.Value = key;
        try
        {
            using var r = _selectRow.ExecuteReader();
            return r.Read() ? new StoredRow(key, r.GetFieldValue<byte[]>(0), r.GetInt64(1), r.GetInt64(2)) : null;
        }
        finally
        {
            _rowKey.Value = null; // keep no reference to the caller's key
        }
    }

    public List<StoredRow> Scan(long shardId, byte[] start, byte[]? end, int limit)
    {
        SqliteCommand command;
        if (end is null)
        {
            command = _scanToEnd;
            _toEndShard.Value = shardId;
            _toEndStart.Value = start;
            _toEndLimit.Value = limit;
        }
        else
        {
            command = _scan;
            _scanShard.Value = shardId;
            _scanStart.Value = start;
            _scanEnd.Value = end;
            _scanLimit.Value = limit;
        }
        try
        {
            var rows = new List<StoredRow>(Math.Min(limit, 256));
            using var r = command.ExecuteReader();
            while (r.Read()) rows.Add(ReadRow(r));
            return rows;
        }
        finally
        {
            _toEndStart.Value = _scanStart.Value = _scanEnd.Value = null;
        }
    }

    /// <summary>
    /// The node at <paramref name="position"/> if its hash is <paramref name="hash"/>; <paramref name="boxedShardId"/> is
    /// the shard id boxed once by the node reader.
    /// </summary>
    public bool TryGetNode(object boxedShardId, in Fr hash, in SmtPosition position, out SmtNode node)
    {
        _nodeShard.Value = boxedShardId;
        _nodePos.Value = _positions.Encode(position);
        FieldBytes.Write(hash, _hash);
        using var r = _selectNode.ExecuteReader();
        if (!r.Read() || !HashIs(r, _hash))
        {
            node = default;
            return false;
        }
        node = ReadNode(r, hash, column: 1);
        return true;
    }

    // Column 0 holds the 32 bytes of the expected hash.
    private bool HashIs(SqliteDataReader r, byte[] expected)
    {
        if (r.IsDBNull(0) || r.GetBytes(0, 0, null, 0, 0) != expected.Length) return false;
        r.GetBytes(0, 0, _storedHash, 0, _storedHash.Length);
        return _storedHash.AsSpan().SequenceEqual(expected);
    }

    private void Execute(string sql)
    {
        using var c = Command(_connection, sql);
        c.ExecuteNonQuery();
    }

    public void Dispose()
    {
        _selectShards.Dispose();
        _selectShard.Dispose();
        _shardExists.Dispose();
        _selectRow.Dispose();
        _scan.Dispose();
        _scanToEnd.Dispose();
        _selectNode.Dispose();
        _connection.Dispose();
    }
}
