using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Rustorium.Grid.Storage;

/// <summary>
/// What a shard store has written since it was opened, and the time that took: the figures that say where a store's
/// write capacity goes (docs/storage.md "Statistics"). Counts only what was committed: a refused or rolled-back commit
/// adds nothing.
/// </summary>
/// <param name="Provider">The store: <c>sqlite</c> or <c>postgres</c>.</param>
/// <param name="Location">Where it keeps the data: the database file, or the PostgreSQL server, database and schema.</param>
/// <param name="DataCommits">Commits of rows (<see cref="IShardStore.CommitAsync"/>), combined ones included.</param>
/// <param name="RowsWritten">Rows those commits put or deleted.</param>
/// <param name="TreeCommits">Checkpoints of a shard's tree (<see cref="IShardStore.CommitTreeAsync"/>).</param>
/// <param name="NodesWritten">Tree node rows stored by tree commits and combined commits.</param>
/// <param name="NodesDeleted">Tree node rows deleted by them (the nodes the new ones replace).</param>
/// <param name="Transactions">Transactions committed on the write path: the embedded store counts every transaction of its
/// writer (group commit puts several commits in one; claims, splits, merges and reads of unfolded keys run there too),
/// PostgreSQL those of data commits, tree commits, splits and merges.</param>
/// <param name="DataCommitTime">Time spent running the statements of data commits, before COMMIT.</param>
/// <param name="TreeCommitTime">Time spent running the statements of tree commits, before COMMIT.</param>
/// <param name="SyncTime">Time spent in COMMIT of those transactions: the embedded store's WAL write and fsync, PostgreSQL's COMMIT round trip.</param>
public sealed record ShardStoreStatistics(
    string Provider,
    string Location,
    long DataCommits,
    long RowsWritten,
    long TreeCommits,
    long NodesWritten,
    long NodesDeleted,
    long Transactions,
    TimeSpan DataCommitTime,
    TimeSpan TreeCommitTime,
    TimeSpan SyncTime);

/// <summary>
/// The counters behind <see cref="ShardStoreStatistics"/>, also published as <see cref="System.Diagnostics.Metrics"/>
/// instruments of the meter <see cref="MeterName"/> (observable counters, tagged <c>rgrid.store</c> = provider and
/// <c>rgrid.store.location</c>), so an
/// OpenTelemetry or <c>dotnet-counters</c> listener sees them without the store knowing about it. Thread-safe.
/// </summary>
internal sealed class ShardStoreMeter : IDisposable
{
    /// <summary>The name of the <see cref="Meter"/> every shard store publishes its instruments on.</summary>
    public const string MeterName = "Rustorium.Grid.Storage";

    private readonly string _store, _location;
    private readonly Meter _meter;
    private long _dataCommits, _rows, _treeCommits, _nodesWritten, _nodesDeleted, _transactions;
    private long _dataTicks, _treeTicks, _syncTicks; // Stopwatch ticks

    public ShardStoreMeter(string store, string location)
    {
        _store = store;
        _location = location;
        _meter = new Meter(MeterName);
        var tags = new KeyValuePair<string, object?>[] { new("rgrid.store", store), new("rgrid.store.location", location) };
        Counter("rgrid.store.data_commits", "{commit}", "Data commits (rows) committed", () => Read(ref _dataCommits), tags);
        Counter("rgrid.store.rows_written", "{row}", "Rows put or deleted by committed data commits", () => Read(ref _rows), tags);
        Counter("rgrid.store.tree_commits", "{commit}", "Tree checkpoints committed", () => Read(ref _treeCommits), tags);
        Counter("rgrid.store.tree_nodes_written", "{node}", "Tree node rows stored", () => Read(ref _nodesWritten), tags);
        Counter("rgrid.store.tree_nodes_deleted", "{node}", "Tree node rows deleted", () => Read(ref _nodesDeleted), tags);
        Counter("rgrid.store.transactions", "{transaction}", "Store transactions committed", () => Read(ref _transactions), tags);
        Seconds("rgrid.store.data_commit.time", "Time running data commits' statements", () => Read(ref _dataTicks), tags);
        Seconds("rgrid.store.tree_commit.time", "Time running tree commits' statements", () => Read(ref _treeTicks), tags);
        Seconds("rgrid.store.sync.time", "Time in COMMIT (WAL write and fsync, or the COMMIT round trip)", () => Read(ref _syncTicks), tags);
    }

    private void Counter(string name, string unit, string description, Func<long> read, KeyValuePair<string, object?>[] tags) =>
        _meter.CreateObservableCounter(name, () => new Measurement<long>(read(), tags), unit, description);

    private void Seconds(string name, string description, Func<long> readTicks, KeyValuePair<string, object?>[] tags) =>
        _meter.CreateObservableCounter(name, () => new Measurement<double>((double)readTicks() / Stopwatch.Frequency, tags), "s", description);

    private static long Read(ref long counter) => Interlocked.Read(ref counter);

    /// <summary>One store transaction holding <paramref name="work"/> was committed; COMMIT took <paramref name="syncTicks"/> (Stopwatch ticks).</summary>
    public void Committed(in StoreWork work, long syncTicks)
    {
        Interlocked.Increment(ref _transactions);
        if (work.DataCommits != 0) Interlocked.Add(ref _dataCommits, work.DataCommits);
        if (work.Rows != 0) Interlocked.Add(ref _rows, work.Rows);
        if (work.TreeCommits != 0) Interlocked.Add(ref _treeCommits, work.TreeCommits);
        if (work.NodesWritten != 0) Interlocked.Add(ref _nodesWritten, work.NodesWritten);
        if (work.NodesDeleted != 0) Interlocked.Add(ref _nodesDeleted, work.NodesDeleted);
        if (work.DataTicks != 0) Interlocked.Add(ref _dataTicks, work.DataTicks);
        if (work.TreeTicks != 0) Interlocked.Add(ref _treeTicks, work.TreeTicks);
        Interlocked.Add(ref _syncTicks, syncTicks);
    }

    /// <summary>The counters now (each read atomically; together they may straddle a commit).</summary>
    public ShardStoreStatistics Snapshot() => new(
        _store, _location, Read(ref _dataCommits), Read(ref _rows), Read(ref _treeCommits), Read(ref _nodesWritten), Read(ref _nodesDeleted),
        Read(ref _transactions), Stopwatch.GetElapsedTime(0, Read(ref _dataTicks)), Stopwatch.GetElapsedTime(0, Read(ref _treeTicks)),
        Stopwatch.GetElapsedTime(0, Read(ref _syncTicks)));

    public void Dispose() => _meter.Dispose();
}

/// <summary>What the commits of one store transaction wrote, and the time their statements took (Stopwatch ticks); summed with <c>+</c>.</summary>
internal readonly record struct StoreWork(int DataCommits, int Rows, int TreeCommits, int NodesWritten, int NodesDeleted, long DataTicks, long TreeTicks)
{
    /// <summary>A data commit of <paramref name="commit"/>'s rows (and, combined, its nodes) whose statements took <paramref name="ticks"/>.</summary>
    public static StoreWork Data(ShardCommit commit, int rows, long ticks) =>
        new(1, rows, 0, commit.AddedNodes.Count, commit.RemovedPositions.Count, ticks, 0);

    /// <summary>A tree commit whose statements took <paramref name="ticks"/>.</summary>
    public static StoreWork Tree(ShardTreeCommit commit, long ticks) =>
        new(0, 0, 1, commit.AddedNodes.Count, commit.RemovedPositions.Count, 0, ticks);

    public static StoreWork operator +(StoreWork a, StoreWork b) => new(
        a.DataCommits + b.DataCommits, a.Rows + b.Rows, a.TreeCommits + b.TreeCommits, a.NodesWritten + b.NodesWritten,
        a.NodesDeleted + b.NodesDeleted, a.DataTicks + b.DataTicks, a.TreeTicks + b.TreeTicks);
}
