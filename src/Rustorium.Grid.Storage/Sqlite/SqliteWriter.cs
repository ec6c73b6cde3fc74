using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Storage.Sqlite.SqliteRecords;
using Stopwatch = System.Diagnostics.Stopwatch;

namespace Rustorium.Grid.Storage.Sqlite;

/// <summary>
/// The store's only writing connection, driven by one dedicated thread that takes write jobs (initialize, claim, commit, split, merge)
/// from a queue. Jobs that queue up together are folded into one SQLite transaction — one WAL fsync for all of them —
/// each inside its own savepoint, so each still succeeds or fails alone. A job's task completes only after the
/// transaction holding it is durably committed.
/// </summary>
/// <remarks>
/// Why a thread: Microsoft.Data.Sqlite is synchronous underneath (its async methods block), and a commit waits for an
/// fsync. Running commits on the callers' threads would block grain turns for the length of a disk flush; one writer
/// thread keeps them free, serialises writes the way SQLite does anyway, and is where group commit happens naturally.
/// </remarks>
internal sealed class SqliteWriter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly string _path;
    private readonly int _maxGroup;
    private readonly BlockingCollection<WriteJob> _queue = new(new ConcurrentQueue<WriteJob>());
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Thread _thread;

    private readonly SqliteCommand[] _commands;
    private readonly SqliteCommand _countShards, _selectShards, _insertShard, _claimShard, _selectForCommit, _updateShard;
    // Run for every row and tree node written: bound by index, allocation-free (SqliteRawStatement).
    private readonly SqliteRawStatement _insertRow, _updateRow, _deleteRow, _deleteNode, _insertUnfolded;
    private readonly SqliteNodeUpsert _insertNode;
    private readonly SqliteRawStatement[] _rawStatements;
    private readonly SqliteParameter _insShardId, _insStart, _insEnd, _insRoot, _insUpdatedAt, _claimId, _forCommitId;
    private readonly SqliteParameter _updVersion, _updRoot, _updKeyCount, _updUpdatedAt, _updId, _updEpoch, _updExpected;
    private readonly int _irShard, _irKey, _irValue, _irVersion, _irTs, _urShard, _urKey, _urValue, _urVersion, _urTs;
    private readonly int _drShard, _drKey, _dnShard, _dnPos, _iuShard, _iuVersion, _iuKey;
    private readonly SqliteCommand _allocateShardIds, _insertSplitShard, _updateShardRange, _deleteShard, _countRowsFrom, _moveRowsFrom, _deleteShardNodes;
    private readonly SqliteParameter _ssId, _ssStart, _ssEnd, _ssVersion, _ssEpoch, _ssRoot, _ssKeyCount, _ssUpdatedAt;
    private readonly SqliteParameter _urgEnd, _urgVersion, _urgRoot, _urgKeyCount, _urgUpdatedAt, _urgId, _urgEpoch, _urgExpected;
    private readonly SqliteParameter _dsId, _dsEpoch, _dsExpected, _crShard, _crFrom, _mrShard, _mrTo, _mrFrom, _dsnShard, _allocCount;
    // The tree's lag (0003): unfolded keys of data commits, tree commits.
    private readonly SqliteCommand _deleteUnfoldedThrough, _deleteShardUnfolded, _selectForTree, _updateTree, _selectUnfolded;

    public SqliteWriter(SqliteConnection connection, string path, int maxCommitsPerTransaction, ShardStoreMeter meter)
    {
        _connection = connection;
        _path = path;
        _maxGroup = maxCommitsPerTransaction;
        _meter = meter;

        _countShards = Command(connection, SqliteStatements.CountShards);
        _selectShards = Command(connection, SqliteStatements.SelectShards);
        _insertShard = Command(connection, SqliteStatements.InsertShard);
        _insShardId = Parameter(_insertShard, "$id", SqliteType.Integer);
        _insStart = Parameter(_insertShard, "$range_start", SqliteType.Blob);
        _insEnd = Parameter(_insertShard, "$range_end", SqliteType.Blob);
        _insRoot = Parameter(_insertShard, "$root", SqliteType.Blob);
        _insUpdatedAt = Parameter(_insertShard, "$updated_at", SqliteType.Integer);
        _claimShard = Command(connection, SqliteStatements.ClaimShard);
        _claimId = Parameter(_claimShard, "$id", SqliteType.Integer);

        _selectForCommit = Command(connection, SqliteStatements.SelectShardForCommit);
        _forCommitId = Parameter(_selectForCommit, "$id", SqliteType.Integer);
        _updateShard = Command(connection, SqliteStatements.UpdateShardAfterCommit);
        _updVersion = Parameter(_updateShard, "$version", SqliteType.Integer);
        _updRoot = Parameter(_updateShard, "$root", SqliteType.Blob);
        _updKeyCount = Parameter(_updateShard, "$key_count", SqliteType.Integer);
        _updUpdatedAt = Parameter(_updateShard, "$updated_at", SqliteType.Integer);
        _updId = Parameter(_updateShard, "$id", SqliteType.Integer);
        _updEpoch = Parameter(_updateShard, "$epoch", SqliteType.Integer);
        _updExpected = Parameter(_updateShard, "$expected_version", SqliteType.Integer);

        _insertRow = new SqliteRawStatement(connection, SqliteStatements.InsertRowIfAbsent);
        _irShard = _insertRow.Parameter("$shard");
        _irKey = _insertRow.Parameter("$key");
        _irValue = _insertRow.Parameter("$value");
        _irVersion = _insertRow.Parameter("$version");
        _irTs = _insertRow.Parameter("$ts");
        _updateRow = new SqliteRawStatement(connection, SqliteStatements.UpdateRow);
        _urShard = _updateRow.Parameter("$shard");
        _urKey = _updateRow.Parameter("$key");
        _urValue = _updateRow.Parameter("$value");
        _urVersion = _updateRow.Parameter("$version");
        _urTs = _updateRow.Parameter("$ts");
        _deleteRow = new SqliteRawStatement(connection, SqliteStatements.DeleteRow);
        _drShard = _deleteRow.Parameter("$shard");
        _drKey = _deleteRow.Parameter("$key");

        _insertNode = new SqliteNodeUpsert(connection);
        _deleteNode = new SqliteRawStatement(connection, SqliteStatements.DeleteNode);
        _dnShard = _deleteNode.Parameter("$shard");
        _dnPos = _deleteNode.Parameter("$pos");

        _allocateShardIds = Command(connection, SqliteStatements.AllocateShardIds);
        _allocCount = Parameter(_allocateShardIds, "$count", SqliteType.Integer);
        _insertSplitShard = Command(connection, SqliteStatements.InsertSplitShard);
        _ssId = Parameter(_insertSplitShard, "$id", SqliteType.Integer);
        _ssStart = Parameter(_insertSplitShard, "$range_start", SqliteType.Blob);
        _ssEnd = Parameter(_insertSplitShard, "$range_end", SqliteType.Blob);
        _ssVersion = Parameter(_insertSplitShard, "$version", SqliteType.Integer);
        _ssEpoch = Parameter(_insertSplitShard, "$epoch", SqliteType.Integer);
        _ssRoot = Parameter(_insertSplitShard, "$root", SqliteType.Blob);
        _ssKeyCount = Parameter(_insertSplitShard, "$key_count", SqliteType.Integer);
        _ssUpdatedAt = Parameter(_insertSplitShard, "$updated_at", SqliteType.Integer);
        _updateShardRange = Command(connection, SqliteStatements.UpdateShardRange);
        _urgEnd = Parameter(_updateShardRange, "$range_end", SqliteType.Blob);
        _urgVersion = Parameter(_updateShardRange, "$version", SqliteType.Integer);
        _urgRoot = Parameter(_updateShardRange, "$root", SqliteType.Blob);
        _urgKeyCount = Parameter(_updateShardRange, "$key_count", SqliteType.Integer);
        _urgUpdatedAt = Parameter(_updateShardRange, "$updated_at", SqliteType.Integer);
        _urgId = Parameter(_updateShardRange, "$id", SqliteType.Integer);
        _urgEpoch = Parameter(_updateShardRange, "$epoch", SqliteType.Integer);
        _urgExpected = Parameter(_updateShardRange, "$expected_version", SqliteType.Integer);
        _deleteShard = Command(connection, SqliteStatements.DeleteShard);
        _dsId = Parameter(_deleteShard, "$id", SqliteType.Integer);
        _dsEpoch = Parameter(_deleteShard, "$epoch", SqliteType.Integer);
        _dsExpected = Parameter(_deleteShard, "$expected_version", SqliteType.Integer);
        _countRowsFrom = Command(connection, SqliteStatements.CountRowsFrom);
        _crShard = Parameter(_countRowsFrom, "$shard", SqliteType.Integer);
        _crFrom = Parameter(_countRowsFrom, "$from", SqliteType.Blob);
        _moveRowsFrom = Command(connection, SqliteStatements.MoveRowsFrom);
        _mrShard = Parameter(_moveRowsFrom, "$shard", SqliteType.Integer);
        _mrTo = Parameter(_moveRowsFrom, "$to", SqliteType.Integer);
        _mrFrom = Parameter(_moveRowsFrom, "$from", SqliteType.Blob);
        _deleteShardNodes = Command(connection, SqliteStatements.DeleteShardNodes);
        _dsnShard = Parameter(_deleteShardNodes, "$shard", SqliteType.Integer);

        _insertUnfolded = new SqliteRawStatement(connection, SqliteStatements.InsertUnfoldedKey);
        _iuShard = _insertUnfolded.Parameter("$shard");
        _iuVersion = _insertUnfolded.Parameter("$version");
        _iuKey = _insertUnfolded.Parameter("$key");
        _rawStatements = [_insertRow, _updateRow, _deleteRow, _deleteNode, _insertUnfolded];
        _deleteUnfoldedThrough = Command(connection, SqliteStatements.DeleteUnfoldedThrough);
        Parameter(_deleteUnfoldedThrough, "$shard", SqliteType.Integer);
        Parameter(_deleteUnfoldedThrough, "$version", SqliteType.Integer);
        _deleteShardUnfolded = Command(connection, SqliteStatements.DeleteShardUnfolded);
        Parameter(_deleteShardUnfolded, "$shard", SqliteType.Integer);
        _selectForTree = Command(connection, SqliteStatements.SelectShardForTreeCommit);
        Parameter(_selectForTree, "$id", SqliteType.Integer);
        _updateTree = Command(connection, SqliteStatements.UpdateShardTree);
        Parameter(_updateTree, "$root", SqliteType.Blob);
        Parameter(_updateTree, "$tree_version", SqliteType.Integer);
        Parameter(_updateTree, "$id", SqliteType.Integer);
        Parameter(_updateTree, "$epoch", SqliteType.Integer);
        Parameter(_updateTree, "$expected", SqliteType.Integer);
        _selectUnfolded = Command(connection, SqliteStatements.SelectUnfolded);
        Parameter(_selectUnfolded, "$shard", SqliteType.Integer);

        _commands =
        [
            _countShards, _selectShards, _insertShard, _claimShard, _selectForCommit, _updateShard,
            _allocateShardIds, _insertSplitShard, _updateShardRange, _deleteShard, _countRowsFrom, _moveRowsFrom, _deleteShardNodes,
            _deleteUnfoldedThrough, _deleteShardUnfolded, _selectForTree, _updateTree, _selectUnfolded,
        ];

        _thread = new Thread(Run) { IsBackground = true, Name = "Rustorium shard store writer" };
    }

    private readonly ShardStoreMeter _meter;

    // What the jobs of the running transaction wrote: handed to the meter once COMMIT returned, dropped if it rolls back.
    private StoreWork _pending;

    /// <summary>Starts the writer thread (once the rest of the store opened).</summary>
    public void Start() => _thread.Start();

    /// <summary>Queues a job; its task completes once the transaction that ran it is durable (or it failed).</summary>
    public Task<T> Enqueue<T>(Func<SqliteWriter, T> apply, CancellationToken cancellationToken)
    {
        var job = new WriteJob<T>(apply, cancellationToken);
        try
        {
            _queue.Add(job, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(SqliteShardStore), "The shard store is closed.");
        }
        return job.Task;
    }

    /// <summary>Lets queued jobs finish, then stops the thread.</summary>
    public Task StopAsync()
    {
        _queue.CompleteAdding();
        return _thread.ThreadState.HasFlag(ThreadState.Unstarted) ? Task.CompletedTask : _stopped.Task;
    }

    // ---------------------------------------------------------------- the thread

    private void Run()
    {
        var group = new List<WriteJob>(_maxGroup);
        try
        {
            foreach (var first in _queue.GetConsumingEnumerable())
            {
                group.Add(first);
                while (group.Count < _maxGroup && _queue.TryTake(out var next)) group.Add(next);
                try
                {
                    ProcessGroup(group);
                }
                catch (Exception e)
                {
                    // A bug in the loop itself: fail what is left rather than leave callers waiting forever.
                    foreach (var job in group) job.Fail(e);
                }
                group.Clear();
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private void ProcessGroup(List<WriteJob> group)
    {
        group.RemoveAll(static job => !job.TryStart());
        if (group.Count == 0) return;
        _pending = default;

        SqliteTransaction? tx = null;
        try
        {
            tx = _connection.BeginTransaction(); // BEGIN IMMEDIATE: take the write lock now, not half-way through
            foreach (var command in _commands) command.Transaction = tx;
            if (group.Count == 1)
            {
                // Alone in its transaction: no savepoint needed (in WAL mode a savepoint copies every page the job
                // touches into a sub-journal); a failure rolls the whole transaction back.
                var job = group[0];
                try
                {
                    job.Apply(this);
                }
                catch (Exception e)
                {
                    job.SetFailure(Translate(e, "Write"));
                    tx.Rollback();
                    tx.Dispose();
                    tx = null;
                    job.Complete();
                    return;
                }
            }
            else
            {
                foreach (var job in group)
                {
                    tx.Save("job");
                    try
                    {
                        job.Apply(this);
                        tx.Release("job");
                    }
                    catch (Exception e)
                    {
                        job.SetFailure(Translate(e, "Write"));
                        // Undo this job only. If SQLite already rolled the whole transaction back (disk full, I/O
                        // error), this throws and the outer handler fails the whole group: nothing of it was written.
                        tx.Rollback("job");
                        tx.Release("job");
                    }
                }
            }
            long syncStart = Stopwatch.GetTimestamp();
            tx.Commit();
            tx = null;
            _meter.Committed(_pending, Stopwatch.GetTimestamp() - syncStart);
            foreach (var job in group) job.Complete();
        }
        catch (Exception e)
        {
            var failure = Translate(e, "Commit");
            foreach (var job in group) job.Fail(failure);
        }
        finally
        {
            if (tx is not null)
            {
                try
                {
                    tx.Dispose(); // rolls back whatever is left
                }
                catch (SqliteException)
                {
                    // Nothing to roll back any more: SQLite ended the transaction itself.
                }
            }
            foreach (var command in _commands) command.Transaction = null;
        }
    }

    private Exception Translate(Exception e, string operation) =>
        e is SqliteException s ? SqliteErrors.Map(s, _path, operation) : e;

    // ---------------------------------------------------------------- jobs (run on the thread, inside the transaction)

    /// <summary>Creates the layout if the store holds no shards; returns every shard.</summary>
    public List<ShardState> Initialize(IReadOnlyList<KeyRange> layout, long nowMicros)
    {
        if (Convert.ToInt64(_countShards.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            var sorted = ShardLayout.Validate(layout);
            var zeroRoot = FieldBytes.ToBytes(Fr.Zero);
            // From the counter like a split's (1…n in a new store), so the layout's ids are never given again either.
            long firstId = AllocateShardIds(sorted.Count) - sorted.Count + 1;
            for (int i = 0; i < sorted.Count; i++)
            {
                _insShardId.Value = firstId + i;
                _insStart.Value = sorted[i].Start.ToArray();
                _insEnd.Value = sorted[i].IsUnbounded ? DBNull.Value : sorted[i].End.ToArray();
                _insRoot.Value = zeroRoot;
                _insUpdatedAt.Value = nowMicros;
                _insertShard.ExecuteNonQuery();
            }
        }
        var shards = new List<ShardState>();
        using var r = _selectShards.ExecuteReader();
        while (r.Read()) shards.Add(ReadShard(r));
        return shards;
    }

    public ShardState Claim(long shardId)
    {
        _claimId.Value = shardId;
        using var r = _claimShard.ExecuteReader();
        return r.Read() ? ReadShard(r) : throw CommitChecks.UnknownShard(shardId);
    }

    /// <summary>
    /// Applies one commit: checks the shard's epoch and version, the rows' range, writes rows and nodes, checks the
    /// resulting key count and moves the shard's version and root. Any failure leaves the job's savepoint to be rolled back.
    /// </summary>
    public bool Commit(ShardCommit commit, RowWrite[] sortedRows, int rowCount)
    {
        long start = Stopwatch.GetTimestamp();
        _forCommitId.Value = commit.ShardId;
        long epoch, version, keyCount, treeVersion;
        KeyRange range;
        using (var r = _selectForCommit.ExecuteReader())
        {
            if (!r.Read()) throw CommitChecks.UnknownShard(commit.ShardId);
            epoch = r.GetInt64(0);
            version = r.GetInt64(1);
            if (epoch != commit.Epoch || version != commit.ExpectedVersion) throw CommitChecks.Conflict(commit, epoch, version);
            range = ReadRange(r, 2, commit.ShardId);
            keyCount = r.GetInt64(4);
            treeVersion = r.GetInt64(5);
        }
        CommitChecks.CheckCombined(commit, treeVersion);
        var rows = sortedRows.AsSpan(0, rowCount);
        CommitChecks.CheckInRange(commit, range, rows);

        object shard = commit.ShardId, newVersion = commit.NewVersion, ts = commit.TimestampMicros;
        BindShard(commit.ShardId);
        _insertRow.Bind(_irVersion, commit.NewVersion);
        _updateRow.Bind(_urVersion, commit.NewVersion);
        _insertRow.Bind(_irTs, commit.TimestampMicros);
        _updateRow.Bind(_urTs, commit.TimestampMicros);
        long inserted = 0, deleted = 0;
        // SQLite copies what is bound: nothing keeps the caller's arrays.
        foreach (ref readonly var row in rows)
        {
            if (row.Value is null)
            {
                _deleteRow.Bind(_drKey, row.Key);
                deleted += _deleteRow.Execute();
                continue;
            }
            _insertRow.Bind(_irKey, row.Key);
            _insertRow.Bind(_irValue, row.Value);
            if (_insertRow.Execute() == 1)
            {
                inserted++;
                continue;
            }
            _updateRow.Bind(_urKey, row.Key);
            _updateRow.Bind(_urValue, row.Value);
            if (_updateRow.Execute() != 1)
                throw new GridException(GridErrorCode.Internal, $"Row {Convert.ToHexStringLower(row.Key)} of shard {commit.ShardId} neither inserted nor updated.");
        }
        long newKeyCount = CommitChecks.CheckKeyCount(commit, keyCount, inserted, deleted);
        if (commit.NewRoot is null) RecordUnfolded(commit.ShardId, commit.NewVersion, rows);

        ChangeNodes(commit.RemovedPositions, commit.AddedNodes, $"Commit to shard {commit.ShardId}", nameof(ShardCommit.AddedNodes));

        _updVersion.Value = newVersion;
        _updRoot.Value = commit.NewRoot is { } root ? FieldBytes.ToBytes(root) : DBNull.Value;
        _updKeyCount.Value = newKeyCount;
        _updUpdatedAt.Value = ts;
        _updId.Value = shard;
        _updEpoch.Value = commit.Epoch;
        _updExpected.Value = commit.ExpectedVersion;
        if (_updateShard.ExecuteNonQuery() != 1)
            throw new GridException(GridErrorCode.Internal, $"Shard {commit.ShardId} changed under its own commit.");
        _pending += StoreWork.Data(commit, rowCount, Stopwatch.GetTimestamp() - start);
        return true;
    }

    /// <summary>Binds <paramref name="shardId"/> to every per-row statement that names a shard.</summary>
    private void BindShard(long shardId)
    {
        _insertRow.Bind(_irShard, shardId);
        _updateRow.Bind(_urShard, shardId);
        _deleteRow.Bind(_drShard, shardId);
        _insertNode.BindShard(shardId);
        _deleteNode.Bind(_dnShard, shardId);
    }

    /// <summary>
    /// Empties the removed positions, then stores the added nodes at theirs, in the shard last given to
    /// <see cref="BindShard"/>: a position in both lists ends up holding the added node. For combined commits and
    /// tree commits alike.
    /// </summary>
    private void ChangeNodes(IReadOnlyList<SmtPosition> removed, IReadOnlyList<SmtNodeEntry> added, string what, string list)
    {
        Span<byte> pos = stackalloc byte[SmtPosition.MaxEncodedLength];
        foreach (var position in removed)
        {
            _deleteNode.Bind(_dnPos, pos[..position.Encode(pos)]);
            _deleteNode.Execute();
        }
        InsertNodes(added, what, list);
    }

    /// <summary>Lists the keys of a data commit as unfolded at its version.</summary>
    private void RecordUnfolded(long shardId, long version, ReadOnlySpan<RowWrite> rows)
    {
        _insertUnfolded.Bind(_iuShard, shardId);
        _insertUnfolded.Bind(_iuVersion, version);
        foreach (ref readonly var row in rows)
        {
            _insertUnfolded.Bind(_iuKey, row.Key);
            _insertUnfolded.Execute();
        }
    }

    /// <summary>
    /// Applies a tree commit (see <see cref="IShardStore.CommitTreeAsync"/>): checks epoch, tree version and the new tree
    /// version against the data, replaces the nodes, moves root and tree version and forgets the folded keys.
    /// </summary>
    public bool CommitTree(ShardTreeCommit commit)
    {
        long start = Stopwatch.GetTimestamp();
        _selectForTree.Parameters["$id"].Value = commit.ShardId;
        using (var r = _selectForTree.ExecuteReader())
        {
            if (!r.Read()) throw CommitChecks.UnknownShard(commit.ShardId);
            CommitChecks.CheckTreeCommitAgainst(commit, r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
        }
        BindShard(commit.ShardId);
        ChangeNodes(commit.RemovedPositions, commit.AddedNodes, $"Tree commit to shard {commit.ShardId}", nameof(ShardTreeCommit.AddedNodes));

        var p = _updateTree.Parameters;
        p["$root"].Value = FieldBytes.ToBytes(commit.NewRoot);
        p["$tree_version"].Value = commit.NewTreeVersion;
        p["$id"].Value = commit.ShardId;
        p["$epoch"].Value = commit.Epoch;
        p["$expected"].Value = commit.ExpectedTreeVersion;
        if (_updateTree.ExecuteNonQuery() != 1)
            throw new GridException(GridErrorCode.Internal, $"Shard {commit.ShardId} changed under its own tree commit.");
        _deleteUnfoldedThrough.Parameters["$shard"].Value = commit.ShardId;
        _deleteUnfoldedThrough.Parameters["$version"].Value = commit.NewTreeVersion;
        _deleteUnfoldedThrough.ExecuteNonQuery();
        _pending += StoreWork.Tree(commit, Stopwatch.GetTimestamp() - start);
        return true;
    }

    /// <summary>A shard's unfolded keys with their current values and its versions, read on the writer's connection (one snapshot).</summary>
    public UnfoldedChanges ReadUnfolded(long shardId)
    {
        long version, treeVersion;
        _selectForTree.Parameters["$id"].Value = shardId;
        using (var r = _selectForTree.ExecuteReader())
        {
            if (!r.Read()) throw CommitChecks.UnknownShard(shardId);
            version = r.GetInt64(1);
            treeVersion = r.GetInt64(2);
        }
        var rows = new List<RowWrite>();
        _selectUnfolded.Parameters["$shard"].Value = shardId;
        using (var r = _selectUnfolded.ExecuteReader())
        {
            while (r.Read()) rows.Add(new RowWrite(r.GetFieldValue<byte[]>(0), r.IsDBNull(1) ? null : r.GetFieldValue<byte[]>(1)));
        }
        return new UnfoldedChanges(treeVersion, version, rows);
    }

    /// <summary>Forgets a shard's unfolded keys (a split or merge stores complete trees).</summary>
    private void ForgetUnfolded(long shardId)
    {
        _deleteShardUnfolded.Parameters["$shard"].Value = shardId;
        _deleteShardUnfolded.ExecuteNonQuery();
    }

    /// <summary>Stores <paramref name="nodes"/> at their positions in the shard last given to <see cref="BindShard"/> (replacing what is there).</summary>
    private void InsertNodes(IReadOnlyList<SmtNodeEntry> nodes, string what, string list)
    {
        for (int i = 0; i < nodes.Count; i++)
        {
            if (!_insertNode.TryStore(nodes[i]))
                throw GridException.InvalidArgument($"{what} refused: {list}[{i}] ({nodes[i].Hash}) is not a node (kind {(byte)nodes[i].Node.Kind}).");
        }
    }

    /// <summary>
    /// Splits a shard (see <see cref="IShardStore.SplitAsync"/>): checks its epoch, version and range and counts the rows on
    /// each side, then creates the right shard, moves its rows, replaces the left tree, stores the right one and moves the
    /// left shard. Every check comes before the first write; a failure leaves the job's savepoint to be rolled back anyway.
    /// </summary>
    public (ShardState Left, ShardState Right) Split(ShardSplit split)
    {
        _forCommitId.Value = split.ShardId;
        long epoch, version;
        KeyRange range;
        using (var r = _selectForCommit.ExecuteReader())
        {
            if (!r.Read()) throw CommitChecks.UnknownShard(split.ShardId);
            epoch = r.GetInt64(0);
            version = r.GetInt64(1);
            range = ReadRange(r, 2, split.ShardId);
        }
        CommitChecks.CheckSplitAgainst(split, epoch, version, range);
        long all = CountRowsFrom(split.ShardId, []);
        long right = CountRowsFrom(split.ShardId, split.SplitKey);
        CommitChecks.CheckSplitCounts(split, all - right, right);

        long rightId = AllocateShardIds(1);
        var end = range.IsUnbounded ? null : range.End.ToArray();
        _ssId.Value = rightId;
        _ssStart.Value = split.SplitKey;
        _ssEnd.Value = (object?)end ?? DBNull.Value;
        _ssVersion.Value = split.NewVersion;
        _ssEpoch.Value = epoch;
        _ssRoot.Value = FieldBytes.ToBytes(split.RightRoot);
        _ssKeyCount.Value = split.RightKeyCount;
        _ssUpdatedAt.Value = split.TimestampMicros;
        try
        {
            _insertSplitShard.ExecuteNonQuery(); // before its rows and nodes: they reference it

            _mrShard.Value = split.ShardId;
            _mrTo.Value = rightId;
            _mrFrom.Value = split.SplitKey;
            if (_moveRowsFrom.ExecuteNonQuery() != right)
                throw new GridException(GridErrorCode.Internal, $"Shard {split.ShardId} changed under its own split.");
        }
        finally
        {
            _ssStart.Value = _mrFrom.Value = null; // keep no reference to the caller's key
        }

        _dsnShard.Value = split.ShardId;
        _deleteShardNodes.ExecuteNonQuery();
        ForgetUnfolded(split.ShardId);
        string what = $"Split of shard {split.ShardId}";
        BindShard(split.ShardId);
        InsertNodes(split.LeftNodes, what, nameof(ShardSplit.LeftNodes));
        BindShard(rightId);
        InsertNodes(split.RightNodes, what, nameof(ShardSplit.RightNodes));

        MoveShard(split.ShardId, epoch, split.ExpectedVersion, split.SplitKey, split.NewVersion, split.LeftRoot, split.LeftKeyCount,
            split.TimestampMicros, what);
        return (
            new ShardState(split.ShardId, new KeyRange(range.Start, split.SplitKey), split.NewVersion, epoch, split.LeftRoot, split.LeftKeyCount,
                split.TimestampMicros, split.NewVersion),
            new ShardState(rightId, new KeyRange(split.SplitKey, end), split.NewVersion, epoch, split.RightRoot, split.RightKeyCount,
                split.TimestampMicros, split.NewVersion));
    }

    /// <summary>
    /// Merges two adjacent shards into the left one (see <see cref="IShardStore.MergeAsync"/>): checks both shards' epochs,
    /// versions and ranges and counts their rows, then moves the right one's rows, replaces both trees with the merged one,
    /// deletes the right shard and moves the left one.
    /// </summary>
    public ShardState Merge(ShardMerge merge)
    {
        var (leftEpoch, leftVersion, leftRange) = ReadForChange(merge.LeftShardId);
        var (rightEpoch, rightVersion, rightRange) = ReadForChange(merge.RightShardId);
        CommitChecks.CheckMergeAgainst(merge, leftEpoch, leftVersion, leftRange, rightEpoch, rightVersion, rightRange);
        long leftRows = CountRowsFrom(merge.LeftShardId, []);
        long rightRows = CountRowsFrom(merge.RightShardId, []);
        CommitChecks.CheckMergeCount(merge, leftRows, rightRows);

        _mrShard.Value = merge.RightShardId;
        _mrTo.Value = merge.LeftShardId;
        _mrFrom.Value = Array.Empty<byte>();
        if (_moveRowsFrom.ExecuteNonQuery() != rightRows)
            throw new GridException(GridErrorCode.Internal, $"Shard {merge.RightShardId} changed under its own merge.");
        _dsnShard.Value = merge.RightShardId;
        _deleteShardNodes.ExecuteNonQuery();
        _dsnShard.Value = merge.LeftShardId;
        _deleteShardNodes.ExecuteNonQuery();
        ForgetUnfolded(merge.RightShardId);
        ForgetUnfolded(merge.LeftShardId);
        string what = $"Merge of shards {merge.LeftShardId} and {merge.RightShardId}";
        BindShard(merge.LeftShardId);
        InsertNodes(merge.Nodes, what, nameof(ShardMerge.Nodes));

        _dsId.Value = merge.RightShardId;
        _dsEpoch.Value = merge.RightEpoch;
        _dsExpected.Value = merge.RightExpectedVersion;
        if (_deleteShard.ExecuteNonQuery() != 1)
            throw new GridException(GridErrorCode.Internal, $"Shard {merge.RightShardId} changed under its own merge.");
        var end = rightRange.IsUnbounded ? null : rightRange.End.ToArray();
        MoveShard(merge.LeftShardId, leftEpoch, merge.LeftExpectedVersion, end, merge.NewVersion, merge.Root, merge.KeyCount,
            merge.TimestampMicros, what);
        return new ShardState(merge.LeftShardId, new KeyRange(leftRange.Start, end), merge.NewVersion, leftEpoch, merge.Root, merge.KeyCount,
            merge.TimestampMicros, merge.NewVersion);
    }

    /// <summary>Moves the shard-id counter on by <paramref name="count"/>; returns the last id taken (never one given before).</summary>
    private long AllocateShardIds(int count)
    {
        _allocCount.Value = (long)count;
        var last = _allocateShardIds.ExecuteScalar()
            ?? throw SqliteErrors.Corrupted(_path, "its shard id counter (table shard_id_counter) has no row.");
        return Convert.ToInt64(last, System.Globalization.CultureInfo.InvariantCulture);
    }

    private (long Epoch, long Version, KeyRange Range) ReadForChange(long shardId)
    {
        _forCommitId.Value = shardId;
        using var r = _selectForCommit.ExecuteReader();
        if (!r.Read()) throw CommitChecks.UnknownShard(shardId);
        return (r.GetInt64(0), r.GetInt64(1), ReadRange(r, 2, shardId));
    }

    private long CountRowsFrom(long shardId, byte[] from)
    {
        _crShard.Value = shardId;
        _crFrom.Value = from;
        try
        {
            return Convert.ToInt64(_countRowsFrom.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        finally
        {
            _crFrom.Value = null;
        }
    }

    /// <summary>Gives a shard its new end (null: unbounded), version, root and key count, conditioned on its epoch and version.</summary>
    private void MoveShard(long shardId, long epoch, long expectedVersion, byte[]? end, long newVersion, in Fr root, long keyCount,
        long timestampMicros, string what)
    {
        _urgEnd.Value = (object?)end ?? DBNull.Value;
        _urgVersion.Value = newVersion;
        _urgRoot.Value = FieldBytes.ToBytes(root);
        _urgKeyCount.Value = keyCount;
        _urgUpdatedAt.Value = timestampMicros;
        _urgId.Value = shardId;
        _urgEpoch.Value = epoch;
        _urgExpected.Value = expectedVersion;
        try
        {
            if (_updateShardRange.ExecuteNonQuery() != 1)
                throw new GridException(GridErrorCode.Internal, $"{what}: shard {shardId} changed under it.");
        }
        finally
        {
            _urgEnd.Value = null;
        }
    }

    // ---------------------------------------------------------------- shutdown

    /// <summary>After <see cref="StopAsync"/> (or without <see cref="Start"/>): folds the WAL into the database file and closes the connection.</summary>
    public void Dispose()
    {
        _queue.Dispose();
        try
        {
            using (var optimize = Command(_connection, SqliteStatements.Optimize)) optimize.ExecuteNonQuery();
            using var checkpoint = Command(_connection, SqliteStatements.Checkpoint);
            checkpoint.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // A clean shutdown is best effort: the WAL is replayed on the next open anyway.
        }
        foreach (var command in _commands) command.Dispose();
        foreach (var statement in _rawStatements) statement.Dispose();
        _insertNode.Dispose();
        _connection.Dispose();
    }

    // ---------------------------------------------------------------- job plumbing

    private abstract class WriteJob
    {
        private const int Queued = 0, Running = 1, Cancelled = 2;
        private int _state;
        private Exception? _failure;

        /// <summary>Claims the job for running; false if its caller cancelled it while it was queued.</summary>
        public bool TryStart() => Interlocked.CompareExchange(ref _state, Running, Queued) == Queued;

        /// <summary>Called from the caller's cancellation: wins only while the job is still queued.</summary>
        protected bool TryCancel() => Interlocked.CompareExchange(ref _state, Cancelled, Queued) == Queued;

        public abstract void Apply(SqliteWriter writer);

        public void SetFailure(Exception e) => _failure = e;

        /// <summary>The transaction committed: report the job's own outcome.</summary>
        public void Complete()
        {
            if (_failure is null) Succeed();
            else Fail(_failure);
        }

        /// <summary>Fails the job; a job that already failed on its own keeps its own (more precise) error.</summary>
        public void Fail(Exception groupFailure) => SetException(_failure ?? groupFailure);

        protected abstract void Succeed();

        protected abstract void SetException(Exception e);
    }

    private sealed class WriteJob<T> : WriteJob
    {
        private readonly Func<SqliteWriter, T> _apply;
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _registration;
        private T _result = default!;

        public WriteJob(Func<SqliteWriter, T> apply, CancellationToken cancellationToken)
        {
            _apply = apply;
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(static (state, token) =>
                {
                    var job = (WriteJob<T>)state!;
                    if (job.TryCancel()) job._completion.TrySetCanceled(token);
                }, this);
            }
        }

        public Task<T> Task => _completion.Task;

        public override void Apply(SqliteWriter writer) => _result = _apply(writer);

        protected override void Succeed()
        {
            _registration.Dispose();
            _completion.TrySetResult(_result);
        }

        protected override void SetException(Exception e)
        {
            _registration.Dispose();
            _completion.TrySetException(e);
        }
    }
}
