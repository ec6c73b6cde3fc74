using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Storage;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// Batched commits of new 16-byte keys with 100-byte values: through <see cref="SqliteShardStore"/> against the same
/// work done with raw Microsoft.Data.Sqlite on the same schema and pragmas (the baseline), in the same run. Both are
/// durable (WAL, synchronous=FULL: one fsync per commit), so the gap is the store's own work: sorting and range check,
/// the epoch/version check, exact key counting, the savepoint, the hand-off to the writer thread.
/// Run with <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- --filter '*StoreBenchmarks*'</c>.
/// </summary>
/// <remarks>Each invocation commits fresh random keys, so both tables grow alike (same invocation count for both).</remarks>
[Config(typeof(Config))]
public class StoreBenchmarks
{
    private string _directory = "";
    private StoreCommitter _store = null!;
    private RawSqliteCommitter _raw = null!;
    private RowWrite[] _rows = [];
    private readonly Random _rng = new(2024);

    /// <summary>Rows per commit.</summary>
    [Params(100, 1000)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("rustorium-store-bench-").FullName;
        _store = StoreCommitter.OpenAsync(Path.Combine(_directory, "store")).GetAwaiter().GetResult();
        _raw = new RawSqliteCommitter(Path.Combine(_directory, "raw.db"));
        _rows = StoreComparison.NewRows(BatchSize, _rng);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _raw.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "raw Microsoft.Data.Sqlite")]
    public void RawSqlite()
    {
        StoreComparison.FreshKeys(_rows, _rng);
        _raw.Commit(_rows);
    }

    [Benchmark(Description = "SqliteShardStore.CommitAsync")]
    public Task ShardStore()
    {
        StoreComparison.FreshKeys(_rows, _rng);
        return _store.CommitAsync(_rows);
    }

    /// <summary>Fixed invocation counts (both benchmarks write the same number of rows) and a rows/s column.</summary>
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default
                .WithStrategy(RunStrategy.Monitoring)
                .WithLaunchCount(1)
                .WithWarmupCount(3)
                .WithIterationCount(15)
                .WithInvocationCount(16)
                .WithUnrollFactor(1));
            AddColumn(new RowsPerSecondColumn());
        }
    }

    /// <summary>BatchSize ÷ mean time per commit.</summary>
    private sealed class RowsPerSecondColumn : IColumn
    {
        public string Id => nameof(RowsPerSecondColumn);
        public string ColumnName => "rows/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Rows committed per second (BatchSize / Mean)";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null) return "-";
            var batch = Convert.ToDouble(benchmarkCase.Parameters["BatchSize"], CultureInfo.InvariantCulture);
            return (batch / (stats.Mean / 1e9)).ToString("N0", CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>Commits rows to one shard of a <see cref="SqliteShardStore"/> (what the benchmarks measure).</summary>
internal sealed class StoreCommitter : IAsyncDisposable
{
    private readonly SqliteShardStore _store;
    private ShardState _shard;

    private StoreCommitter(SqliteShardStore store, ShardState shard)
    {
        _store = store;
        _shard = shard;
    }

    public static async Task<StoreCommitter> OpenAsync(string directory)
    {
        var store = await SqliteShardStore.OpenAsync(new SqliteShardStoreOptions { DataDirectory = directory }, CancellationToken.None);
        var shard = (await store.InitializeAsync([KeyRange.All], CancellationToken.None))[0];
        return new StoreCommitter(store, await store.ClaimAsync(shard.ShardId, CancellationToken.None));
    }

    public async Task CommitAsync(RowWrite[] rows)
    {
        var commit = new ShardCommit
        {
            ShardId = _shard.ShardId,
            Epoch = _shard.Epoch,
            ExpectedVersion = _shard.Version,
            NewVersion = _shard.Version + 1,
            NewRoot = null, // a data commit, as the grid's write path makes (the tree folds it later)
            NewKeyCount = null,
            TimestampMicros = _shard.Version + 1,
            Rows = rows,
        };
        await _store.CommitAsync(commit, CancellationToken.None);
        _shard = _shard with { Version = commit.NewVersion };
    }

    public ValueTask DisposeAsync() => _store.DisposeAsync();
}

/// <summary>
/// The baseline: the same schema script and pragmas (WAL, synchronous=FULL, foreign keys, 16 MiB cache), one prepared
/// upsert per row and one shard-row update, in one transaction per batch. No checks, no counting, no sorting.
/// </summary>
internal sealed class RawSqliteCommitter : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _upsert, _updateShard;
    private readonly SqliteParameter _key, _value, _version, _ts, _shardVersion, _added;
    private long _versionValue;

    public RawSqliteCommitter(string file)
    {
        _connection = new SqliteConnection($"Data Source={file};Pooling=False");
        _connection.Open();
        foreach (var pragma in new[] { "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON", "PRAGMA cache_size = -16384" })
            Execute(pragma);
        Execute(ReadSchemaScript());
        Execute("INSERT INTO shards (id, range_start, range_end, version, epoch, root, key_count, updated_at) VALUES (1, x'', NULL, 0, 1, zeroblob(32), 0, 0)");
        _upsert = new SqliteCommand(
            "INSERT INTO rows (shard_id, key, value, version, ts) VALUES (1, $key, $value, $version, $ts) " +
            "ON CONFLICT (shard_id, key) DO UPDATE SET value = excluded.value, version = excluded.version, ts = excluded.ts", _connection);
        _key = _upsert.Parameters.Add("$key", SqliteType.Blob);
        _value = _upsert.Parameters.Add("$value", SqliteType.Blob);
        _version = _upsert.Parameters.Add("$version", SqliteType.Integer);
        _ts = _upsert.Parameters.Add("$ts", SqliteType.Integer);
        _updateShard = new SqliteCommand("UPDATE shards SET version = $version, key_count = key_count + $added, updated_at = $ts WHERE id = 1", _connection);
        _shardVersion = _updateShard.Parameters.Add("$version", SqliteType.Integer);
        _added = _updateShard.Parameters.Add("$added", SqliteType.Integer);
        _updateShard.Parameters.Add("$ts", SqliteType.Integer).Value = 0L;
    }

    public void Commit(RowWrite[] rows)
    {
        long version = ++_versionValue;
        using var tx = _connection.BeginTransaction();
        _upsert.Transaction = tx;
        _updateShard.Transaction = tx;
        _version.Value = version;
        _ts.Value = version;
        foreach (var row in rows)
        {
            _key.Value = row.Key;
            _value.Value = row.Value;
            _upsert.ExecuteNonQuery();
        }
        _shardVersion.Value = version;
        _added.Value = (long)rows.Length;
        _updateShard.ExecuteNonQuery();
        tx.Commit();
    }

    private void Execute(string sql)
    {
        using var command = new SqliteCommand(sql, _connection);
        command.ExecuteNonQuery();
    }

    private static string ReadSchemaScript()
    {
        using var stream = typeof(SqliteShardStore).Assembly.GetManifestResourceStream("Rustorium.Grid.Storage.Sqlite.Sql.0001_initial.sql")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public void Dispose()
    {
        _upsert.Dispose();
        _updateShard.Dispose();
        _connection.Dispose();
    }
}

/// <summary>
/// The same comparison as <see cref="StoreBenchmarks"/>, interleaved: raw commits, raw commits handed to a writer
/// thread (the store's hand-off without the store), and store commits take turns (order rotated every round) in one
/// process, so a machine whose load drifts — a shared one — weighs on all alike. Reports medians and the medians of
/// the per-round ratios. Run with
/// <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- store-compare [rounds]</c>.
/// </summary>
public static class StoreComparison
{
    public static async Task RunAsync(int rounds)
    {
        var rng = new Random(2024);
        foreach (int batch in new[] { 100, 1000 })
        {
            var dir = Directory.CreateTempSubdirectory("rustorium-store-compare-").FullName;
            try
            {
                await using var store = await StoreCommitter.OpenAsync(Path.Combine(dir, "store"));
                using var raw = new RawSqliteCommitter(Path.Combine(dir, "raw.db"));
                var rows = NewRows(batch, rng);
                using var hopped = new RawSqliteCommitter(Path.Combine(dir, "raw-hopped.db"));
                using var hop = new HandOffThread();
                var rawTimes = new List<double>();
                var hoppedTimes = new List<double>();
                var storeTimes = new List<double>();
                var clock = new System.Diagnostics.Stopwatch();
                for (int round = -5; round < rounds; round++) // five warm-up rounds
                {
                    for (int turn = 0; turn < 3; turn++)
                    {
                        int side = (turn + round + 5) % 3; // rotate the order every round
                        FreshKeys(rows, rng);
                        clock.Restart();
                        if (side == 0) raw.Commit(rows);
                        else if (side == 1) await hop.RunAsync(() => hopped.Commit(rows));
                        else await store.CommitAsync(rows);
                        double ms = clock.Elapsed.TotalMilliseconds;
                        if (round >= 0) (side == 0 ? rawTimes : side == 1 ? hoppedTimes : storeTimes).Add(ms);
                    }
                }
                double rawMedian = Median(rawTimes), hoppedMedian = Median(hoppedTimes), storeMedian = Median(storeTimes);
                Console.WriteLine(
                    $"{batch,5} rows/commit, {rounds} rounds, median per commit: raw {rawMedian:F2} ms ({batch / rawMedian * 1000:N0} rows/s); " +
                    $"raw handed to a writer thread {hoppedMedian:F2} ms ({batch / hoppedMedian * 1000:N0} rows/s); " +
                    $"store {storeMedian:F2} ms ({batch / storeMedian * 1000:N0} rows/s). store/raw time {storeMedian / rawMedian:F2} " +
                    $"(per-round median {Median(storeTimes.Zip(rawTimes, (s, r) => s / r).ToList()):F2}), " +
                    $"store/raw-handed-off {storeMedian / hoppedMedian:F2} (per-round median {Median(storeTimes.Zip(hoppedTimes, (s, r) => s / r).ToList()):F2})");
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    /// <summary>Runs work on a dedicated thread and completes on the thread pool: the store's hand-off, without the store.</summary>
    private sealed class HandOffThread : IDisposable
    {
        private readonly System.Collections.Concurrent.BlockingCollection<(Action Work, TaskCompletionSource Done)> _queue = new();
        private readonly Thread _thread;

        public HandOffThread()
        {
            _thread = new Thread(() =>
            {
                foreach (var (work, done) in _queue.GetConsumingEnumerable())
                {
                    work();
                    done.SetResult();
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public Task RunAsync(Action work)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _queue.Add((work, done));
            return done.Task;
        }

        public void Dispose()
        {
            _queue.CompleteAdding();
            _thread.Join();
            _queue.Dispose();
        }
    }

    internal static RowWrite[] NewRows(int count, Random rng)
    {
        var rows = new RowWrite[count];
        for (int i = 0; i < rows.Length; i++)
        {
            var value = new byte[100];
            rng.NextBytes(value);
            rows[i] = new RowWrite(new byte[16], value);
        }
        return rows;
    }

    /// <summary>New random keys in place (2^128 keys: no collisions), so every commit inserts.</summary>
    internal static void FreshKeys(RowWrite[] rows, Random rng)
    {
        foreach (var row in rows) rng.NextBytes(row.Key);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
