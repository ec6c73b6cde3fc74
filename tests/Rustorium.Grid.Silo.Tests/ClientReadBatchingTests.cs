using System.Net;
using System.Text;
using Rustorium.Grid.Client;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>
/// The client sends the concurrent reads of a shard together (<see cref="IShardGrain.ReadManyAsync"/>): fewer calls, the same
/// answers, over a real silo and TCP. (A batch refused for a stale shard map, whose reads then go alone: the cluster split test.)
/// </summary>
public sealed class ClientReadBatchingTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Runs <paramref name="test"/> against an in-process silo (no row cache) on a fresh data directory.</summary>
    private static async Task WithSiloAsync(string name, Func<string, Task> test)
    {
        using var dir = new TempDirectory(name);
        using var stop = new CancellationTokenSource();
        var (run, endpoint) = await ClientProofVerificationTests.StartSiloAsync(dir.Path, stop.Token, new StringWriter());
        try
        {
            await test(endpoint);
        }
        finally
        {
            stop.Cancel();
            await run.WaitAsync(Deadline);
        }
    }

    private static byte[] Value(byte[] key) => [.. Encoding.UTF8.GetBytes("value of "), .. key];

    /// <summary>Keys spread over every first byte (so over every initial shard).</summary>
    private static byte[][] SpreadKeys(int count) =>
        Enumerable.Range(0, count).Select(i => new byte[] { (byte)(i * 251 % 256), (byte)'r', (byte)(i >> 8), (byte)i }).ToArray();

    [Fact]
    public Task ConcurrentReadsOfAShardLeaveTogetherAndEachGetsItsOwnAnswer()
        => WithSiloAsync("rgrid-readbatch-", async endpoint =>
    {
        var keys = SpreadKeys(256);
        await using (var direct = await GridClient.ConnectAsync([endpoint]))
            await Task.WhenAll(keys.Select(k => direct.PutAsync(k, Value(k)))).WaitAsync(Deadline);
        var absent = new byte[] { 0x42, (byte)'n', (byte)'o', (byte)'t' };

        await using var proxy = new RelayProxy(endpoint);
        await using var batching = await GridClient.ConnectAsync([proxy.Endpoint]);
        await using var alone = await GridClient.ConnectAsync([proxy.Endpoint], new GridClientOptions { MaxReadBatch = 1 });

        // Proved and verified (GetAsync), then without proofs: every read gets its own value, an absent key null.
        int before = proxy.AnswerFrames;
        var proved = await Task.WhenAll(keys.Append(absent).Select(k => batching.ReadAsync(k))).WaitAsync(Deadline);
        int provedFrames = proxy.AnswerFrames - before;
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Equal(Value(keys[i]), proved[i].Value);
            Assert.True(proved[i].Proof!.Verifies(keys[i], proved[i].Value));
        }
        Assert.Null(proved[^1].Value);
        Assert.True(proved[^1].Proof!.Verifies(absent, null));

        before = proxy.AnswerFrames;
        var plain = await Task.WhenAll(keys.Select(k => batching.ReadAsync(k, withProof: false))).WaitAsync(Deadline);
        int plainFrames = proxy.AnswerFrames - before;
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Equal(Value(keys[i]), plain[i].Value);
            Assert.Null(plain[i].Proof);
            Assert.True(plain[i].Version >= proved[i].Version); // versions never go back across reads
        }

        // The same reads sent one call each, for comparison: one answer frame per read.
        before = proxy.AnswerFrames;
        var single = await Task.WhenAll(keys.Select(k => alone.ReadAsync(k, withProof: false))).WaitAsync(Deadline);
        int singleFrames = proxy.AnswerFrames - before;
        Assert.Equal(plain.Select(r => Convert.ToHexString(r.Value!)), single.Select(r => Convert.ToHexString(r.Value!)));
        Assert.True(singleFrames >= keys.Length, $"{singleFrames} answer frames for {keys.Length} reads sent alone");
        Assert.True(provedFrames <= keys.Length / 2, $"{provedFrames} answer frames for {keys.Length + 1} concurrent proved reads");
        Assert.True(plainFrames <= keys.Length / 2, $"{plainFrames} answer frames for {keys.Length} concurrent reads");

        // A read cancelled before it leaves is cancelled; the reads around it are not.
        var cancelled = batching.ReadAsync(keys[0], withProof: false, new CancellationToken(canceled: true));
        var others = keys.Skip(1).Take(20).Select(k => batching.ReadAsync(k, withProof: false)).ToArray();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.All(await Task.WhenAll(others).WaitAsync(Deadline), (r, i) => Assert.Equal(Value(keys[i + 1]), r.Value));
    });

    [Fact]
    public Task AMultiKeyReadAnswersAsSingleReadsAndRefusesBadRequestsWhole()
        => WithSiloAsync("rgrid-readmany-", async endpoint =>
    {
        await using var client = await GridClient.ConnectAsync([endpoint]);
        var shard = client.ShardMap.Locate([0x20]);
        var keys = Enumerable.Range(0, 10).Select(i => new byte[] { 0x20, (byte)i }).ToArray();
        foreach (var k in keys.Take(8)) await client.PutAsync(k, Value(k)); // the last two stay absent

        await using var silo = await GrainClient.ConnectAsync(IPEndPoint.Parse(endpoint));
        var grain = silo.GetGrain<IShardGrain>(shard.ShardId);
        var many = await grain.ReadManyAsync(keys, withProof: true, CancellationToken.None).WaitAsync(Deadline);
        Assert.Equal(keys.Length, many.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            var one = await grain.ReadAsync(keys[i], withProof: true, CancellationToken.None);
            Assert.Equal(one.Value, many[i].Value);
            Assert.Equal(i < 8 ? Value(keys[i]) : null, many[i].Value);
            Assert.True(many[i].Proof!.Verifies(keys[i], many[i].Value));
        }

        var outside = client.ShardMap.Shards.First(s => s.ShardId != shard.ShardId).Range.Start.ToArray();
        if (outside.Length == 0) outside = [0x00];
        var notOwner = await Assert.ThrowsAsync<GridException>(() => grain.ReadManyAsync([keys[0], [.. outside, 1]], false, CancellationToken.None));
        Assert.Equal(GridErrorCode.NotOwner, notOwner.Code);
        var empty = await Assert.ThrowsAsync<GridException>(() => grain.ReadManyAsync([], false, CancellationToken.None));
        Assert.Equal(GridErrorCode.InvalidArgument, empty.Code);
        var emptyKey = await Assert.ThrowsAsync<GridException>(() => grain.ReadManyAsync([keys[0], []], false, CancellationToken.None));
        Assert.Equal(GridErrorCode.InvalidArgument, emptyKey.Code);
        var tooMany = Enumerable.Range(0, GridLimits.Default.MaxBatchOperations + 1).Select(i => new byte[] { 0x20, (byte)(i >> 8), (byte)i }).ToArray();
        var overLimit = await Assert.ThrowsAsync<GridException>(() => grain.ReadManyAsync(tooMany, false, CancellationToken.None));
        Assert.Equal(GridErrorCode.InvalidArgument, overLimit.Code);
    });
}
