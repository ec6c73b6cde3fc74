using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests;

/// <summary>
/// The <see cref="IShardStore"/> contract, run unchanged against every provider (Orleans style: derive, implement
/// <see cref="OpenStoreAsync"/>). Each test works on stores of its own names, so providers may share one server.
/// </summary>
public abstract class ShardStoreContractTests
{
    /// <summary>
    /// Opens the store called <paramref name="storeName"/>: a name never opened before gives an empty store; opening a
    /// name again (after the previous handle was disposed) gives the same durable data — that is how the tests
    /// check durability.
    /// </summary>
    protected abstract Task<IShardStore> OpenStoreAsync(string storeName);

    /// <summary>A fresh store name.</summary>
    protected static string NewStoreName() => "store_" + Guid.NewGuid().ToString("N")[..12];

    private readonly CancellationToken _ct = Deadline();

    private async Task<(IShardStore Store, string Name)> NewStoreAsync(IReadOnlyList<KeyRange>? layout = null)
    {
        var name = NewStoreName();
        var store = await OpenStoreAsync(name);
        if (layout is not null) await store.InitializeAsync(layout, _ct);
        return (store, name);
    }

    private async Task<IShardStore> ReopenAsync(IShardStore store, string name)
    {
        await store.DisposeAsync();
        return await OpenStoreAsync(name);
    }

    private async Task<ShardState> ShardAtAsync(IShardStore store, string keyHex)
    {
        var key = K(keyHex);
        return (await store.ListShardsAsync(_ct)).Single(s => s.Range.Contains(key));
    }

    private async Task<List<string>> AllKeysAsync(IShardStore store, long shardId) =>
        (await store.ScanAsync(shardId, Array.Empty<byte>(), null, 100_000, _ct)).Select(r => Hex(r.Key)).ToList();

    private static async Task<GridErrorCode> ErrorOf(Func<Task> call) => (await Assert.ThrowsAsync<GridException>(call)).Code;

    // ---------------------------------------------------------------- layout

    [Fact]
    public async Task InitializeCreatesTheLayoutInRangeOrder()
    {
        var (store, _) = await NewStoreAsync();
        await using var opened = store;
        var shards = await store.InitializeAsync([ThreeShards[2], ThreeShards[0], ThreeShards[1]], _ct);

        Assert.Equal(ThreeShards, shards.Select(s => s.Range));
        Assert.Equal(3, shards.Select(s => s.ShardId).Distinct().Count());
        Assert.All(shards, s =>
        {
            Assert.Equal(0, s.Version);
            Assert.Equal(0, s.Epoch);
            Assert.True(s.Root.IsZero);
            Assert.Equal(0, s.KeyCount);
        });
        Assert.Equal(shards, await store.ListShardsAsync(_ct));
        foreach (var s in shards) Assert.Equal(s, await store.GetShardAsync(s.ShardId, _ct));
    }

    [Fact]
    public async Task InitializeAgainChangesNothingAndIgnoresTheNewLayout()
    {
        var (store, name) = await NewStoreAsync(ThreeShards);
        var first = await store.ListShardsAsync(_ct);
        var again = await store.InitializeAsync([KeyRange.All], _ct);
        Assert.Equal(first, again);

        store = await ReopenAsync(store, name);
        await using var opened = store;
        Assert.Equal(first, await store.InitializeAsync(EightShards, _ct));
        // Even a bad layout is ignored once the store holds shards.
        Assert.Equal(first, await store.InitializeAsync([Range("", "10")], _ct));
    }

    public static TheoryData<string, KeyRange[]> BadLayouts() => new()
    {
        { "empty", [] },
        { "gap in the middle", [Range("", "40"), Range("50", null)] },
        { "overlap", [Range("", "50"), Range("40", null)] },
        { "does not start at the empty key", [Range("00", null)] },
        { "bounded end", [Range("", "40"), Range("40", "ff")] },
        { "two unbounded", [Range("", null), Range("80", null)] },
        { "same start twice", [Range("", "40"), Range("", "80"), Range("80", null)] },
        { "prefix gap", [Range("", "40"), Range("4000", null)] },
    };

    [Theory]
    [MemberData(nameof(BadLayouts))]
    public async Task InitializeRefusesABadLayoutAndCreatesNothing(string why, KeyRange[] layout)
    {
        var (store, _) = await NewStoreAsync();
        await using var opened = store;
        var e = await Assert.ThrowsAsync<GridException>(async () => await store.InitializeAsync(layout, _ct));
        Assert.True(e.Code == GridErrorCode.InvalidArgument, why);
        Assert.Empty(await store.ListShardsAsync(_ct));

        // The store is still usable: a good layout goes in afterwards.
        Assert.Equal(3, (await store.InitializeAsync(ThreeShards, _ct)).Count);
    }

    [Fact]
    public async Task ABadLayoutErrorNamesTheGap()
    {
        var (store, _) = await NewStoreAsync();
        await using var opened = store;
        var e = await Assert.ThrowsAsync<GridException>(async () => await store.InitializeAsync([Range("", "40"), Range("50", null)], _ct));
        Assert.Contains("gap", e.Message);
        Assert.Contains("[\"\", 40)", e.Message);
        Assert.Contains("[50, ∞)", e.Message);
    }

    [Fact]
    public async Task UnknownShardsAreReportedAsSuch()
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var opened = store;
        const long unknown = 987_654;
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.GetShardAsync(unknown, _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.ClaimAsync(unknown, _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.GetAsync(unknown, K("01"), _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.ScanAsync(unknown, K(""), null, 10, _ct)));
        var commit = new ShardCommit
        {
            ShardId = unknown, Epoch = 0, ExpectedVersion = 0, NewVersion = 1, NewRoot = Fr.Zero, NewKeyCount = 0, TimestampMicros = 1,
        };
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.CommitAsync(commit, _ct)));
        using var reader = store.OpenNodeReader(unknown);
        Assert.False(reader.TryGetNode(F(1), SmtPosition.Root, out _));
    }

    // ---------------------------------------------------------------- ownership

    [Fact]
    public async Task ClaimIncrementsTheEpochDurably()
    {
        var (store, name) = await NewStoreAsync(ThreeShards);
        var shard = await ShardAtAsync(store, "41");
        var first = await store.ClaimAsync(shard.ShardId, _ct);
        var second = await store.ClaimAsync(shard.ShardId, _ct);
        Assert.Equal(shard.Epoch + 1, first.Epoch);
        Assert.Equal(shard.Epoch + 2, second.Epoch);
        Assert.Equal(shard with { Epoch = shard.Epoch + 2 }, second);
        Assert.Equal(0, (await ShardAtAsync(store, "01")).Epoch);

        store = await ReopenAsync(store, name);
        await using var opened = store;
        Assert.Equal(second, await store.GetShardAsync(shard.ShardId, _ct));
    }

    // ---------------------------------------------------------------- commits

    [Fact]
    public async Task CommitWritesRowsVersionRootKeyCountAndTime()
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var opened = store;
        var shard = await store.ClaimAsync((await ShardAtAsync(store, "41")).ShardId, _ct);
        var commit = Next(shard, 2, Put("41", "aa"), Put("7f", "bb"));
        await store.CommitAsync(commit, _ct);

        var after = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(shard with
        {
            Version = commit.NewVersion, Root = commit.NewRoot!.Value, KeyCount = 2, UpdatedAtMicros = commit.TimestampMicros,
            TreeVersion = commit.NewVersion, // a combined commit moves the tree with the rows
        }, after);
        var row = await store.GetAsync(shard.ShardId, K("41"), _ct);
        Assert.NotNull(row);
        Assert.Equal(K("41"), row.Key);
        Assert.Equal(K("aa"), row.Value);
        Assert.Equal(commit.NewVersion, row.Version);
        Assert.Equal(commit.TimestampMicros, row.TimestampMicros);
        Assert.Null(await store.GetAsync(shard.ShardId, K("42"), _ct));
    }

    [Fact]
    public async Task UpsertsReplaceValuesAndStampTheirCommit()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = (await store.ListShardsAsync(_ct))[0];
        await store.CommitAsync(Next(shard, 2, Put("01", "01"), Put("02", "02")), _ct);
        shard = await store.GetShardAsync(shard.ShardId, _ct);
        var second = Next(shard, 3, Put("02", "2222"), Put("03", "03"));
        await store.CommitAsync(second, _ct);

        var one = await store.GetAsync(shard.ShardId, K("01"), _ct);
        var two = await store.GetAsync(shard.ShardId, K("02"), _ct);
        Assert.Equal(1, one!.Version);
        Assert.Equal(K("2222"), two!.Value);
        Assert.Equal(second.NewVersion, two.Version);
        Assert.Equal(second.TimestampMicros, two.TimestampMicros);
        Assert.Equal(3, (await store.GetShardAsync(shard.ShardId, _ct)).KeyCount);
    }

    [Fact]
    public async Task DeletesRemoveRowsAndAbsentDeletesAreHarmless()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = (await store.ListShardsAsync(_ct))[0];
        await store.CommitAsync(Next(shard, 3, Put("01", "01"), Put("02", "02"), Put("03", "03")), _ct);
        shard = await store.GetShardAsync(shard.ShardId, _ct);
        await store.CommitAsync(Next(shard, 2, Del("02"), Del("09")), _ct);

        Assert.Null(await store.GetAsync(shard.ShardId, K("02"), _ct));
        Assert.Equal(["01", "03"], await AllKeysAsync(store, shard.ShardId));
        Assert.Equal(2, (await store.GetShardAsync(shard.ShardId, _ct)).KeyCount);
    }

    [Fact]
    public async Task EmptyValuesAreStoredAsEmptyNotAsDeletes()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = (await store.ListShardsAsync(_ct))[0];
        await store.CommitAsync(Next(shard, 1, new RowWrite(K("05"), [])), _ct);
        var row = await store.GetAsync(shard.ShardId, K("05"), _ct);
        Assert.NotNull(row);
        Assert.Empty(row.Value);
    }

    [Fact]
    public async Task ACommitWithAStaleEpochIsAConflictAndChangesNothing()
    {
        var (store, name) = await NewStoreAsync(ThreeShards);
        var shard = await ShardAtAsync(store, "41");
        var old = await store.ClaimAsync(shard.ShardId, _ct);
        await store.CommitAsync(Next(old, 1, Put("41", "01")), _ct);
        old = await store.GetShardAsync(shard.ShardId, _ct);
        var current = await store.ClaimAsync(shard.ShardId, _ct); // ownership moves on

        var stale = WithNodes(Next(old, 2, Put("42", "02")), [Entry(SmtNode.Leaf(F(1), F(2)))], []);
        var e = await Assert.ThrowsAsync<GridException>(async () => await store.CommitAsync(stale, _ct));
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        Assert.Contains("epoch", e.Message);

        await AssertUnchanged(store, current, ["41"], SmtNode.Leaf(F(1), F(2)));
        store = await ReopenAsync(store, name);
        await using var opened = store;
        await AssertUnchanged(store, current, ["41"], SmtNode.Leaf(F(1), F(2)));
    }

    [Fact]
    public async Task ACommitWithAStaleVersionIsAConflictAndChangesNothing()
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var opened = store;
        var shard = await store.ClaimAsync((await ShardAtAsync(store, "81")).ShardId, _ct);
        await store.CommitAsync(Next(shard, 1, Put("81", "01")), _ct);
        var current = await store.GetShardAsync(shard.ShardId, _ct);

        var behind = WithNodes(Next(shard, 2, Put("82", "02")), [Entry(SmtNode.Leaf(F(3), F(4)))], []);
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.CommitAsync(behind, _ct)));
        var ahead = Next(current with { Version = current.Version + 5 }, 2, Put("82", "02"));
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.CommitAsync(ahead, _ct)));

        await AssertUnchanged(store, current, ["81"], SmtNode.Leaf(F(3), F(4)));
    }

    [Theory]
    [InlineData("3f")]       // below the shard's start
    [InlineData("80")]       // its (exclusive) end
    [InlineData("8000")]     // after the end
    [InlineData("")]         // the empty key, start of the key space
    public async Task ACommitWithARowOutsideTheRangeIsRefusedAndChangesNothing(string outsideHex)
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var opened = store;
        var shard = await store.ClaimAsync((await ShardAtAsync(store, "40")).ShardId, _ct);
        await store.CommitAsync(Next(shard, 1, Put("40", "01")), _ct);
        var current = await store.GetShardAsync(shard.ShardId, _ct);

        var bad = WithNodes(Next(current, 3, Put("41", "02"), Put(outsideHex, "03")), [Entry(SmtNode.Leaf(F(5), F(6)))], []);
        var e = await Assert.ThrowsAsync<GridException>(async () => await store.CommitAsync(bad, _ct));
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        Assert.Contains("outside", e.Message);

        await AssertUnchanged(store, current, ["40"], SmtNode.Leaf(F(5), F(6)));
        var neighbour = await ShardAtAsync(store, outsideHex.Length == 0 ? "00" : outsideHex);
        Assert.Empty(await AllKeysAsync(store, neighbour.ShardId));
    }

    [Fact]
    public async Task MalformedCommitsAreRefusedAndChangeNothing()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = (await store.ListShardsAsync(_ct))[0];
        await store.CommitAsync(Next(shard, 1, Put("01", "01")), _ct);
        var current = await store.GetShardAsync(shard.ShardId, _ct);

        ShardCommit[] malformed =
        [
            Clone(Next(current, 2, Put("02", "02")), newVersion: current.Version),      // NewVersion not after ExpectedVersion
            Next(current, 2, Put("02", "02"), Put("02", "03")),          // the same key twice
            Next(current, 3, Put("02", "02")),                           // key count that does not match the rows
            Next(current, 1, Put("02", "02")),                           // (an insert does not keep the count)
            Next(current, 1, Del("01"), Put("01", "01")),                // the same key twice, delete and put
            Next(current, 2, new RowWrite(null!, K("01"))),              // a null key
        ];
        foreach (var commit in malformed)
        {
            var e = await Assert.ThrowsAsync<GridException>(async () => await store.CommitAsync(commit, _ct));
            Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        }
        await AssertUnchanged(store, current, ["01"], null);
    }

    // ---------------------------------------------------------------- reads

    [Fact]
    public async Task ScansReturnRowsInUnsignedLexicographicOrder()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = (await store.ListShardsAsync(_ct))[0];
        string[] keys = ["00", "0000", "000000", "0001", "01", "0100", "01ff", "02", "7f", "80", "8000", "ff", "ff00", "ffff", "ffffff"];
        var shuffled = keys.OrderBy(k => k.GetHashCode()).Select(k => Put(k, k.Length == 0 ? "00" : k)).ToArray();
        await store.CommitAsync(Next(shard, keys.Length, shuffled), _ct);
        var expected = keys.OrderBy(K, Comparer<byte[]>.Create((a, b) => KeyRange.Compare(a, b))).ToList();
        Assert.Equal(keys, expected); // the list above is written in the order the store must return

        Assert.Equal(expected, await AllKeysAsync(store, shard.ShardId));
        Assert.Equal(["0001", "01", "0100"], await ScanAsync(store, shard.ShardId, "0001", "01ff", 100));
        Assert.Equal(["0001", "01"], await ScanAsync(store, shard.ShardId, "0001", "01ff", 2));
        Assert.Equal(["ff00", "ffff", "ffffff"], await ScanAsync(store, shard.ShardId, "ff00", null, 100));
        Assert.Equal(["ffff", "ffffff"], await ScanAsync(store, shard.ShardId, "ff0000", null, 100)); // ff00 < ff0000: a prefix sorts first
        Assert.Equal(["00", "0000"], await ScanAsync(store, shard.ShardId, "", "000000", 100));
        Assert.Equal(["80"], await ScanAsync(store, shard.ShardId, "7f01", "8000", 100));
        Assert.Empty(await ScanAsync(store, shard.ShardId, "03", "7f", 100));
        Assert.Empty(await ScanAsync(store, shard.ShardId, "01", "01", 100)); // empty interval
        Assert.Equal(["ffffff"], await ScanAsync(store, shard.ShardId, "fffffe", null, 1));

        Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(async () => await store.ScanAsync(shard.ShardId, K("02"), K("01"), 10, _ct)));
        Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(async () => await store.ScanAsync(shard.ShardId, K(""), null, 0, _ct)));

        foreach (var key in keys)
        {
            var row = await store.GetAsync(shard.ShardId, K(key), _ct);
            Assert.Equal(K(key), row!.Value);
        }
        Assert.Null(await store.GetAsync(shard.ShardId, K("0002"), _ct));
        Assert.Null(await store.GetAsync(shard.ShardId, K("fffffff0"), _ct));
    }

    [Fact]
    public async Task ReadsAcceptSlicesOfLargerBuffers()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = (await store.ListShardsAsync(_ct))[0];
        await store.CommitAsync(Next(shard, 2, Put("0102", "aa"), Put("0103", "bb")), _ct);
        var buffer = K("ff0102ff0104ff");
        var row = await store.GetAsync(shard.ShardId, buffer.AsMemory(1, 2), _ct);
        Assert.Equal(K("aa"), row!.Value);
        Assert.Equal(K("0102"), row.Key);
        var rows = await store.ScanAsync(shard.ShardId, buffer.AsMemory(1, 2), buffer.AsMemory(4, 2), 10, _ct);
        Assert.Equal(["0102", "0103"], rows.Select(r => Hex(r.Key)));
    }

    private async Task<List<string>> ScanAsync(IShardStore store, long shardId, string start, string? end, int limit) =>
        // Careful: `end is null ? null : K(end)` would be a null byte[] turned into an empty, non-null ReadOnlyMemory.
        (await store.ScanAsync(shardId, K(start), end is null ? (ReadOnlyMemory<byte>?)null : K(end), limit, _ct)).Select(r => Hex(r.Key)).ToList();

    // ---------------------------------------------------------------- tree nodes

    [Fact]
    public async Task ABulkNodeReadAnswersEachPositionAsASingleReadWouldInAnyOrderAndNeverAcrossShards()
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var owned = store;
        var shard = await ShardAtAsync(store, "00");
        var other = await ShardAtAsync(store, "80");
        var leaves = Enumerable.Range(1, 40).Select(i => SmtNode.Leaf(F((ulong)i), F((ulong)(i * 10)))).ToList();
        var middle = SmtNode.Middle(leaves[0].Hash(), leaves[1].Hash());
        await store.CommitAsync(WithNodes(Next(shard, 0), [.. leaves.Select(l => Entry(l)), Entry(middle)], []), _ct);
        var foreign = SmtNode.Leaf(F(777), F(1));
        await store.CommitAsync(WithNodes(Next(other, 0), [Entry(foreign)], []), _ct);

        // Stored; an empty position; another shard's node; one lookup twice; a stored node asked at another node's
        // position, and at a position that is empty; in no particular order.
        (Fr Hash, SmtPosition At)[] asked =
        [
            (leaves[5].Hash(), At(leaves[5])), (F(424242), SmtPosition.Of(F(424242), 16)), (middle.Hash(), SmtPosition.Root),
            (foreign.Hash(), At(foreign)), (leaves[5].Hash(), At(leaves[5])), (leaves[6].Hash(), At(leaves[7])),
            (leaves[6].Hash(), SmtPosition.Of(F(6), 17)), .. leaves.Skip(10).Select(l => (l.Hash(), At(l))), (Fr.Zero, SmtPosition.Root),
        ];
        var hashes = asked.Select(a => a.Hash).ToArray();
        var positions = asked.Select(a => a.At).ToArray();
        var nodes = new SmtNode[hashes.Length];
        var found = new bool[hashes.Length];
        using var reader = store.OpenNodeReader(shard.ShardId);
        reader.GetNodes(hashes, positions, nodes, found);
        for (int i = 0; i < hashes.Length; i++)
        {
            bool single = reader.TryGetNode(hashes[i], positions[i], out var expected);
            Assert.Equal(single, found[i]);
            if (single) Assert.Equal(expected, nodes[i]);
        }
        Assert.Equal([true, false, true, false, true, false, false], found[..7]);
        Assert.Equal(middle, nodes[2]);
        Assert.Equal(leaves[5], nodes[4]);
        Assert.All(found[7..^1], Assert.True);
        Assert.False(found[^1]);

        reader.GetNodes([], [], [], []); // nothing asked, nothing answered
        Assert.Throws<ArgumentException>(() => reader.GetNodes(hashes, positions, new SmtNode[1], found));
        Assert.Throws<ArgumentException>(() => reader.GetNodes(hashes, positions[1..], nodes, found));
    }

    [Fact]
    public async Task NodesAddedAndRemovedByCommitsAreVisibleThroughTheReader()
    {
        var (store, name) = await NewStoreAsync(ThreeShards);
        var shard = await ShardAtAsync(store, "00");
        var other = await ShardAtAsync(store, "80");
        var leafA = SmtNode.Leaf(F(1), F(10));
        var leafB = SmtNode.Leaf(F(2), F(20));
        var middle = SmtNode.Middle(leafA.Hash(), leafB.Hash());
        using var reader = store.OpenNodeReader(shard.ShardId); // opened before the commits: sees them anyway
        Assert.False(reader.TryGetNode(middle, out _));

        await store.CommitAsync(WithNodes(Next(shard, 0), [Entry(leafA), Entry(leafB), Entry(middle)], []), _ct);
        Assert.True(reader.TryGetNode(middle, out var got));
        Assert.Equal(middle, got);
        Assert.True(reader.TryGetNode(leafA, out got));
        Assert.Equal(leafA, got);
        Assert.Equal(F(1), got.Key);
        Assert.Equal(F(10), got.Value);
        Assert.False(reader.TryGetNode(leafA.Hash(), At(leafB), out _)); // a node is found only where it sits
        using (var otherReader = store.OpenNodeReader(other.ShardId)) Assert.False(otherReader.TryGetNode(leafA, out _));

        shard = await store.GetShardAsync(shard.ShardId, _ct);
        // Removal before addition: a position in both lists holds the added node; an empty position is ignored.
        await store.CommitAsync(WithNodes(Next(shard, 0), [Entry(leafA)], [At(middle), At(leafB), At(leafA), SmtPosition.Of(F(99), 40)]), _ct);
        Assert.False(reader.TryGetNode(middle, out _));
        Assert.False(reader.TryGetNode(leafB, out _));
        Assert.True(reader.TryGetNode(leafA, out _));

        // A position filled again holds the new node: a replacement in place.
        shard = await store.GetShardAsync(shard.ShardId, _ct);
        var leafA2 = SmtNode.Leaf(F(1), F(11));
        await store.CommitAsync(WithNodes(Next(shard, 0), [Entry(leafA2)], [At(leafA)]), _ct);
        Assert.False(reader.TryGetNode(leafA, out _));
        Assert.True(reader.TryGetNode(leafA2, out got));
        Assert.Equal(leafA2, got);

        store = await ReopenAsync(store, name);
        await using var opened = store;
        using var reopened = store.OpenNodeReader(shard.ShardId);
        Assert.True(reopened.TryGetNode(leafA2, out got));
        Assert.Equal(leafA2, got);
        Assert.False(reopened.TryGetNode(middle, out _));
    }

    [Fact]
    public async Task ReopeningSeesEverythingCommitted()
    {
        var (store, name) = await NewStoreAsync(ThreeShards);
        var states = new List<ShardState>();
        foreach (var s in await store.ListShardsAsync(_ct))
        {
            var owned = await store.ClaimAsync(s.ShardId, _ct);
            var prefix = Hex(owned.Range.Start.ToArray());
            var first = prefix.Length == 0 ? "00" : prefix;
            var leaf = SmtNode.Leaf(F((ulong)owned.ShardId), F(7));
            await store.CommitAsync(WithNodes(Next(owned, 2, Put(first + "01", "01"), Put(first + "02", "02")), [Entry(leaf)], []), _ct);
            states.Add(await store.GetShardAsync(s.ShardId, _ct));
        }

        store = await ReopenAsync(store, name);
        await using var opened = store;
        Assert.Equal(states, await store.ListShardsAsync(_ct));
        foreach (var s in states)
        {
            Assert.Equal(2, (await AllKeysAsync(store, s.ShardId)).Count);
            using var reader = store.OpenNodeReader(s.ShardId);
            Assert.True(reader.TryGetNode(SmtNode.Leaf(F((ulong)s.ShardId), F(7)), out _));
        }
    }

    // ---------------------------------------------------------------- concurrency

    [Fact]
    public async Task ConcurrentCommitsToDifferentShardsAllLand()
    {
        var (store, name) = await NewStoreAsync(EightShards);
        const int commits = 25, rowsPerCommit = 8;
        var shards = await store.ListShardsAsync(_ct);
        await Task.WhenAll(shards.Select(s => Task.Run(async () =>
        {
            var state = await store.ClaimAsync(s.ShardId, _ct);
            byte prefix = state.Range.Start.IsEmpty ? (byte)0 : state.Range.Start[0];
            for (int c = 0; c < commits; c++)
            {
                var rows = Enumerable.Range(0, rowsPerCommit)
                    .Select(i => Put([prefix, (byte)c, (byte)i], [(byte)c])).ToArray();
                await store.CommitAsync(Next(state, (c + 1) * rowsPerCommit, rows), _ct);
                state = state with { Version = state.Version + 1 };
            }
        })));

        store = await ReopenAsync(store, name);
        await using var opened = store;
        foreach (var s in await store.ListShardsAsync(_ct))
        {
            Assert.Equal(commits, s.Version);
            Assert.Equal(commits * rowsPerCommit, s.KeyCount);
            var keys = await store.ScanAsync(s.ShardId, Array.Empty<byte>(), null, 10_000, _ct);
            Assert.Equal(commits * rowsPerCommit, keys.Count);
            Assert.All(keys, r => Assert.True(s.Range.Contains(r.Key)));
        }
    }

    [Fact]
    public async Task RacingCommitsOnOneShardHaveExactlyOneWinner()
    {
        var (store, _) = await NewStoreAsync([KeyRange.All]);
        await using var opened = store;
        var shard = await store.ClaimAsync((await store.ListShardsAsync(_ct))[0].ShardId, _ct);
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            try
            {
                await store.CommitAsync(Next(shard, 1, Put([(byte)i], [(byte)i])), _ct);
                return (GridErrorCode?)null;
            }
            catch (GridException e)
            {
                return e.Code;
            }
        })));

        Assert.Single(outcomes, o => o is null);
        Assert.All(outcomes.Where(o => o is not null), o => Assert.Equal(GridErrorCode.Conflict, o));
        var after = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(1, after.Version);
        Assert.Single(await AllKeysAsync(store, shard.ShardId));
    }

    // ---------------------------------------------------------------- split and merge

    [Fact]
    public async Task ASplitMovesTheRowsAndBothTreesReopenFromTheStore()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(300);
        var before = await store.ListShardsAsync(_ct);
        using (var early = store.OpenNodeReader(shard.ShardId)) Assert.True(early.TryGetNode(tree.Root, SmtPosition.Root, out _));
        var reader = store.OpenNodeReader(shard.ShardId); // opened before the split: must see the new node set

        var split = SplitOf(shard, K("60"), rows);
        var (left, right) = await store.SplitAsync(split, _ct);

        Assert.Equal(new ShardState(shard.ShardId, Range("40", "60"), split.NewVersion, shard.Epoch, split.LeftRoot, split.LeftKeyCount,
            split.TimestampMicros, split.NewVersion), left);
        Assert.Equal(before.Max(s => s.ShardId) + 1, right.ShardId);
        Assert.Equal(new ShardState(right.ShardId, Range("60", "80"), split.NewVersion, shard.Epoch, split.RightRoot, split.RightKeyCount,
            split.TimestampMicros, split.NewVersion), right);
        Assert.True(split.LeftKeyCount > 50 && split.RightKeyCount > 50, "both sides hold rows");

        // The left shard's tree was replaced: the old root and the right side's leaves are gone from it, its own nodes are there.
        var leftTree = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, split.SplitKey) < 0));
        var rightTree = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, split.SplitKey) >= 0));
        Assert.False(reader.TryGetNode(tree.Root, SmtPosition.Root, out _));
        AssertNodes(reader, leftTree.Nodes);
        var leftNodes = leftTree.Nodes.ToHashSet();
        foreach (var stale in tree.Nodes.Where(n => !leftNodes.Contains(n))) Assert.False(reader.TryGetNode(stale, out _));
        foreach (var moved in rightTree.Nodes) Assert.False(reader.TryGetNode(moved, out _));
        reader.Dispose();

        store = await ReopenAsync(store, name);
        await using var opened = store;
        var after = await AssertLayoutCompleteAsync(store);
        Assert.Equal(before.Count + 1, after.Count);
        Assert.Equal(left, await store.GetShardAsync(left.ShardId, _ct));
        Assert.Equal(right, await store.GetShardAsync(right.ShardId, _ct));
        foreach (var other in before.Where(s => s.ShardId != shard.ShardId)) Assert.Equal(other, await store.GetShardAsync(other.ShardId, _ct));
        await AssertHoldsAsync(store, left, rows.Where(r => KeyRange.Compare(r.Key, split.SplitKey) < 0).ToArray(), leftTree);
        await AssertHoldsAsync(store, right, rows.Where(r => KeyRange.Compare(r.Key, split.SplitKey) >= 0).ToArray(), rightTree);
        Assert.Null(await store.GetAsync(left.ShardId, rows[^1].Key, _ct));
        Assert.NotNull(await store.GetAsync(right.ShardId, rows[^1].Key, _ct));

        // The right shard is a shard like any other: its owner (the left one's, same epoch) commits on the stored tree.
        using var nodes = ShardTreeNodeStore.Open(store, right);
        var reopened = new SparseMerkleTree(nodes);
        var added = Put("7fff", "01");
        reopened.Upsert(PoseidonBytes.Hash(added.Key), PoseidonBytes.Hash(added.Value));
        var staged = nodes.TakeStaged();
        await store.CommitAsync(new ShardCommit
        {
            ShardId = right.ShardId, Epoch = right.Epoch, ExpectedVersion = right.Version, NewVersion = right.Version + 1, NewRoot = staged.NewRoot,
            NewKeyCount = right.KeyCount + 1, TimestampMicros = right.UpdatedAtMicros + 1, Rows = [added],
            AddedNodes = staged.AddedNodes, RemovedPositions = staged.RemovedPositions,
        }, _ct);
        nodes.AcceptStaged();
        Assert.Equal(TreeOf(rows.Where(r => KeyRange.Compare(r.Key, split.SplitKey) >= 0).Append(added)).Root, staged.NewRoot);
    }

    [Fact]
    public async Task ASplitWithAStaleEpochOrVersionIsAConflictAndChangesNothing()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(120);
        var current = await store.ClaimAsync(shard.ShardId, _ct); // ownership moves on: shard's epoch is stale
        var snapshot = await SnapshotAsync(store);

        var e = await Assert.ThrowsAsync<GridException>(async () => await store.SplitAsync(SplitOf(shard, K("60"), rows), _ct));
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        Assert.Contains("epoch", e.Message);
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.SplitAsync(SplitOf(current with { Version = current.Version - 1 }, K("60"), rows), _ct)));
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.SplitAsync(SplitOf(current with { Version = current.Version + 1 }, K("60"), rows), _ct)));

        await AssertUnchangedAsync(store, snapshot, current.ShardId, tree);
        store = await ReopenAsync(store, name);
        await using var opened = store;
        await AssertUnchangedAsync(store, snapshot, current.ShardId, tree);
    }

    [Theory]
    [InlineData("40")]     // the shard's start
    [InlineData("3f")]     // before it
    [InlineData("")]       // the start of the key space
    [InlineData("80")]     // its (exclusive) end
    [InlineData("8000")]   // after the end
    [InlineData("90")]
    public async Task ASplitKeyNotStrictlyInsideTheRangeIsRefusedAndChangesNothing(string splitKeyHex)
    {
        var (store, _, shard, rows, tree) = await NewFilledShardAsync(60);
        await using var opened = store;
        var snapshot = await SnapshotAsync(store);

        var e = await Assert.ThrowsAsync<GridException>(async () => await store.SplitAsync(SplitOf(shard, K(splitKeyHex), rows), _ct));
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        Assert.Contains("split key", e.Message);
        await AssertUnchangedAsync(store, snapshot, shard.ShardId, tree);

        // The first shard starts at the empty key: splitting it there is refused too; just after it is fine.
        var first = await ShardAtAsync(store, "00");
        Assert.Equal(GridErrorCode.InvalidArgument, await ErrorOf(async () => await store.SplitAsync(SplitOf(first, K(""), []), _ct)));
        await store.SplitAsync(SplitOf(first, K("00"), []), _ct);
        await AssertLayoutCompleteAsync(store);
    }

    [Fact]
    public async Task ASplitWhoseKeyCountsOrVersionAreWrongIsRefusedAndChangesNothing()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(100);
        var snapshot = await SnapshotAsync(store);
        var good = SplitOf(shard, K("60"), rows);

        ShardSplit[] malformed =
        [
            SplitOf(shard, K("60"), rows, leftKeyCount: good.LeftKeyCount + 1, rightKeyCount: good.RightKeyCount - 1), // right total, wrong side
            SplitOf(shard, K("60"), rows, leftKeyCount: good.LeftKeyCount + 1),
            SplitOf(shard, K("60"), rows, rightKeyCount: good.RightKeyCount - 1),
            SplitOf(shard, K("60"), rows, leftKeyCount: -1),
            SplitOf(shard, K("60"), rows, newVersion: shard.Version),                     // NewVersion not after ExpectedVersion
        ];
        foreach (var split in malformed)
        {
            var e = await Assert.ThrowsAsync<GridException>(async () => await store.SplitAsync(split, _ct));
            Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
        }
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.SplitAsync(SplitOf(shard with { ShardId = 987_654 }, K("60"), rows), _ct)));

        await AssertUnchangedAsync(store, snapshot, shard.ShardId, tree);
        store = await ReopenAsync(store, name);
        await using var opened = store;
        await AssertUnchangedAsync(store, snapshot, shard.ShardId, tree);
    }

    [Fact]
    public async Task AMergeAfterASplitRestoresOneShardWithAllRowsAndTheGivenRoot()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(300);
        var original = await AllRowsAsync(store, shard.ShardId);
        var (left, right) = await store.SplitAsync(SplitOf(shard, K("5a"), rows), _ct);
        var rightTree = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, K("5a")) >= 0));
        var rightReader = store.OpenNodeReader(right.ShardId);
        Assert.True(rightReader.TryGetNode(right.Root, SmtPosition.Root, out _));

        var merge = MergeOf(left, right, rows);
        Assert.Equal(tree.Root, merge.Root); // the same rows make the same tree
        var merged = await store.MergeAsync(merge, _ct);

        Assert.Equal(new ShardState(shard.ShardId, Range("40", "80"), merge.NewVersion, shard.Epoch, tree.Root, rows.Length, merge.TimestampMicros,
            merge.NewVersion), merged);
        // The right shard is gone, nodes and all, and its old reader finds nothing.
        foreach (var node in rightTree.Nodes) Assert.False(rightReader.TryGetNode(node, out _));
        rightReader.Dispose();

        store = await ReopenAsync(store, name);
        await using var opened = store;
        var after = await AssertLayoutCompleteAsync(store);
        Assert.Equal(ThreeShards, after.Select(s => s.Range));
        Assert.Equal(merged, await store.GetShardAsync(shard.ShardId, _ct));
        Assert.Equal(original, await AllRowsAsync(store, shard.ShardId)); // keys, values, and the version and time each row was written at
        await AssertHoldsAsync(store, merged, rows, tree);

        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.GetShardAsync(right.ShardId, _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.ScanAsync(right.ShardId, K(""), null, 10, _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.GetAsync(right.ShardId, rows[^1].Key, _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.ClaimAsync(right.ShardId, _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.CommitAsync(Next(right, 1, Put("70", "01")), _ct)));
        using var gone = store.OpenNodeReader(right.ShardId);
        Assert.False(gone.TryGetNode(right.Root, SmtPosition.Root, out _));
    }

    [Fact]
    public async Task MergingShardsThatAreNotAdjacentInThatOrderIsRefusedAndChangesNothing()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(80);
        var (left, right) = await store.SplitAsync(SplitOf(shard, K("60"), rows), _ct);
        var first = await ShardAtAsync(store, "00");
        var last = await ShardAtAsync(store, "80");
        var snapshot = await SnapshotAsync(store);
        var leftTree = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, K("60")) < 0));

        ShardMerge[] refused =
        [
            MergeOf(right, left, rows),                    // adjacent, but the wrong way round
            MergeOf(first, right, rows.Where(r => KeyRange.Compare(r.Key, K("60")) >= 0).ToArray()), // a shard in between
            MergeOf(first, last, []),                      // [, 40) and [80, ∞)
            MergeOf(last, first, []),                      // the unbounded one as the left
            MergeOf(left, left, rows),                     // a shard with itself
            MergeOf(left, right, rows, keyCount: rows.Length - 1),
            MergeOf(left, right, rows, keyCount: rows.Length + 1),
            MergeOf(left, right, rows, newVersion: left.Version),
        ];
        foreach (var merge in refused)
        {
            var e = await Assert.ThrowsAsync<GridException>(async () => await store.MergeAsync(merge, _ct));
            Assert.True(e.Code == GridErrorCode.InvalidArgument, $"{merge.LeftShardId} + {merge.RightShardId}: {e.Code} {e.Message}");
        }
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.MergeAsync(MergeOf(left, right with { ShardId = 987_654 }, rows), _ct)));
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.MergeAsync(MergeOf(left with { ShardId = 987_654 }, right, rows), _ct)));

        await AssertUnchangedAsync(store, snapshot, left.ShardId, leftTree);
        store = await ReopenAsync(store, name);
        await using var opened = store;
        await AssertUnchangedAsync(store, snapshot, left.ShardId, leftTree);
    }

    [Fact]
    public async Task AMergeWithAStaleEpochOrVersionOnEitherSideIsAConflictAndChangesNothing()
    {
        var (store, name, shard, rows, _) = await NewFilledShardAsync(80);
        var (left, right) = await store.SplitAsync(SplitOf(shard, K("60"), rows), _ct);
        var leftTree = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, K("60")) < 0));

        // The right shard changes hands (a claim): a merge built on its old epoch must not apply.
        var rightNow = await store.ClaimAsync(right.ShardId, _ct);
        var snapshot = await SnapshotAsync(store);
        var e = await Assert.ThrowsAsync<GridException>(async () => await store.MergeAsync(MergeOf(left, right, rows), _ct));
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        Assert.Contains("epoch", e.Message);
        // Stale versions, either side.
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.MergeAsync(MergeOf(left with { Version = left.Version - 1 }, rightNow, rows), _ct)));
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.MergeAsync(MergeOf(left, rightNow with { Version = rightNow.Version + 1 }, rows), _ct)));
        await AssertUnchangedAsync(store, snapshot, left.ShardId, leftTree);

        // Now the left one: its epoch moves on too.
        var leftNow = await store.ClaimAsync(left.ShardId, _ct);
        snapshot = await SnapshotAsync(store);
        Assert.Equal(GridErrorCode.Conflict, await ErrorOf(async () => await store.MergeAsync(MergeOf(left, rightNow, rows), _ct)));
        await AssertUnchangedAsync(store, snapshot, left.ShardId, leftTree);

        store = await ReopenAsync(store, name);
        await using var opened = store;
        await AssertUnchangedAsync(store, snapshot, left.ShardId, leftTree);
        // With both current epochs and versions the same merge applies, and the merged shard keeps the left one's epoch.
        var merged = await store.MergeAsync(MergeOf(leftNow, rightNow, rows), _ct);
        Assert.Equal(leftNow.Epoch, merged.Epoch);
        Assert.Equal(ThreeShards, (await AssertLayoutCompleteAsync(store)).Select(s => s.Range));
    }

    [Fact]
    public async Task TheLayoutStaysCompleteThroughSplitsAndMerges()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(200);
        var ids = (await store.ListShardsAsync(_ct)).Select(s => s.ShardId).ToHashSet();

        // Split the unbounded last shard (empty: zero roots, no nodes), the first one, and the filled one twice.
        var last = await ShardAtAsync(store, "80");
        var (_, tail) = await store.SplitAsync(SplitOf(last, K("c0"), []), _ct);
        Assert.True(tail.Range.IsUnbounded);
        Assert.True(tail.Root.IsZero);
        Assert.True(ids.Add(tail.ShardId));
        await AssertLayoutCompleteAsync(store);

        var first = await ShardAtAsync(store, "00");
        var (_, firstRight) = await store.SplitAsync(SplitOf(first, K("2000"), []), _ct);
        Assert.True(ids.Add(firstRight.ShardId));
        await AssertLayoutCompleteAsync(store);

        var (a, c) = await store.SplitAsync(SplitOf(shard, K("60"), rows), _ct);
        Assert.True(ids.Add(c.ShardId));
        var rowsB = rows.Where(r => KeyRange.Compare(r.Key, K("60")) < 0).ToArray();
        var (a2, b) = await store.SplitAsync(SplitOf(a, K("50"), rowsB), _ct);
        Assert.True(ids.Add(b.ShardId));
        var layout = await AssertLayoutCompleteAsync(store);
        Assert.Equal(7, layout.Count);
        Assert.Equal(rows.Length, layout.Sum(s => s.KeyCount));

        store = await ReopenAsync(store, name);
        await using var opened = store;
        Assert.Equal(layout, await store.ListShardsAsync(_ct));

        // Merge back in another order than the splits: [50, 60) + [60, 80), then [40, 50) + that, then the tail.
        var bc = await store.MergeAsync(MergeOf(b, c, rows.Where(r => KeyRange.Compare(r.Key, K("50")) >= 0).ToArray()), _ct);
        await AssertLayoutCompleteAsync(store);
        var all = await store.MergeAsync(MergeOf(a2, bc, rows), _ct);
        Assert.Equal(tree.Root, all.Root);
        await AssertLayoutCompleteAsync(store);
        var lastNow = await ShardAtAsync(store, "80");
        var unbounded = await store.MergeAsync(MergeOf(lastNow, tail, []), _ct);
        Assert.True(unbounded.Range.IsUnbounded);
        var firstNow = await ShardAtAsync(store, "00");
        await store.MergeAsync(MergeOf(firstNow, firstRight, []), _ct);

        Assert.Equal(ThreeShards, (await AssertLayoutCompleteAsync(store)).Select(s => s.Range));
        await AssertHoldsAsync(store, all, rows, tree);
    }

    [Fact]
    public async Task ConcurrentSplitsOfDifferentShardsAllLandWithDifferentIds()
    {
        var (store, name) = await NewStoreAsync(EightShards);
        var shards = await store.ListShardsAsync(_ct);
        var results = await Task.WhenAll(shards.Select(s => Task.Run(async () =>
        {
            var owned = await store.ClaimAsync(s.ShardId, _ct);
            byte start = owned.Range.Start.IsEmpty ? (byte)0 : owned.Range.Start[0];
            return await store.SplitAsync(SplitOf(owned, [(byte)(start + 0x10)], []), _ct);
        })));

        var newIds = results.Select(r => r.Right.ShardId).ToList();
        Assert.Equal(shards.Count, newIds.Distinct().Count());
        Assert.DoesNotContain(newIds, id => shards.Any(s => s.ShardId == id));
        store = await ReopenAsync(store, name);
        await using var opened = store;
        var layout = await AssertLayoutCompleteAsync(store);
        Assert.Equal(2 * shards.Count, layout.Count);
        foreach (var (left, right) in results)
        {
            Assert.Equal(left, await store.GetShardAsync(left.ShardId, _ct));
            Assert.Equal(right, await store.GetShardAsync(right.ShardId, _ct));
        }
    }

    [Fact]
    public async Task AnIdMergedAwayIsNeverGivenToALaterSplit()
    {
        // The right shard of a split has the largest id; merging it away and splitting again is exactly where max(id) + 1
        // would hand the same id to a different shard. Clients cache shard maps by id: an id must name one shard forever.
        var (store, _, shard, rows, tree) = await NewFilledShardAsync(120);
        await using var opened = store;
        var used = (await store.ListShardsAsync(_ct)).Select(s => s.ShardId).ToHashSet();
        string[] splitKeys = ["60", "50", "70", "60"];
        foreach (var splitKey in splitKeys)
        {
            var (left, right) = await store.SplitAsync(SplitOf(shard, K(splitKey), rows), _ct);
            Assert.True(used.Add(right.ShardId), $"split at {splitKey} gave id {right.ShardId}, used before ({string.Join(", ", used.Order())})");
            Assert.Equal(right.ShardId, (await store.ListShardsAsync(_ct)).Max(s => s.ShardId)); // it is the largest id, about to be freed
            shard = await store.MergeAsync(MergeOf(left, right, rows), _ct);
            Assert.Equal(ThreeShards, (await AssertLayoutCompleteAsync(store)).Select(s => s.Range));
        }
        await AssertHoldsAsync(store, shard, rows, tree);

        // Splitting another shard, or the merged one twice over, still never gives an id that was used.
        var last = await ShardAtAsync(store, "80");
        var (_, tail) = await store.SplitAsync(SplitOf(last, K("c0"), []), _ct);
        Assert.True(used.Add(tail.ShardId));
        var (a, c) = await store.SplitAsync(SplitOf(shard, K("60"), rows), _ct);
        Assert.True(used.Add(c.ShardId));
        var (_, b) = await store.SplitAsync(SplitOf(a, K("50"), rows.Where(r => KeyRange.Compare(r.Key, K("60")) < 0).ToArray()), _ct);
        Assert.True(used.Add(b.ShardId));
        await AssertLayoutCompleteAsync(store);
    }

    [Fact]
    public async Task TheIdCounterSurvivesReopeningTheStore()
    {
        var (store, name, shard, rows, _) = await NewFilledShardAsync(80);
        var used = (await store.ListShardsAsync(_ct)).Select(s => s.ShardId).ToHashSet();
        var (left, right) = await store.SplitAsync(SplitOf(shard, K("60"), rows), _ct);
        Assert.True(used.Add(right.ShardId));
        var merged = await store.MergeAsync(MergeOf(left, right, rows), _ct);
        // No shard row remembers right's id any more: only the counter does, and it must be as durable as the shards.

        store = await ReopenAsync(store, name); // disposed by the next reopen
        await store.InitializeAsync(EightShards, _ct); // what every silo start does: changes nothing, the counter included
        Assert.Equal(ThreeShards, (await AssertLayoutCompleteAsync(store)).Select(s => s.Range));
        var (_, again) = await store.SplitAsync(SplitOf(merged, K("60"), rows), _ct);
        Assert.True(used.Add(again.ShardId), $"after reopening, a split gave id {again.ShardId}, used before ({string.Join(", ", used.Order())})");

        // The same once more across a reopen with nothing in between: each reopen keeps the counter where the last split left it.
        var last = await ShardAtAsync(store, "80");
        var (lastLeft, tail) = await store.SplitAsync(SplitOf(last, K("c0"), []), _ct);
        Assert.True(used.Add(tail.ShardId));
        await store.MergeAsync(MergeOf(lastLeft, tail, []), _ct);
        store = await ReopenAsync(store, name);
        await using var reopened = store;
        var (_, tail2) = await store.SplitAsync(SplitOf(await ShardAtAsync(store, "80"), K("c0"), []), _ct);
        Assert.True(used.Add(tail2.ShardId), $"after reopening, a split gave id {tail2.ShardId}, used before ({string.Join(", ", used.Order())})");
        await AssertLayoutCompleteAsync(store);
    }

    // ---------------------------------------------------------------- the decoupled tree: data commits, tree commits, unfolded changes

    [Fact]
    public async Task ADataCommitMovesTheDataAndLeavesTheTreeWithItsKeysUnfolded()
    {
        var (store, _, shard, rows, tree) = await NewFilledShardAsync(40);
        await using var opened = store;
        Assert.Equal(shard.Version, shard.TreeVersion);
        Assert.False(shard.HasUnfolded);
        Assert.Empty((await store.ReadUnfoldedAsync(shard.ShardId, _ct)).Rows);

        // The store counts a data commit's keys: 2 inserted, 1 deleted.
        var first = DataCommit(shard, Put("41", "01"), Put("50", "02"), Del(Hex(rows[0].Key)));
        await store.CommitAsync(first, _ct);
        var afterFirst = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(shard with { Version = first.NewVersion, KeyCount = rows.Length + 1, UpdatedAtMicros = first.TimestampMicros }, afterFirst);

        // An overwrite, a delete of a key the first one inserted, two inserts (one a prefix of a stored key), an absent delete: +1.
        var second = DataCommit(afterFirst, Put("41", "03"), Del("50"), Put("4000", "04"), Put("7f", "05"), Del("4fff"));
        await store.CommitAsync(second, _ct);
        var after = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(shard with { Version = second.NewVersion, KeyCount = rows.Length + 2, UpdatedAtMicros = second.TimestampMicros }, after);
        Assert.Equal(tree.Root, after.Root);
        Assert.True(after.HasUnfolded);

        var current = Applied(rows, first.Rows, second.Rows);
        Assert.Equal(current.Select(r => Hex(r.Key) + "=" + Hex(r.Value!)),
            (await store.ScanAsync(shard.ShardId, Array.Empty<byte>(), null, 100_000, _ct)).Select(r => Hex(r.Key) + "=" + Hex(r.Value)));
        Assert.Equal(second.NewVersion, (await store.GetAsync(shard.ShardId, K("41"), _ct))!.Version);

        // Every key either commit wrote, once, in key order (a prefix first), with its value now; deleted ones (also the
        // absent one) with none.
        var unfolded = await store.ReadUnfoldedAsync(shard.ShardId, _ct);
        Assert.Equal(shard.TreeVersion, unfolded.TreeVersion);
        Assert.Equal(second.NewVersion, unfolded.Version);
        Assert.Equal(["4000=04", "400000=null", "41=03", "4fff=null", "50=null", "7f=05"], Listed(unfolded));

        // The tree is untouched: its nodes are all there, the data commits added none.
        using var reader = store.OpenNodeReader(shard.ShardId);
        AssertNodes(reader, tree.Nodes);
        Assert.False(reader.TryGetNode(TreeOf(current).Root, SmtPosition.Root, out _));
    }

    [Fact]
    public async Task StatisticsCountWhatWasCommittedAndNothingThatWasRefused()
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var opened = store;
        var shard = await store.ClaimAsync((await ShardAtAsync(store, "41")).ShardId, _ct);
        var start = store.Statistics;
        Assert.False(string.IsNullOrEmpty(start.Provider));
        Assert.False(string.IsNullOrEmpty(start.Location));

        var v1 = DataCommit(shard, Put("41", "aa"), Put("42", "bb"), Put("43", "cc"));
        await store.CommitAsync(v1, _ct);
        var afterData = store.Statistics;
        Assert.Equal((start.DataCommits + 1, start.RowsWritten + 3), (afterData.DataCommits, afterData.RowsWritten));
        Assert.Equal((start.TreeCommits, start.NodesWritten, start.NodesDeleted), (afterData.TreeCommits, afterData.NodesWritten, afterData.NodesDeleted));
        Assert.True(afterData.Transactions > start.Transactions);
        Assert.True(afterData.DataCommitTime > start.DataCommitTime);
        Assert.True(afterData.SyncTime > start.SyncTime);

        // Refused (the version moved on): nothing of it is counted.
        await Assert.ThrowsAsync<GridException>(async () => await store.CommitAsync(v1, _ct));
        var afterRefusal = store.Statistics;
        Assert.Equal((afterData.DataCommits, afterData.RowsWritten, afterData.Transactions), (afterRefusal.DataCommits, afterRefusal.RowsWritten, afterRefusal.Transactions));

        var first = FoldOf(store, await store.GetShardAsync(shard.ShardId, _ct), v1.Rows, v1.NewVersion);
        await store.CommitTreeAsync(first, _ct);
        var v2 = DataCommit(await store.GetShardAsync(shard.ShardId, _ct), Put("41", "dd"), Del("42"));
        await store.CommitAsync(v2, _ct);
        var second = FoldOf(store, await store.GetShardAsync(shard.ShardId, _ct), v2.Rows, v2.NewVersion);
        Assert.NotEmpty(second.AddedNodes); // the new leaf of 41 and the nodes above it, in place of the old ones
        Assert.NotEmpty(second.RemovedPositions); // where 42's leaf was, and what its deletion collapsed
        await store.CommitTreeAsync(second, _ct);
        var end = store.Statistics;
        Assert.Equal(afterData.TreeCommits + 2, end.TreeCommits);
        Assert.Equal(afterData.NodesWritten + first.AddedNodes.Count + second.AddedNodes.Count, end.NodesWritten);
        Assert.Equal(afterData.NodesDeleted + first.RemovedPositions.Count + second.RemovedPositions.Count, end.NodesDeleted);
        Assert.Equal((afterData.DataCommits + 1, afterData.RowsWritten + 2), (end.DataCommits, end.RowsWritten));
        Assert.True(end.TreeCommitTime > afterData.TreeCommitTime);
        Assert.True(end.Transactions >= afterData.Transactions + 3);
    }

    [Fact]
    public async Task StatisticsArePublishedOnTheStorageMeter()
    {
        var (store, _) = await NewStoreAsync(ThreeShards);
        await using var opened = store;
        var shard = await store.ClaimAsync((await ShardAtAsync(store, "41")).ShardId, _ct);
        await store.CommitAsync(DataCommit(shard, Put("41", "aa"), Put("42", "bb")), _ct);
        var expected = store.Statistics;

        // Other stores of the test run publish on the same meter: ours are the measurements tagged with its location.
        var seen = new Dictionary<string, double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Rustorium.Grid.Storage") l.EnableMeasurementEvents(instrument);
        };
        void Record(System.Diagnostics.Metrics.Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
                if (tag.Key == "rgrid.store.location" && Equals(tag.Value, expected.Location)) seen[instrument.Name] = value;
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(expected.DataCommits, seen["rgrid.store.data_commits"]);
        Assert.Equal(expected.RowsWritten, seen["rgrid.store.rows_written"]);
        Assert.Equal(expected.Transactions, seen["rgrid.store.transactions"]);
        Assert.Equal(0, seen["rgrid.store.tree_commits"]);
        Assert.Equal(expected.DataCommitTime.TotalSeconds, seen["rgrid.store.data_commit.time"], tolerance: 1e-6); // TimeSpan keeps 100 ns ticks; rounding both to 6 places could split them
        Assert.True(seen["rgrid.store.sync.time"] > 0);
    }

    [Fact]
    public async Task ATreeCommitFoldsUpToItsVersionAndForgetsOnlyTheKeysItFolded()
    {
        var (store, _, shard, rows, tree) = await NewFilledShardAsync(40);
        await using var opened = store;
        var v2 = DataCommit(shard, Put("41", "01"), Del(Hex(rows[0].Key)), Put("55", "02"));
        await store.CommitAsync(v2, _ct);
        var v3 = DataCommit(await store.GetShardAsync(shard.ShardId, _ct), Put("41", "03"), Put("42", "04"));
        await store.CommitAsync(v3, _ct);
        var before = await store.GetShardAsync(shard.ShardId, _ct);

        // Fold version 2 alone (what the tree has caught up with so far): its tree holds v2's values (41 = 01), not v3's.
        var rowsAt2 = Applied(rows, v2.Rows);
        var fold = FoldOf(store, before, v2.Rows, v2.NewVersion);
        Assert.Equal(TreeOf(rowsAt2).Root, fold.NewRoot);
        Assert.NotEmpty(fold.RemovedPositions);
        await store.CommitTreeAsync(fold, _ct);

        var folded = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(before with { Root = fold.NewRoot, TreeVersion = v2.NewVersion }, folded); // the data (version, count, time) stays
        using (var reader = store.OpenNodeReader(shard.ShardId))
        {
            AssertNodes(reader, fold.AddedNodes);
            // A position emptied and not filled again no longer holds the node the old tree had there.
            var refilled = fold.AddedNodes.Select(n => n.Position).ToHashSet();
            var emptied = fold.RemovedPositions.Where(p => !refilled.Contains(p)).ToHashSet();
            foreach (var old in tree.Nodes.Where(n => emptied.Contains(n.Position))) Assert.False(reader.TryGetNode(old, out _));
            Assert.False(reader.TryGetNode(tree.Root, SmtPosition.Root, out _));
        }
        var unfolded = await store.ReadUnfoldedAsync(shard.ShardId, _ct);
        Assert.Equal(v2.NewVersion, unfolded.TreeVersion);
        Assert.Equal(v3.NewVersion, unfolded.Version);
        // 400000 and 55 were folded; 41 was folded at version 2 but written again at 3, so it is still unfolded.
        Assert.Equal(["41=03", "42=04"], Listed(unfolded));

        // Folding what the store lists brings the tree to the data: it is then the tree of the shard's rows.
        var rest = FoldOf(store, folded, unfolded.Rows, unfolded.Version);
        await store.CommitTreeAsync(rest, _ct);
        var state = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal(folded with { Root = rest.NewRoot, TreeVersion = v3.NewVersion }, state);
        Assert.False(state.HasUnfolded);
        var nothing = await store.ReadUnfoldedAsync(shard.ShardId, _ct);
        Assert.Empty(nothing.Rows);
        Assert.Equal((state.Version, state.Version), (nothing.TreeVersion, nothing.Version));
        var current = Applied(rowsAt2, v3.Rows);
        await AssertHoldsAsync(store, state, current, TreeOf(current));

        // With the tree caught up, a combined commit is accepted again and moves both.
        var combined = Next(state, state.KeyCount + 1, Put("43", "05"));
        await store.CommitAsync(combined, _ct);
        var last = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.Equal((combined.NewVersion, combined.NewVersion, combined.NewRoot!.Value), (last.Version, last.TreeVersion, last.Root));
        Assert.Empty((await store.ReadUnfoldedAsync(shard.ShardId, _ct)).Rows);
    }

    [Fact]
    public async Task RefusedTreeAndDataCommitsGetTheirCodesAndChangeNothing()
    {
        var (store, name, shard, rows, tree) = await NewFilledShardAsync(40);
        var v2 = DataCommit(shard, Put("41", "01"), Del(Hex(rows[0].Key)));
        await store.CommitAsync(v2, _ct);
        var v3 = DataCommit(await store.GetShardAsync(shard.ShardId, _ct), Put("42", "02"));
        await store.CommitAsync(v3, _ct);
        var old = await store.GetShardAsync(shard.ShardId, _ct);
        var stale = FoldOf(store, old, v2.Rows, v2.NewVersion); // built by the owner that is about to lose the shard
        var current = await store.ClaimAsync(shard.ShardId, _ct);
        var good = FoldOf(store, current, v2.Rows, v2.NewVersion);
        Assert.Equal(stale.NewRoot, good.NewRoot);
        Assert.Equal((1L, 3L), (current.TreeVersion, current.Version));
        var snapshot = await SnapshotAsync(store);
        var unfolded = Listed(await store.ReadUnfoldedAsync(shard.ShardId, _ct));

        var e = await Assert.ThrowsAsync<GridException>(async () => await store.CommitTreeAsync(stale, _ct));
        Assert.Equal(GridErrorCode.Conflict, e.Code);
        Assert.Contains("epoch", e.Message);
        (ShardTreeCommit Commit, GridErrorCode Code, string Why)[] treeCommits =
        [
            (WithTreeVersions(good, expected: 2, next: 3), GridErrorCode.Conflict, "the tree is at 1, not 2"),
            (WithTreeVersions(good, expected: 0, next: 2), GridErrorCode.Conflict, "the tree is at 1, not 0"),
            (WithTreeVersions(good, expected: 1, next: 4), GridErrorCode.InvalidArgument, "past the shard's version 3"),
            (WithTreeVersions(good, expected: 1, next: 1), GridErrorCode.InvalidArgument, "not after the expected tree version"),
            (WithTreeVersions(good, expected: 1, next: 0), GridErrorCode.InvalidArgument, "before the expected tree version"),
        ];
        foreach (var (commit, code, why) in treeCommits)
        {
            var refused = await Assert.ThrowsAsync<GridException>(async () => await store.CommitTreeAsync(commit, _ct));
            Assert.True(refused.Code == code, $"{why}: {refused.Code} {refused.Message}");
        }

        (ShardCommit Commit, string Why)[] commits =
        [
            (WithNodes(Next(current, current.KeyCount + 1, Put("43", "03")), good.AddedNodes.ToArray(), good.RemovedPositions.ToArray()),
                "a combined commit while changes are unfolded"),
            (Next(current, current.KeyCount + 1, Put("43", "03")), "a combined commit without nodes while changes are unfolded"),
            (WithNodes(DataCommit(current, Put("43", "03")), good.AddedNodes.ToArray(), []), "a data commit adding nodes"),
            (WithNodes(DataCommit(current, Put("43", "03")), [], [SmtPosition.Root]), "a data commit removing nodes"),
            (DataCommit(current, current.KeyCount, Put("43", "03")), "a data commit with a wrong key count"),
        ];
        foreach (var (commit, why) in commits)
        {
            var refused = await Assert.ThrowsAsync<GridException>(async () => await store.CommitAsync(commit, _ct));
            Assert.True(refused.Code == GridErrorCode.InvalidArgument, $"{why}: {refused.Code} {refused.Message}");
        }
        const long unknown = 987_654;
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.ReadUnfoldedAsync(unknown, _ct)));
        var elsewhere = new ShardTreeCommit
        {
            ShardId = unknown, Epoch = good.Epoch, ExpectedTreeVersion = 1, NewTreeVersion = 2, NewRoot = good.NewRoot, AddedNodes = good.AddedNodes,
        };
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.CommitTreeAsync(elsewhere, _ct)));

        await AssertNothingFoldedAsync(store, snapshot, unfolded, shard.ShardId, tree, good.NewRoot);
        store = await ReopenAsync(store, name);
        await using var opened = store;
        await AssertNothingFoldedAsync(store, snapshot, unfolded, shard.ShardId, tree, good.NewRoot);

        // The same fold with the current epoch and versions applies; a data commit with the right explicit count too.
        await store.CommitTreeAsync(good, _ct);
        Assert.Equal(v2.NewVersion, (await store.GetShardAsync(shard.ShardId, _ct)).TreeVersion);
        await store.CommitAsync(DataCommit(current, current.KeyCount + 1, Put("43", "03")), _ct);
        Assert.Equal(current.KeyCount + 1, (await store.GetShardAsync(shard.ShardId, _ct)).KeyCount);
    }

    [Fact]
    public async Task UnfoldedKeysAndTheTreeVersionSurviveReopeningTheStore()
    {
        var (store, name, shard, rows, _) = await NewFilledShardAsync(30);
        var v2 = DataCommit(shard, Put("41", "01"), Put("42", "02"));
        await store.CommitAsync(v2, _ct);
        var v3 = DataCommit(await store.GetShardAsync(shard.ShardId, _ct), Del("41"), Put("43", "03"));
        await store.CommitAsync(v3, _ct);
        await store.CommitTreeAsync(FoldOf(store, await store.GetShardAsync(shard.ShardId, _ct), v2.Rows, v2.NewVersion), _ct);
        var state = await store.GetShardAsync(shard.ShardId, _ct);
        var unfolded = await store.ReadUnfoldedAsync(shard.ShardId, _ct);
        Assert.Equal((v2.NewVersion, v3.NewVersion), (state.TreeVersion, state.Version));
        Assert.Equal(["41=null", "43=03"], Listed(unfolded));

        store = await ReopenAsync(store, name);
        await using var opened = store;
        Assert.Equal(state, await store.GetShardAsync(shard.ShardId, _ct));
        Assert.Equal([state], (await store.ListShardsAsync(_ct)).Where(s => s.ShardId == shard.ShardId));
        var reread = await store.ReadUnfoldedAsync(shard.ShardId, _ct);
        Assert.Equal((unfolded.TreeVersion, unfolded.Version), (reread.TreeVersion, reread.Version));
        Assert.Equal(Listed(unfolded), Listed(reread));

        // What a new owner does after a crash of the old one: fold what the store lists onto the stored tree.
        var owner = await store.ClaimAsync(shard.ShardId, _ct);
        Assert.Equal(state with { Epoch = state.Epoch + 1 }, owner);
        await store.CommitTreeAsync(FoldOf(store, owner, reread.Rows, reread.Version), _ct);
        var current = Applied(rows, v2.Rows, v3.Rows);
        await AssertHoldsAsync(store, await store.GetShardAsync(shard.ShardId, _ct), current, TreeOf(current));
    }

    [Fact]
    public async Task SplitsAndMergesAfterDataCommitsLeaveCompleteTreesWithNothingUnfolded()
    {
        var (store, name, shard, rows, _) = await NewFilledShardAsync(60);
        var v2 = DataCommit(shard, Put("41", "01"), Put("70", "02"), Del(Hex(rows[0].Key)), Del(Hex(rows[^1].Key)));
        await store.CommitAsync(v2, _ct);
        var data = await store.GetShardAsync(shard.ShardId, _ct);
        Assert.True(data.HasUnfolded);
        var current = Applied(rows, v2.Rows);

        var split = SplitOf(data, K("60"), current);
        var (left, right) = await store.SplitAsync(split, _ct);
        foreach (var half in new[] { left, right })
        {
            Assert.Equal((split.NewVersion, split.NewVersion), (half.Version, half.TreeVersion));
            Assert.Equal(half, await store.GetShardAsync(half.ShardId, _ct));
            var u = await store.ReadUnfoldedAsync(half.ShardId, _ct);
            Assert.Equal((split.NewVersion, split.NewVersion), (u.TreeVersion, u.Version));
            Assert.Empty(u.Rows);
        }

        // Data commits on each half: only their own keys are unfolded, nothing from before the split comes back.
        var l2 = DataCommit(left, Put("44", "03"));
        var r2 = DataCommit(right, Del("70"), Put("71", "04"));
        await store.CommitAsync(l2, _ct);
        await store.CommitAsync(r2, _ct);
        Assert.Equal(["44=03"], Listed(await store.ReadUnfoldedAsync(left.ShardId, _ct)));
        Assert.Equal(["70=null", "71=04"], Listed(await store.ReadUnfoldedAsync(right.ShardId, _ct)));
        current = Applied(current, l2.Rows, r2.Rows);

        var merge = MergeOf(await store.GetShardAsync(left.ShardId, _ct), await store.GetShardAsync(right.ShardId, _ct), current);
        var merged = await store.MergeAsync(merge, _ct);
        Assert.Equal((merge.NewVersion, merge.NewVersion), (merged.Version, merged.TreeVersion));
        var mu = await store.ReadUnfoldedAsync(merged.ShardId, _ct);
        Assert.Equal((merge.NewVersion, merge.NewVersion), (mu.TreeVersion, mu.Version));
        Assert.Empty(mu.Rows);
        Assert.Equal(GridErrorCode.UnknownShard, await ErrorOf(async () => await store.ReadUnfoldedAsync(right.ShardId, _ct)));

        store = await ReopenAsync(store, name);
        await using var opened = store;
        Assert.Empty((await store.ReadUnfoldedAsync(merged.ShardId, _ct)).Rows);
        await AssertHoldsAsync(store, merged, current, TreeOf(current));
        // The next data commit of the merged shard is all it lists: the halves' unfolded keys are gone.
        await store.CommitAsync(DataCommit(merged, Put("45", "05")), _ct);
        Assert.Equal(["45=05"], Listed(await store.ReadUnfoldedAsync(merged.ShardId, _ct)));
    }

    private static ShardTreeCommit WithTreeVersions(ShardTreeCommit c, long expected, long next) => new()
    {
        ShardId = c.ShardId, Epoch = c.Epoch, ExpectedTreeVersion = expected, NewTreeVersion = next, NewRoot = c.NewRoot,
        AddedNodes = c.AddedNodes, RemovedPositions = c.RemovedPositions,
    };

    /// <summary><paramref name="rows"/> after <paramref name="commits"/>' rows, in key order (lower-case hex orders as the bytes do).</summary>
    private static RowWrite[] Applied(IEnumerable<RowWrite> rows, params IReadOnlyList<RowWrite>[] commits)
    {
        var map = rows.ToDictionary(r => Hex(r.Key));
        foreach (var row in commits.SelectMany(c => c))
        {
            if (row.Value is null) map.Remove(Hex(row.Key));
            else map[Hex(row.Key)] = row;
        }
        return map.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value).ToArray();
    }

    /// <summary>Unfolded changes as "key=value" (deleted: "key=null"), in the order the store returned them.</summary>
    private static List<string> Listed(UnfoldedChanges unfolded) =>
        unfolded.Rows.Select(r => Hex(r.Key) + "=" + (r.Value is null ? "null" : Hex(r.Value))).ToList();

    /// <summary>Shards and rows are as in <paramref name="snapshot"/>, the unfolded keys as listed, the tree still
    /// <paramref name="tree"/> and <paramref name="refusedRoot"/> not stored.</summary>
    private async Task AssertNothingFoldedAsync(IShardStore store, List<string> snapshot, List<string> unfolded, long shardId, BuiltTree tree,
        Fr refusedRoot)
    {
        Assert.Equal(snapshot, await SnapshotAsync(store));
        Assert.Equal(unfolded, Listed(await store.ReadUnfoldedAsync(shardId, _ct)));
        using var reader = store.OpenNodeReader(shardId);
        AssertNodes(reader, tree.Nodes);
        Assert.False(reader.TryGetNode(refusedRoot, SmtPosition.Root, out _));
    }

    // ---------------------------------------------------------------- split and merge helpers

    /// <summary>A tree built from rows as the layer above builds it (key and value mapped with <see cref="PoseidonBytes"/>).</summary>
    private sealed record BuiltTree(Fr Root, SmtNodeEntry[] Nodes, long KeyCount);

    private static BuiltTree TreeOf(IEnumerable<RowWrite> rows)
    {
        var nodes = new InMemorySmtNodeStore();
        var tree = new SparseMerkleTree(nodes);
        var changes = rows.Select(r => SmtChange.Upsert(PoseidonBytes.Hash(r.Key), PoseidonBytes.Hash(r.Value!))).ToArray();
        if (changes.Length > 0) tree.ApplyBatch(changes);
        return new BuiltTree(tree.Root, tree.EnumerateNodes().ToArray(), changes.Length); // with their positions
    }

    /// <summary><paramref name="n"/> rows spread over [40, 80) (three-byte keys, first byte 40 … 7f).</summary>
    private static RowWrite[] RowsIn40To80(int n) =>
        Enumerable.Range(0, n).Select(i => Put([(byte)(0x40 + i * 64 / n), (byte)(i >> 8), (byte)i], [(byte)i, (byte)(i * 7), 0x5a])).ToArray();

    /// <summary>A store with <see cref="StoreTestKit.ThreeShards"/>; [40, 80) claimed and filled with <paramref name="n"/> rows and their real tree.</summary>
    private async Task<(IShardStore Store, string Name, ShardState Shard, RowWrite[] Rows, BuiltTree Tree)> NewFilledShardAsync(int n)
    {
        var (store, name) = await NewStoreAsync(ThreeShards);
        var shard = await store.ClaimAsync((await ShardAtAsync(store, "40")).ShardId, _ct);
        var rows = RowsIn40To80(n);
        var tree = TreeOf(rows);
        await store.CommitAsync(new ShardCommit
        {
            ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedVersion = shard.Version, NewVersion = shard.Version + 1, NewRoot = tree.Root,
            NewKeyCount = n, TimestampMicros = 1_700_000_000_000_000, Rows = rows, AddedNodes = tree.Nodes,
        }, _ct);
        return (store, name, await store.GetShardAsync(shard.ShardId, _ct), rows, tree);
    }

    /// <summary>The split of <paramref name="shard"/> (holding <paramref name="rows"/>) at <paramref name="splitKey"/> with both real trees.</summary>
    private static ShardSplit SplitOf(ShardState shard, byte[] splitKey, IReadOnlyList<RowWrite> rows,
        long? leftKeyCount = null, long? rightKeyCount = null, long? newVersion = null)
    {
        var left = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, splitKey) < 0));
        var right = TreeOf(rows.Where(r => KeyRange.Compare(r.Key, splitKey) >= 0));
        return new ShardSplit
        {
            ShardId = shard.ShardId, Epoch = shard.Epoch, ExpectedVersion = shard.Version, NewVersion = newVersion ?? shard.Version + 1,
            SplitKey = splitKey, LeftRoot = left.Root, LeftKeyCount = leftKeyCount ?? left.KeyCount, LeftNodes = left.Nodes,
            RightRoot = right.Root, RightKeyCount = rightKeyCount ?? right.KeyCount, RightNodes = right.Nodes,
            TimestampMicros = 1_700_000_100_000_000 + shard.Version,
        };
    }

    /// <summary>The merge of <paramref name="left"/> and <paramref name="right"/>, holding <paramref name="rows"/> together, with the real merged tree.</summary>
    private static ShardMerge MergeOf(ShardState left, ShardState right, IReadOnlyList<RowWrite> rows, long? keyCount = null, long? newVersion = null)
    {
        var tree = TreeOf(rows);
        return new ShardMerge
        {
            LeftShardId = left.ShardId, LeftEpoch = left.Epoch, LeftExpectedVersion = left.Version,
            RightShardId = right.ShardId, RightEpoch = right.Epoch, RightExpectedVersion = right.Version,
            NewVersion = newVersion ?? Math.Max(left.Version, right.Version) + 1, Root = tree.Root, KeyCount = keyCount ?? tree.KeyCount,
            Nodes = tree.Nodes, TimestampMicros = 1_700_000_200_000_000 + left.Version,
        };
    }

    /// <summary>Checks invariant 4 on the stored layout: sorted by start, no gap, no overlap, distinct ids, each shard readable by id.</summary>
    private async Task<IReadOnlyList<ShardState>> AssertLayoutCompleteAsync(IShardStore store)
    {
        var shards = await store.ListShardsAsync(_ct);
        ShardLayout.Validate(shards.Select(s => s.Range).ToArray()); // throws on a gap or an overlap
        for (int i = 1; i < shards.Count; i++) Assert.True(KeyRange.Compare(shards[i - 1].Range.Start, shards[i].Range.Start) < 0);
        Assert.Equal(shards.Count, shards.Select(s => s.ShardId).Distinct().Count());
        foreach (var s in shards) Assert.Equal(s, await store.GetShardAsync(s.ShardId, _ct));
        return shards;
    }

    /// <summary>
    /// The shard is <paramref name="state"/>, scans to exactly <paramref name="rows"/>, and its tree, reopened from the store at the
    /// stored root, is <paramref name="tree"/>: every node stored, every row proven, the other rows absent.
    /// </summary>
    private async Task AssertHoldsAsync(IShardStore store, ShardState state, RowWrite[] rows, BuiltTree tree)
    {
        Assert.Equal(state, await store.GetShardAsync(state.ShardId, _ct));
        Assert.Equal(tree.Root, state.Root);
        Assert.Equal(rows.Length, state.KeyCount);
        var stored = await store.ScanAsync(state.ShardId, Array.Empty<byte>(), null, 100_000, _ct);
        var expected = rows.OrderBy(r => r.Key, Comparer<byte[]>.Create((a, b) => KeyRange.Compare(a, b))).ToArray();
        Assert.Equal(expected.Select(r => Hex(r.Key) + "=" + Hex(r.Value!)), stored.Select(r => Hex(r.Key) + "=" + Hex(r.Value)));
        Assert.All(stored, r => Assert.True(state.Range.Contains(r.Key)));

        using (var reader = store.OpenNodeReader(state.ShardId)) AssertNodes(reader, tree.Nodes);
        using var nodes = ShardTreeNodeStore.Open(store, state);
        var reopened = new SparseMerkleTree(nodes);
        Assert.Equal(tree.Root, reopened.Root);
        for (int i = 0; i < rows.Length; i++)
        {
            var key = PoseidonBytes.Hash(rows[i].Key);
            Assert.True(reopened.TryGet(key, out var value));
            Assert.Equal(PoseidonBytes.Hash(rows[i].Value!), value);
            if (i % 16 == 0) Assert.True(SmtVerifier.Verify(reopened.Prove(key), state.Root));
        }
        // A key outside the shard is proven absent.
        var outside = PoseidonBytes.Hash(K("ffffffff"));
        Assert.False(reopened.TryGet(outside, out _));
        Assert.True(SmtVerifier.Verify(reopened.Prove(outside), state.Root));
    }

    private static void AssertNodes(IShardNodeReader reader, IEnumerable<SmtNodeEntry> nodes)
    {
        foreach (var (hash, node, position) in nodes)
        {
            Assert.True(reader.TryGetNode(hash, position, out var got), $"node {hash} is stored at {position}");
            Assert.Equal(node, got);
        }
    }

    /// <summary>Every shard and every row (key, value, version, time) of the store, as text.</summary>
    private async Task<List<string>> SnapshotAsync(IShardStore store)
    {
        var lines = new List<string>();
        foreach (var s in await store.ListShardsAsync(_ct))
        {
            lines.Add(s.ToString());
            lines.AddRange(await AllRowsAsync(store, s.ShardId));
        }
        return lines;
    }

    private async Task<List<string>> AllRowsAsync(IShardStore store, long shardId) =>
        (await store.ScanAsync(shardId, Array.Empty<byte>(), null, 100_000, _ct))
            .Select(r => $"{shardId}:{Hex(r.Key)}={Hex(r.Value)}@{r.Version}/{r.TimestampMicros}").ToList();

    /// <summary>Layout and rows are as in <paramref name="snapshot"/>, no shard was added, and <paramref name="shardId"/> still has <paramref name="tree"/>.</summary>
    private async Task AssertUnchangedAsync(IShardStore store, List<string> snapshot, long shardId, BuiltTree tree)
    {
        Assert.Equal(snapshot, await SnapshotAsync(store));
        using var reader = store.OpenNodeReader(shardId);
        AssertNodes(reader, tree.Nodes);
        var max = (await store.ListShardsAsync(_ct)).Max(s => s.ShardId);
        using var next = store.OpenNodeReader(max + 1);
        foreach (var node in tree.Nodes.Take(20)) Assert.False(next.TryGetNode(node, out _));
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>The shard is exactly <paramref name="expected"/>, holds exactly <paramref name="keys"/> and not <paramref name="absentNode"/>.</summary>
    private async Task AssertUnchanged(IShardStore store, ShardState expected, string[] keys, SmtNode? absentNode)
    {
        Assert.Equal(expected, await store.GetShardAsync(expected.ShardId, _ct));
        Assert.Equal(keys, await AllKeysAsync(store, expected.ShardId));
        if (absentNode is { } node)
        {
            using var reader = store.OpenNodeReader(expected.ShardId);
            Assert.False(reader.TryGetNode(node, out _));
        }
    }

    private static ShardCommit WithNodes(ShardCommit c, SmtNodeEntry[] added, SmtPosition[] removed) => new()
    {
        ShardId = c.ShardId, Epoch = c.Epoch, ExpectedVersion = c.ExpectedVersion, NewVersion = c.NewVersion, NewRoot = c.NewRoot,
        NewKeyCount = c.NewKeyCount, TimestampMicros = c.TimestampMicros, Rows = c.Rows, AddedNodes = added, RemovedPositions = removed,
    };

    private static ShardCommit Clone(ShardCommit c, long newVersion) => new()
    {
        ShardId = c.ShardId, Epoch = c.Epoch, ExpectedVersion = c.ExpectedVersion, NewVersion = newVersion, NewRoot = c.NewRoot,
        NewKeyCount = c.NewKeyCount, TimestampMicros = c.TimestampMicros, Rows = c.Rows,
    };
}
