using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Storage.Sqlite;
using Xunit.Abstractions;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests.Sqlite;

/// <summary>A temporary directory of SQLite stores, one subdirectory per store name, deleted with the test.</summary>
public sealed class SqliteStoreDirectory : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("rustorium-storage-tests-").FullName;

    public SqliteShardStoreOptions Options(string storeName) => new() { DataDirectory = Path.Combine(Root, storeName) };

    public string FileOf(string storeName) => Options(storeName).ResolveFilePath();

    public async Task<IShardStore> OpenAsync(string storeName) => await SqliteShardStore.OpenAsync(Options(storeName), Deadline());

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the OS reclaims the temp directory eventually.
        }
    }
}

/// <summary>The store contract on real SQLite files.</summary>
[Trait("Category", "Integration")]
public sealed class SqliteShardStoreContractTests : ShardStoreContractTests, IDisposable
{
    private readonly SqliteStoreDirectory _directory = new();

    protected override Task<IShardStore> OpenStoreAsync(string storeName) => _directory.OpenAsync(storeName);

    public void Dispose() => _directory.Dispose();
}

/// <summary>The tree-over-store tests on real SQLite files.</summary>
[Trait("Category", "Integration")]
public sealed class SqliteShardTreeNodeStoreTests(ITestOutputHelper output) : ShardTreeNodeStoreTests(output), IDisposable
{
    private readonly SqliteStoreDirectory _directory = new();

    protected override Task<IShardStore> OpenStoreAsync(string storeName) => _directory.OpenAsync(storeName);

    public void Dispose() => _directory.Dispose();
}

/// <summary>What only the SQLite provider has: options, the file and its schema, integrity checks, group commit.</summary>
[Trait("Category", "Integration")]
public sealed class SqliteShardStoreTests : IDisposable
{
    private readonly SqliteStoreDirectory _directory = new();
    private readonly CancellationToken _ct = Deadline();

    public void Dispose() => _directory.Dispose();

    // ---------------------------------------------------------------- options

    [Fact]
    public void DefaultsAreTheDocumentedOnes()
    {
        var o = new SqliteShardStoreOptions();
        Assert.Equal("shards.db", o.FileName);
        Assert.Equal(TimeSpan.FromSeconds(5), o.BusyTimeout);
        Assert.Equal(16 * 1024, o.CacheSizeKiB);
        Assert.Equal(4, o.ReaderConnections);
        Assert.Equal(64, o.MaxCommitsPerTransaction);
        Assert.Equal(SqliteIntegrityCheck.Quick, o.IntegrityCheck);
    }

    public static TheoryData<string, string> BadOptions() => new()
    {
        { "none", "neither is set" },
        { "both", "not both" },
        { "file name with a slash", "FileName" },
        { "negative busy timeout", "BusyTimeout" },
        { "tiny cache", "CacheSizeKiB" },
        { "no readers", "ReaderConnections" },
        { "no commits per transaction", "MaxCommitsPerTransaction" },
        { "undefined integrity check", "IntegrityCheck" },
        { "data directory is a file", "is a file" },
        { "file path is a directory", "is a directory" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task BadOptionsAreRefusedWithTheirNameAndCreateNothing(string which, string expectedInMessage)
    {
        var dir = Path.Combine(_directory.Root, "opts");
        var aFile = Path.Combine(_directory.Root, "a-file");
        File.WriteAllText(aFile, "x");
        var ok = new SqliteShardStoreOptions { DataDirectory = dir };
        var options = which switch
        {
            "none" => new SqliteShardStoreOptions(),
            "both" => ok with { FilePath = Path.Combine(dir, "x.db") },
            "file name with a slash" => ok with { FileName = "sub/x.db" },
            "negative busy timeout" => ok with { BusyTimeout = TimeSpan.FromSeconds(-1) },
            "tiny cache" => ok with { CacheSizeKiB = 10 },
            "no readers" => ok with { ReaderConnections = 0 },
            "no commits per transaction" => ok with { MaxCommitsPerTransaction = 0 },
            "undefined integrity check" => ok with { IntegrityCheck = (SqliteIntegrityCheck)9 },
            "data directory is a file" => new SqliteShardStoreOptions { DataDirectory = Path.Combine(aFile, "sub") },
            "file path is a directory" => new SqliteShardStoreOptions { FilePath = _directory.Root },
            _ => throw new ArgumentOutOfRangeException(nameof(which)),
        };
        var e = Assert.Throws<GridException>(options.Validate);
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        Assert.Contains(expectedInMessage, e.Message);
        e = await Assert.ThrowsAsync<GridException>(() => SqliteShardStore.OpenAsync(options, _ct));
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task AFilePathOpensThatFileAndCreatesItsDirectory()
    {
        var path = Path.Combine(_directory.Root, "nested", "deeper", "grid.sqlite");
        await using (var store = await SqliteShardStore.OpenAsync(new SqliteShardStoreOptions { FilePath = path }, _ct))
        {
            Assert.Equal(path, store.FilePath);
            await store.InitializeAsync(ThreeShards, _ct);
        }
        Assert.True(File.Exists(path));
    }

    // ---------------------------------------------------------------- the file

    [Fact]
    public async Task TheStoreIsAWalDatabaseWithItsSchemaRecordedOnce()
    {
        const string name = "schema";
        await using (var store = await _directory.OpenAsync(name)) await store.InitializeAsync(ThreeShards, _ct);
        long appliedAt;
        await using (var raw = OpenRaw(name))
        {
            Assert.Equal("wal", Scalar(raw, "PRAGMA journal_mode"));
            Assert.Equal(0x52475353L, Scalar(raw, "PRAGMA application_id"));
            Assert.Equal(4L, Scalar(raw, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal("0001_initial", Scalar(raw, "SELECT name FROM schema_migrations WHERE version = 1"));
            Assert.Equal("0002_shard_id_counter", Scalar(raw, "SELECT name FROM schema_migrations WHERE version = 2"));
            Assert.Equal("0003_unfolded_changes", Scalar(raw, "SELECT name FROM schema_migrations WHERE version = 3"));
            Assert.Equal("0004_tree_nodes_by_position", Scalar(raw, "SELECT name FROM schema_migrations WHERE version = 4"));
            Assert.Equal(0L, Scalar(raw, "SELECT count(*) FROM sqlite_schema WHERE name = 'smt_nodes'")); // dropped by 0004
            Assert.Equal(3L, Scalar(raw, "SELECT last_id FROM shard_id_counter")); // the layout's ids 1…3 came from it
            appliedAt = (long)Scalar(raw, "SELECT applied_at FROM schema_migrations WHERE version = 1")!;
            foreach (var table in new[] { "rows", "tree_nodes", "unfolded_keys" })
                Assert.Contains("WITHOUT ROWID", (string)Scalar(raw, $"SELECT sql FROM sqlite_schema WHERE name = '{table}'")!);
            Assert.Equal(3L, Scalar(raw, "SELECT count(*) FROM shards"));
            Assert.Equal(1L, Scalar(raw, "SELECT count(*) FROM shards WHERE range_end IS NULL"));
        }
        Assert.Equal(4, SqliteShardStore.SchemaVersion);

        await using (var store = await _directory.OpenAsync(name)) Assert.Equal(3, (await store.ListShardsAsync(_ct)).Count);
        await using (var raw = OpenRaw(name))
        {
            Assert.Equal(4L, Scalar(raw, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal(appliedAt, Scalar(raw, "SELECT applied_at FROM schema_migrations WHERE version = 1"));
        }
    }

    [Fact]
    public async Task ACleanShutdownLeavesOneSelfContainedFile()
    {
        const string name = "clean";
        await using (var store = await _directory.OpenAsync(name))
        {
            var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
            await store.CommitAsync(Next(shard, 1, Put("01", "01")), _ct);
        }
        var file = _directory.FileOf(name);
        Assert.False(File.Exists(file + "-wal") && new FileInfo(file + "-wal").Length > 0);
    }

    [Fact]
    public async Task ACrashImageOfTheFilesHoldsEveryCompletedCommit()
    {
        // Copy the database and its WAL while the store is still open, as a crash would leave them.
        const string name = "crash";
        var store = await _directory.OpenAsync(name);
        var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
        await store.CommitAsync(Next(shard, 2, Put("01", "aa"), Put("02", "bb")), _ct);
        var file = _directory.FileOf(name);
        var image = _directory.FileOf("crash-image");
        Directory.CreateDirectory(Path.GetDirectoryName(image)!);
        foreach (var suffix in new[] { "", "-wal" })
        {
            using var source = new FileStream(file + suffix, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var target = File.Create(image + suffix);
            source.CopyTo(target);
        }
        await store.DisposeAsync();

        await using var recovered = await _directory.OpenAsync("crash-image");
        var state = await recovered.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(1, state.Version);
        Assert.Equal(K("bb"), (await recovered.GetAsync(shard.ShardId, K("02"), _ct))!.Value);
    }

    // ---------------------------------------------------------------- integrity

    [Fact]
    public async Task ACorruptedFileIsRefusedAsCorruptedAndLeftUntouched()
    {
        const string name = "corrupt";
        await using (var store = await _directory.OpenAsync(name))
        {
            var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
            var rng = new Random(3);
            var rows = Enumerable.Range(0, 4000).Select(i =>
            {
                var key = new byte[16];
                var value = new byte[100];
                rng.NextBytes(key);
                rng.NextBytes(value);
                return new RowWrite(key, value);
            }).ToArray();
            await store.CommitAsync(Next(shard, rows.Length, rows), _ct);
        }
        var file = _directory.FileOf(name);
        var length = new FileInfo(file).Length;
        Assert.True(length > 256 * 1024, $"the test database is only {length} bytes");

        var garbage = new byte[32 * 1024];
        new Random(4).NextBytes(garbage);
        using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            stream.Position = length / 2 - garbage.Length / 2;
            stream.Write(garbage);
        }
        var before = Fingerprint(file);

        var e = await Assert.ThrowsAsync<GridException>(() => _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Contains(file, e.Message);
        Assert.Equal(before, Fingerprint(file));
    }

    [Fact]
    public async Task AFileThatIsNotADatabaseIsRefusedAsCorruptedAndLeftUntouched()
    {
        const string name = "text";
        var file = _directory.FileOf(name);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, string.Concat(Enumerable.Repeat("These are somebody's notes, not a database.\n", 500)));
        var before = Fingerprint(file);

        var e = await Assert.ThrowsAsync<GridException>(() => _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Contains(file, e.Message);
        Assert.Equal(before, Fingerprint(file));
    }

    [Theory]
    [InlineData(SqliteIntegrityCheck.None)]
    [InlineData(SqliteIntegrityCheck.Full)]
    public async Task EveryIntegrityLevelRefusesAFileThatIsNotADatabase(SqliteIntegrityCheck level)
    {
        const string name = "text-level";
        var file = _directory.FileOf(name);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllBytes(file, Enumerable.Range(0, 8192).Select(i => (byte)(i * 31)).ToArray());
        var before = Fingerprint(file);
        var e = await Assert.ThrowsAsync<GridException>(() => SqliteShardStore.OpenAsync(_directory.Options(name) with { IntegrityCheck = level }, _ct));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Equal(before, Fingerprint(file));
    }

    [Fact]
    public async Task AnotherApplicationsDatabaseIsRefusedAndLeftUntouched()
    {
        const string name = "foreign";
        var file = _directory.FileOf(name);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await using (var raw = new SqliteConnection($"Data Source={file};Pooling=False"))
        {
            raw.Open();
            using var create = new SqliteCommand("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'Ada')", raw);
            create.ExecuteNonQuery();
        }
        var before = Fingerprint(file);

        var e = await Assert.ThrowsAsync<GridException>(() => _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Contains("another application", e.Message);
        Assert.Equal(before, Fingerprint(file));
    }

    [Fact]
    public async Task AStoreFromANewerBuildOrWithAnEditedMigrationIsRefused()
    {
        const string name = "versions";
        await using (var store = await _directory.OpenAsync(name)) await store.InitializeAsync(ThreeShards, _ct);
        await using (var raw = OpenRaw(name, readOnly: false))
            Execute(raw, "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (99, '0099_future', 'abc', 0)");
        var e = await Assert.ThrowsAsync<GridException>(() => _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Contains("newer version", e.Message);

        await using (var raw = OpenRaw(name, readOnly: false))
        {
            Execute(raw, "DELETE FROM schema_migrations WHERE version = 99");
            Execute(raw, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1");
        }
        e = await Assert.ThrowsAsync<GridException>(() => _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public async Task AStoreFromBeforeTheIdCounterStartsItAtItsLargestId()
    {
        const string name = "upgrade";
        await using (var store = await _directory.OpenAsync(name)) await store.InitializeAsync(ThreeShards, _ct);
        // Turn it into a version-1 store whose largest id is 7 (as if shards 4 to 6 had been merged away): no counter.
        await using (var raw = OpenRaw(name, readOnly: false))
        {
            Execute(raw, "DROP TABLE shard_id_counter");
            Execute(raw, "DELETE FROM schema_migrations WHERE version = 2");
            Execute(raw, "UPDATE shards SET id = 7 WHERE id = 3");
        }

        await using (var store = await _directory.OpenAsync(name))
        {
            var last = await store.GetShardAsync(7, _ct);
            var (_, right) = await store.SplitAsync(EmptySplit(last, K("c0")), _ct);
            Assert.Equal(8, right.ShardId);
        }
        await using (var raw = OpenRaw(name))
        {
            Assert.Equal(4L, Scalar(raw, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal(8L, Scalar(raw, "SELECT last_id FROM shard_id_counter"));
        }
    }

    [Fact]
    public async Task AStoreFromBeforeTheTreeCouldLagHasItsTreesAtTheirVersions()
    {
        const string name = "upgrade-tree";
        await using (var store = await _directory.OpenAsync(name))
        {
            var shards = await store.InitializeAsync(ThreeShards, _ct);
            var (left, _) = await store.SplitAsync(EmptySplit(shards[2], K("c0")), _ct); // version 1, rows and tree together
            Assert.Equal(1, left.TreeVersion);
        }
        // Turn it into a version-2 store: no tree version, no unfolded keys.
        await using (var raw = OpenRaw(name, readOnly: false))
        {
            Execute(raw, "DROP TABLE unfolded_keys");
            Execute(raw, "ALTER TABLE shards DROP COLUMN tree_version");
            Execute(raw, "DELETE FROM schema_migrations WHERE version = 3");
        }
        await using (var store = await _directory.OpenAsync(name))
        {
            foreach (var shard in await store.ListShardsAsync(_ct))
            {
                Assert.Equal(shard.Version, shard.TreeVersion);
                Assert.False(shard.HasUnfolded);
                Assert.Empty((await store.ReadUnfoldedAsync(shard.ShardId, _ct)).Rows);
            }
            Assert.Contains(await store.ListShardsAsync(_ct), s => s.Version == 1);
        }
    }

    [Fact]
    public async Task AStoreWithNodesKeyedByHashGetsThemByPositionWithEveryTreeIntact()
    {
        const string name = "upgrade-positions";
        Dictionary<long, List<RowWrite>> contents;
        await using (var store = await _directory.OpenAsync(name)) contents = await FillForMigrationAsync(store, _ct);
        long nodeCount;
        // Turn it into a version-3 store: the same trees in a table keyed by hash (plus a node no tree reaches).
        await using (var raw = OpenRaw(name, readOnly: false))
        {
            nodeCount = (long)Scalar(raw, "SELECT count(*) FROM tree_nodes")!;
            Execute(raw, "CREATE TABLE smt_nodes (shard_id INTEGER NOT NULL REFERENCES shards (id), hash BLOB NOT NULL CHECK (length(hash) = 32), " +
                "kind INTEGER NOT NULL CHECK (kind IN (1, 2)), a BLOB NOT NULL CHECK (length(a) = 32), b BLOB NOT NULL CHECK (length(b) = 32), " +
                "PRIMARY KEY (shard_id, hash)) WITHOUT ROWID");
            Execute(raw, "INSERT INTO smt_nodes SELECT shard_id, hash, kind, a, b FROM tree_nodes");
            Execute(raw, $"INSERT INTO smt_nodes VALUES (1, x'{new string('0', 62)}01', 2, x'{new string('0', 64)}', x'{new string('0', 64)}')");
            Execute(raw, "DROP TABLE tree_nodes");
            Execute(raw, "DELETE FROM schema_migrations WHERE version = 4");
        }
        Assert.True(nodeCount > 400, $"{nodeCount} nodes");

        var progress = new List<string>();
        await using (var store = await SqliteShardStore.OpenAsync(_directory.Options(name) with { Progress = progress.Add }, _ct))
            await AssertMigratedAsync(store, contents, _ct);
        // One line per shard, then the total (the empty shard 3 copies nothing).
        Assert.Equal(4, progress.Count);
        Assert.Contains("shard 3 done (0 nodes), 3 of 3 shards", progress[2]);
        Assert.Contains($"{nodeCount:N0} nodes of 3 shards", progress[3]);
        await using (var raw = OpenRaw(name))
        {
            Assert.Equal(4L, Scalar(raw, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal(0L, Scalar(raw, "SELECT count(*) FROM sqlite_schema WHERE name = 'smt_nodes'"));
            Assert.Equal(0L, Scalar(raw, $"SELECT count(*) FROM tree_nodes WHERE hash = x'{new string('0', 62)}01'")); // unreachable: not copied
        }
    }

    [Fact]
    public async Task AStoredNodeWithABrokenFieldOrKindReadsAsCorruptedNamingTheNode()
    {
        const string name = "corrupt-node";
        await using (var store = await _directory.OpenAsync(name)) await FillForMigrationAsync(store, _ct);
        byte[] leafPos, middlePos;
        Fr leafHash, middleHash;
        await using (var raw = OpenRaw(name, readOnly: false))
        {
            (leafPos, leafHash) = NodeRow(raw, "kind = 2");
            (middlePos, middleHash) = NodeRow(raw, "kind = 1");
            // What no commit can write (the table's checks refuse it): a leaf key of 3 bytes, a middle node of kind 7.
            Execute(raw, "PRAGMA ignore_check_constraints = ON");
            Execute(raw, $"UPDATE tree_nodes SET a = x'010203' WHERE shard_id = 1 AND pos = x'{Convert.ToHexString(leafPos)}'");
            Execute(raw, $"UPDATE tree_nodes SET kind = 7 WHERE shard_id = 1 AND pos = x'{Convert.ToHexString(middlePos)}'");
        }

        // The check at open finds it (quick_check verifies CHECK constraints)...
        var atOpen = await Assert.ThrowsAsync<GridException>(() => _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, atOpen.Code);
        // ...and with the check turned off, the read of the node itself refuses it.
        await using (var store = await SqliteShardStore.OpenAsync(_directory.Options(name) with { IntegrityCheck = SqliteIntegrityCheck.None }, _ct))
        using (var reader = store.OpenNodeReader(1))
        {
            var leaf = Assert.Throws<GridException>(() => reader.TryGetNode(leafHash, SmtPosition.Decode(leafPos), out _));
            Assert.Equal(GridErrorCode.Corrupted, leaf.Code);
            Assert.Contains($"child/key of node {leafHash}", leaf.Message);
            Assert.Contains("(3 bytes)", leaf.Message);
            var middle = Assert.Throws<GridException>(() => reader.TryGetNode(middleHash, SmtPosition.Decode(middlePos), out _));
            Assert.Equal(GridErrorCode.Corrupted, middle.Code);
            Assert.Contains($"{middleHash} has unknown kind 7", middle.Message);
            // A position asked for with another hash is not that node: missing, not corrupt.
            Assert.False(reader.TryGetNode(leafHash, SmtPosition.Decode(middlePos), out _));
        }

        static (byte[] Pos, Fr Hash) NodeRow(SqliteConnection raw, string where)
        {
            using var c = raw.CreateCommand();
            c.CommandText = $"SELECT pos, hash FROM tree_nodes WHERE shard_id = 1 AND {where} LIMIT 1";
            using var r = c.ExecuteReader();
            Assert.True(r.Read());
            return (r.GetFieldValue<byte[]>(0), Fr.FromBytesBigEndian(r.GetFieldValue<byte[]>(1)));
        }
    }

    [Fact]
    public async Task AStoreWhoseHashKeyedTreeIsBrokenIsRefusedAndLeftAsItWas()
    {
        const string name = "upgrade-broken";
        await using (var store = await _directory.OpenAsync(name))
        {
            var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
            using var writer = await TestShardWriter.OpenAsync(store, shard.ShardId, _ct);
            for (int i = 0; i < 20; i++) writer.Put([(byte)i], [(byte)i]);
            await writer.CommitAsync(_ct);
        }
        long stored;
        await using (var raw = OpenRaw(name, readOnly: false))
        {
            stored = (long)Scalar(raw, "SELECT count(*) FROM tree_nodes")!;
            Execute(raw, "CREATE TABLE smt_nodes (shard_id INTEGER NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL, a BLOB NOT NULL, b BLOB NOT NULL, " +
                "PRIMARY KEY (shard_id, hash)) WITHOUT ROWID");
            // Every node but one leaf: the walk from the root cannot finish.
            Execute(raw, "INSERT INTO smt_nodes SELECT shard_id, hash, kind, a, b FROM tree_nodes " +
                "WHERE pos <> (SELECT max(pos) FROM tree_nodes WHERE kind = 2)");
            Execute(raw, "DROP TABLE tree_nodes");
            Execute(raw, "DELETE FROM schema_migrations WHERE version = 4");
        }
        var e = await Assert.ThrowsAsync<GridException>(async () => await _directory.OpenAsync(name));
        Assert.Equal(GridErrorCode.Corrupted, e.Code);
        Assert.Contains("shard 1", e.Message);
        await using (var raw = OpenRaw(name))
        {
            Assert.Equal(3L, Scalar(raw, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal(0L, Scalar(raw, "SELECT count(*) FROM sqlite_schema WHERE name = 'tree_nodes'"));
            Assert.Equal(stored - 1, Scalar(raw, "SELECT count(*) FROM smt_nodes")); // as it was: every node but the missing leaf
        }
    }

    // ---------------------------------------------------------------- group commit and lifetime

    [Fact]
    public async Task CommitsQueuedTogetherShareTransactionsYetSucceedOrFailAlone()
    {
        await using var store = (SqliteShardStore)await _directory.OpenAsync("group");
        var shards = await store.InitializeAsync(EightShards, _ct);
        var owned = new List<ShardState>();
        foreach (var s in shards) owned.Add(await store.ClaimAsync(s.ShardId, _ct));

        // Five chained commits per shard, fired without waiting (the writer applies them in order), plus a stale one each.
        long transactionsBefore = store.WriteTransactions;
        var good = new List<Task>();
        var stale = new List<Task>();
        for (int c = 0; c < 5; c++)
        {
            for (int s = 0; s < owned.Count; s++)
            {
                var state = owned[s];
                byte prefix = state.Range.Start.IsEmpty ? (byte)0 : state.Range.Start[0];
                good.Add(store.CommitAsync(Next(state, c + 1, Put([prefix, (byte)c], [(byte)c])), _ct).AsTask());
                owned[s] = state with { Version = state.Version + 1 };
                if (c == 2) stale.Add(store.CommitAsync(Next(state with { Epoch = state.Epoch - 1 }, c + 1, Put([prefix, 0xee], [1])), _ct).AsTask());
            }
        }
        await Task.WhenAll(good);
        foreach (var t in stale) Assert.Equal(GridErrorCode.Conflict, (await Assert.ThrowsAsync<GridException>(() => t)).Code);

        foreach (var s in await store.ListShardsAsync(_ct))
        {
            Assert.Equal(5, s.Version);
            Assert.Equal(5, s.KeyCount);
        }
        // 48 commits were queued within microseconds while each transaction waits for an fsync: they cannot all have
        // needed a transaction of their own.
        Assert.InRange(store.WriteTransactions - transactionsBefore, 1, good.Count + stale.Count - 1);
    }

    [Fact]
    public async Task ACancelledCommitWritesNothing()
    {
        await using var store = await _directory.OpenAsync("cancel");
        var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await store.CommitAsync(Next(shard, 1, Put("01", "01")), cancelled.Token));
        // The next commit still expects version 0: the cancelled one never ran.
        await store.CommitAsync(Next(shard, 1, Put("02", "02")), _ct);
        Assert.Null(await store.GetAsync(shard.ShardId, K("01"), _ct));
        Assert.Equal(1, (await store.GetShardAsync(shard.ShardId, _ct)).Version);
    }

    [Fact]
    public async Task AClosedStoreRefusesCalls()
    {
        var store = await _directory.OpenAsync("closed");
        var shard = (await store.InitializeAsync([KeyRange.All], _ct))[0];
        var reader = store.OpenNodeReader(shard.ShardId);
        await store.DisposeAsync();
        await store.DisposeAsync(); // idempotent
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.GetShardAsync(shard.ShardId, _ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await store.CommitAsync(Next(shard, 0), _ct));
        Assert.Throws<ObjectDisposedException>(() => reader.TryGetNode(F(1), SmtPosition.Root, out _));
    }

    [Fact]
    public async Task TwoStoresOnOneFileSeeEachOthersCommits()
    {
        // Two silos must never share a directory, but if they do, SQLite's locks and the epoch keep it consistent.
        const string name = "shared";
        await using var a = await _directory.OpenAsync(name);
        var shard = await a.ClaimAsync((await a.InitializeAsync([KeyRange.All], _ct))[0].ShardId, _ct);
        await using var b = await _directory.OpenAsync(name);
        var taken = await b.ClaimAsync(shard.ShardId, _ct);
        var e = await Assert.ThrowsAsync<GridException>(async () => await a.CommitAsync(Next(shard, 1, Put("01", "01")), _ct));
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        await b.CommitAsync(Next(taken, 1, Put("02", "02")), _ct);
        Assert.NotNull(await a.GetAsync(shard.ShardId, K("02"), _ct));
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>The split of an empty shard (both trees empty).</summary>
    private static ShardSplit EmptySplit(ShardState shard, byte[] splitKey) => new()
    {
        ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedVersion = shard.Version, NewVersion = shard.Version + 1, SplitKey = splitKey,
        LeftRoot = Fr.Zero, LeftKeyCount = 0, LeftNodes = [], RightRoot = Fr.Zero, RightKeyCount = 0, RightNodes = [],
        TimestampMicros = 1_700_000_100_000_000,
    };

    private SqliteConnection OpenRaw(string name, bool readOnly = true)
    {
        var c = new SqliteConnection($"Data Source={_directory.FileOf(name)};Mode={(readOnly ? "ReadOnly" : "ReadWrite")};Pooling=False");
        c.Open();
        return c;
    }

    private static object? Scalar(SqliteConnection c, string sql)
    {
        using var command = new SqliteCommand(sql, c);
        return command.ExecuteScalar();
    }

    private static void Execute(SqliteConnection c, string sql)
    {
        using var command = new SqliteCommand(sql, c);
        command.ExecuteNonQuery();
    }

    private static string Fingerprint(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file))) + ":" + new FileInfo(file).Length;
}
