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
    private readonly SqliteCommand _selectShards, _selectShard, _shardExists, _selectRow, _scan, _scanToEnd;
    private readonly SqliteRawStatement _selectNode;   // once per tree node a fold reads: allocation-free
    private readonly SqliteParameter _shardId, _existsId, _rowShard, _rowKey, _scanShard, _scanStart, _scanEnd, _scanLimit;
    private readonly SqliteParameter _toEndShard, _toEndStart, _toEndLimit;
    private readonly int _nodeShard, _nodePos;

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

            _selectNode = new SqliteRawStatement(_connection, SqliteStatements.SelectNode);
            _nodeShard = _selectNode.Parameter("$shard");
            _nodePos = _selectNode.Parameter("$pos");
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

    /// <summary>The node at <paramref name="position"/> of the shard if its hash is <paramref name="hash"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Corrupted"/> if the row holds no node (a bad kind or field).</exception>
    public bool TryGetNode(long shardId, in Fr hash, in SmtPosition position, out SmtNode node)
    {
        Span<byte> bytes = stackalloc byte[SmtPosition.MaxEncodedLength];
        _selectNode.Bind(_nodeShard, shardId);
        _selectNode.Bind(_nodePos, bytes[..position.Encode(bytes)]);
        try
        {
            // Columns: hash, kind, a, b. A row holding another hash is not this node (a stale or corrupt position).
            if (!_selectNode.Read() || !_selectNode.IsBlob(0) || !HashIs(_selectNode.Blob(0), hash))
            {
                node = default;
                return false;
            }
            node = NodeFrom(_selectNode.Int64(1), _selectNode.Blob(2), _selectNode.Blob(3), hash);
            return true;
        }
        finally
        {
            _selectNode.Reset();
        }
    }

    private static bool HashIs(ReadOnlySpan<byte> stored, in Fr expected)
    {
        Span<byte> bytes = stackalloc byte[FieldBytes.Length];
        expected.WriteBigEndian(bytes);
        return stored.SequenceEqual(bytes);
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
