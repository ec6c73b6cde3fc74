using System.Collections.Concurrent;
using System.Net;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Tests.Grains;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Tests.Remoting;

/// <summary>A silo (grain runtime + <see cref="GridServer"/> with <see cref="GrainCallRequestHandler"/>) on 127.0.0.1 and a client over real TCP.</summary>
internal sealed class RemoteSilo : IAsyncDisposable
{
    private RemoteSilo(TestSilo silo, GridServer server, GridConnection connection, GrainClient client)
    {
        Silo = silo;
        Server = server;
        Connection = connection;
        Client = client;
    }

    public TestSilo Silo { get; }

    public GridServer Server { get; }

    public GridConnection Connection { get; }

    public GrainClient Client { get; }

    public GrainJournal Journal => Silo.Journal;

    public static async Task<RemoteSilo> StartAsync()
    {
        var silo = await TestSilo.StartAsync(grains => grains
            .AddGrain<IRemoteTestGrain, RemoteTestGrain>()
            .AddGrain<INamedRemoteGrain, NamedRemoteGrain>()
            .AddGrain<IShardGrain, InMemoryShardGrain>());
        var server = GridServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new GrainCallRequestHandler(silo.Directory), new GridServerOptions { Name = "remote-silo" });
        var connection = await GridConnection.ConnectAsync(server.LocalEndPoint, new GridConnectionOptions { PeerName = "remote-client" }).WaitAsync(Bounded.Timeout);
        return new RemoteSilo(silo, server, connection, new GrainClient(connection));
    }

    /// <summary>Sends a raw request body and returns the response body or the silo's error.</summary>
    public async Task<byte[]> CallRawAsync(byte[] body)
    {
        using var response = await Connection.CallAsync(body, Bounded.Timeout).WaitAsync(Bounded.Timeout);
        return response.Payload.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Connection.DisposeAsync();
        await Server.DisposeAsync();
        await Silo.DisposeAsync();
    }
}

public sealed class RemoteGrainCallTests
{
    [Fact]
    public async Task ResultsCrossTheWire()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var grain = remote.Client.GetGrain<IRemoteTestGrain>(1);
        byte[] large = new byte[1 << 20];
        new Random(3).NextBytes(large);
        var items = new List<KeyValue> { new([1], [2], 3), new([4], [], 5) };

        Assert.Equal(5, await grain.Add(5).Within());
        Assert.Equal(3, await grain.Add(-2).Within());
        Assert.Null(await grain.Echo(null).Within());
        Assert.Equal("héllo 🚀", await grain.Echo("héllo 🚀").Within());
        Assert.Null(await grain.EchoBytes(null).Within());
        Assert.Empty((await grain.EchoBytes([]).Within())!);
        Assert.Equal(large, await grain.EchoBytes(large).Within());
        Assert.Equal(SyncMode.Async, await grain.EchoMode(SyncMode.Async).Within());
        var echoed = await grain.EchoList(items).Within();
        Assert.Equal([[1], [4]], echoed.Select(kv => kv.Key));
        Assert.Equal([3L, 5L], echoed.Select(kv => kv.Version));
        Assert.Null(await grain.EchoNullable(null).Within());
        Assert.Equal(long.MinValue, await grain.EchoNullable(long.MinValue).Within());
        Assert.Equal(new[] { -3, 1, 2 }, await grain.Sort([2, -3, 1]).Within());
        Assert.Equal(ulong.MaxValue, await grain.EchoULong(0, negate: true).Within());

        await grain.Record(7, CancellationToken.None).Within();
        // The silo hands the grain a token of its own (it follows the call's deadline and the caller's Cancel).
        Assert.Contains("record 7 cancellable=True", remote.Journal.Entries);
    }

    [Fact]
    public async Task AStringKeyedGrainIsAddressedByItsKey()
    {
        await using var remote = await RemoteSilo.StartAsync();

        Assert.Equal("eu-west/rack 1 ✓", await remote.Client.GetGrain<INamedRemoteGrain>("eu-west/rack 1 ✓").GetKey().Within());
        Assert.Equal("", await remote.Client.GetGrain<INamedRemoteGrain>("").GetKey().Within());
    }

    [Fact]
    public async Task AGridExceptionKeepsItsCodeMessageAndOwnerHint()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var grain = remote.Client.GetGrain<IRemoteTestGrain>(2);
        var hint = new OwnerHint(3, "10.0.0.7:7400", 9);

        var moved = await Assert.ThrowsAsync<GridException>(() => grain.ThrowGrid(GridErrorCode.NotOwner, "shard 3 moved", hint).Within());
        var conflict = await Assert.ThrowsAsync<GridException>(() => grain.ThrowGrid(GridErrorCode.Conflict, "epoch moved on", null).Within());

        Assert.Equal((GridErrorCode.NotOwner, "shard 3 moved", hint), (moved.Code, moved.Message, moved.OwnerHint));
        Assert.Equal((GridErrorCode.Conflict, "epoch moved on"), (conflict.Code, conflict.Message));
        Assert.Null(conflict.OwnerHint);
    }

    [Fact]
    public async Task OtherExceptionsBecomeInternalWithoutStackTraces()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var grain = remote.Client.GetGrain<IRemoteTestGrain>(3);

        var error = await Assert.ThrowsAsync<GridException>(() => grain.ThrowOther("the disk said no").Within());
        var cancelled = await Assert.ThrowsAsync<GridException>(() => grain.ThrowCancelled().Within());

        Assert.Equal(GridErrorCode.Internal, error.Code);
        Assert.Contains("InvalidOperationException: the disk said no", error.Message);
        Assert.Contains("test-remote/i/3", error.Message);
        Assert.DoesNotContain(" at ", error.Message);
        Assert.DoesNotContain(".cs:line", error.Message);
        Assert.Equal(GridErrorCode.Cancelled, cancelled.Code);
        Assert.Equal(1, await grain.Add(1).Within()); // the activation is unharmed
    }

    [Fact]
    public async Task TheCallersCancellationReachesTheGrain()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var grain = remote.Client.GetGrain<IRemoteTestGrain>(4);
        using var cancel = new CancellationTokenSource();

        var call = grain.WaitForCancellation("c1", cancel.Token);
        await remote.Journal.WaitFor("c1 waiting");
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.Within());
        await remote.Journal.WaitFor("c1 cancelled");
        Assert.Equal(1, await grain.Add(1).Within());
    }

    [Fact]
    public async Task TheDeadlineReachesTheGrain()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var impatient = new GrainClient(remote.Connection, new RemoteGrainCallOptions { ResponseTimeout = TimeSpan.FromSeconds(1) });
        var grain = impatient.GetGrain<IRemoteTestGrain>(5);

        var error = await Assert.ThrowsAsync<GridException>(() => grain.WaitForCancellation("d1", CancellationToken.None).Within());

        Assert.Equal(GridErrorCode.Timeout, error.Code);
        await remote.Journal.WaitFor("d1 cancelled");
        Assert.Equal(1, await grain.Add(1).Within());
    }

    [Fact]
    public async Task ACallCancelledWhileQueuedNeverRuns()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var grain = remote.Client.GetGrain<IRemoteTestGrain>(6);
        using var hold = new CancellationTokenSource();
        using var cancel = new CancellationTokenSource();

        var holding = grain.WaitForCancellation("hold", hold.Token);
        await remote.Journal.WaitFor("hold waiting");
        var queued = grain.WaitForCancellation("queued", cancel.Token);
        await Bounded.Until(() => remote.Server.InflightRequestCount == 2, "the second call reached the silo");
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued.Within());
        // The caller's side completes at once; the silo acts when its Cancel frame arrives. "Never runs" holds for a call
        // still queued at that moment, so release the grain only once the silo has dropped the cancelled call.
        await Bounded.Until(() => remote.Server.InflightRequestCount == 1, "the silo dropped the cancelled call");
        hold.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => holding.Within());

        Assert.Equal(1, await grain.Add(1).Within());
        Assert.DoesNotContain("queued start", remote.Journal.Entries);
    }

    [Fact]
    public async Task ManyConcurrentCallersAllGetTheirOwnResults()
    {
        await using var remote = await RemoteSilo.StartAsync();
        const int Callers = 32;
        const int CallsEach = 100;
        var totals = new ConcurrentDictionary<long, ConcurrentBag<long>>();

        await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
        {
            for (int i = 0; i < CallsEach; i++)
            {
                long key = 100 + (caller + i) % 4;
                long total = await remote.Client.GetGrain<IRemoteTestGrain>(key).Add(1);
                totals.GetOrAdd(key, _ => []).Add(total);
                string echo = $"{caller}:{i}";
                Assert.Equal(echo, await remote.Client.GetGrain<IRemoteTestGrain>(200 + caller).Echo(echo));
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        // Every Add saw a distinct total: 1..n per grain, no lost or duplicated update, no response given to the wrong caller.
        Assert.Equal(Callers * CallsEach, totals.Values.Sum(bag => bag.Count));
        foreach (var bag in totals.Values) Assert.Equal(Enumerable.Range(1, bag.Count).Select(n => (long)n), bag.Order());
    }

    [Fact]
    public async Task AnAlwaysInterleaveMethodOverlapsAcrossTheWire()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var grain = remote.Client.GetGrain<IRemoteTestGrain>(7);

        // Each call waits until the other has started: they finish only if the silo runs them at the same time.
        await Task.WhenAll(grain.Handshake("ra", "rb"), grain.Handshake("rb", "ra")).Within();
    }

    [Fact]
    public async Task AShardGrainAcrossTheWire()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var shard = remote.Client.GetGrain<IShardGrain>(3);
        byte[] alpha = "alpha"u8.ToArray(), beta = "beta"u8.ToArray(), gamma = "gamma"u8.ToArray();

        var put = await shard.PutAsync(alpha, "one"u8.ToArray(), SyncMode.Full, CancellationToken.None).Within();
        var proven = await shard.WriteWithProofAsync(beta, "two"u8.ToArray(), CancellationToken.None).Within();
        var read = await shard.ReadAsync(alpha, withProof: true, CancellationToken.None).Within();
        var absent = await shard.ReadAsync("missing"u8.ToArray(), withProof: true, CancellationToken.None).Within();
        var unproven = await shard.ReadAsync(beta, withProof: false, CancellationToken.None).Within();

        Assert.Equal(new WriteResult(3, 1, 1_000 + 1 + (long)SyncMode.Full), put);
        Assert.Equal(2, proven.Write.Version);
        proven.Proof.EnsureVerifies(beta, "two"u8.ToArray()); // verified on the client, after crossing the wire
        Assert.Equal("one"u8.ToArray(), read.Value);
        Assert.Equal("test-region", read.Region);
        read.Proof!.EnsureVerifies(alpha, "one"u8.ToArray());
        Assert.Null(absent.Value);
        absent.Proof!.EnsureVerifies("missing"u8.ToArray(), null);
        Assert.Null(unproven.Proof);

        var batch = await shard.BatchAsync([BatchOperation.Put(gamma, "three"u8.ToArray()), BatchOperation.Delete(alpha)], SyncMode.Async, CancellationToken.None).Within();
        Assert.Equal(3, batch.Version);
        var first = await shard.ScanAsync([], null, 1, CancellationToken.None).Within();
        var rest = await shard.ScanAsync(first.NextKey!, null, 10, CancellationToken.None).Within();
        Assert.Equal([beta], first.Items.Select(kv => kv.Key));
        Assert.Equal([gamma], rest.Items.Select(kv => kv.Key));
        Assert.Null(rest.NextKey);
        var status = await shard.GetStatusAsync(CancellationToken.None).Within();
        Assert.Equal((3L, 2L, 3L), (status.ShardId, status.KeyCount, status.Version));
        Assert.Equal(new KeyRange([], [0xFF]), status.Range);
        Assert.Equal("shard/i/3", remote.Client.GetGrain<IShardGrain>(3).GetGrainId().ToString());

        var notOwner = await Assert.ThrowsAsync<GridException>(() => shard.PutAsync([0xFF, 1], [1], SyncMode.Full, CancellationToken.None).Within());
        Assert.Equal(GridErrorCode.NotOwner, notOwner.Code);
        Assert.Equal(new OwnerHint(4, InMemoryShardGrain.OwnerEndpoint, 42), notOwner.OwnerHint);
    }

    [Fact]
    public async Task AGrainTypeTheSiloDoesNotHostIsUnknownShard()
    {
        await using var remote = await RemoteSilo.StartAsync();

        var error = await Assert.ThrowsAsync<GridException>(() => remote.Client.GetGrain<IUnhostedGrain>(1).Get().Within());

        Assert.Equal(GridErrorCode.UnknownShard, error.Code);
        Assert.Contains("No grain type \"test-unhosted\" is registered", error.Message);
    }

    [Fact]
    public async Task AnInterfaceTheWireCannotCarryFailsWhenTheReferenceIsMade()
    {
        await using var remote = await RemoteSilo.StartAsync();

        var error = Assert.Throws<GridException>(() => remote.Client.GetGrain<IUnremotableGrain>(1));

        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("NotOnTheWire", error.Message);
        Assert.Contains("Guid", error.Message);
    }

    [Fact]
    public async Task TheCallChainCrossesTheWireSoACycleIsRefused()
    {
        await using var remote = await RemoteSilo.StartAsync();
        var invoker = new RemoteGrainCallInvoker(remote.Connection);
        var target = GrainId.Create("test-remote", 8);
        var caller = GrainId.Create("test-remote", 9);
        // As if grain 8's turn (via 9) called 8 again from another silo.
        var call = new GrainCall(target, "test-remote", 1, [1L], [target, caller]);

        // The runtime's reentrancy exception arrives as its code and message.
        var remoteError = await Assert.ThrowsAsync<GridException>(async () => await invoker.InvokeAsync(call, CancellationToken.None).AsTask().Within());
        Assert.Equal(GridErrorCode.Internal, remoteError.Code);
        Assert.Contains("not reentrant", remoteError.Message);
        Assert.Equal(1L, await invoker.InvokeAsync(new GrainCall(target, "test-remote", 1, [1L]), CancellationToken.None).AsTask().Within());
    }
}
