using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Tests.Grains;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Tests.Remoting;

/// <summary>Malformed or mismatched grain call bodies: each gets a clear error for its call, and the connection keeps working.</summary>
public sealed class GrainCallWireErrorTests
{
    /// <summary>A body by hand: kind 1, an integer-keyed target, interface, method id, the given encoded arguments, no chain.</summary>
    private static byte[] Body(string type, long key, string interfaceName, ushort methodId, uint argumentCount, params byte[][] arguments)
    {
        using var buffer = new PooledBufferWriter();
        var w = new GridWriter(buffer);
        w.WriteByte(1);
        w.WriteString(type);
        w.WriteByte((byte)GrainKeyKind.Integer);
        w.WriteVarInt64(key);
        w.WriteString(interfaceName);
        w.WriteUInt16(methodId);
        w.WriteVarUInt32(argumentCount);
        foreach (var argument in arguments) w.WriteRaw(argument);
        w.WriteVarUInt32(0);
        w.Commit();
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] AddBody(long key, long delta) =>
        Body("test-remote", key, "test-remote", 1, 1, GridValueCodecTests.Encode(delta));

    private static async Task<GridException> FailsWith(RemoteSilo remote, byte[] body, GridErrorCode code)
    {
        var error = await Assert.ThrowsAsync<GridException>(() => remote.CallRawAsync(body));
        Assert.Equal(code, error.Code);
        return error;
    }

    [Fact]
    public async Task AHandBuiltBodyIsAnsweredWithTheEncodedResult()
    {
        await using var remote = await RemoteSilo.StartAsync();

        Assert.Equal(GridValueCodecTests.Encode(5L), await remote.CallRawAsync(AddBody(1, 5)));
        Assert.Equal(GridValueCodecTests.Encode(7L), await remote.CallRawAsync(AddBody(1, 2)));
        // A method without a result answers with an empty body.
        Assert.Empty(await remote.CallRawAsync(Body("test-remote", 1, "test-remote", 10, 1, GridValueCodecTests.Encode(3))));
    }

    [Fact]
    public async Task MalformedBodiesAreProtocolViolationsAndTheConnectionSurvives()
    {
        await using var remote = await RemoteSilo.StartAsync();
        byte[] good = AddBody(2, 1);

        Assert.Contains("empty", (await FailsWith(remote, [], GridErrorCode.ProtocolViolation)).Message);
        Assert.Contains("Unknown request body kind 2", (await FailsWith(remote, [2, .. good[1..]], GridErrorCode.ProtocolViolation)).Message);
        for (int length = 1; length < good.Length; length++) await FailsWith(remote, good[..length], GridErrorCode.ProtocolViolation);
        Assert.Contains("trailing", (await FailsWith(remote, [.. good, 0], GridErrorCode.ProtocolViolation)).Message);
        // An int where the method declares a long.
        var mismatch = await FailsWith(remote, Body("test-remote", 2, "test-remote", 1, 1, GridValueCodecTests.Encode(1)), GridErrorCode.ProtocolViolation);
        Assert.Contains("Expected a Int64", mismatch.Message);
        // Two arguments for a method that takes one.
        await FailsWith(remote, Body("test-remote", 2, "test-remote", 1, 2, GridValueCodecTests.Encode(1L), GridValueCodecTests.Encode(1L)), GridErrorCode.ProtocolViolation);
        // Null for a long.
        await FailsWith(remote, Body("test-remote", 2, "test-remote", 1, 1, [0]), GridErrorCode.ProtocolViolation);
        // Method id 0 and invalid names.
        await FailsWith(remote, Body("test-remote", 2, "test-remote", 0, 0), GridErrorCode.ProtocolViolation);
        await FailsWith(remote, Body("test remote", 2, "test-remote", 1, 1, GridValueCodecTests.Encode(1L)), GridErrorCode.ProtocolViolation);
        await FailsWith(remote, Body("test-remote", 2, "", 1, 1, GridValueCodecTests.Encode(1L)), GridErrorCode.ProtocolViolation);

        Assert.True(remote.Connection.IsConnected);
        Assert.Equal(GridValueCodecTests.Encode(1L), await remote.CallRawAsync(good)); // nothing above ran
    }

    [Fact]
    public async Task CallsTheSiloCannotRouteGetTheLocalErrors()
    {
        await using var remote = await RemoteSilo.StartAsync();

        var unknownType = await FailsWith(remote, Body("test-nowhere", 1, "test-nowhere", 1, 0), GridErrorCode.UnknownShard);
        var otherInterface = await FailsWith(remote, Body("test-remote", 1, "test-remote-named", 1, 1, GridValueCodecTests.Encode(1L)), GridErrorCode.InvalidArgument);
        var unknownMethod = await FailsWith(remote, Body("test-remote", 1, "test-remote", 999, 0), GridErrorCode.InvalidArgument);

        using var buffer = new PooledBufferWriter();
        var w = new GridWriter(buffer);
        w.WriteByte(1);
        w.WriteString("test-remote");
        w.WriteByte((byte)GrainKeyKind.String);
        w.WriteString("x");
        w.WriteString("test-remote");
        w.WriteUInt16(1);
        w.Commit();
        var wrongKeyKind = await FailsWith(remote, buffer.WrittenSpan.ToArray(), GridErrorCode.InvalidArgument);

        Assert.Contains("No grain type \"test-nowhere\"", unknownType.Message);
        Assert.Contains("implements interface \"test-remote\", not \"test-remote-named\"", otherInterface.Message);
        Assert.Contains("no method with id 999", unknownMethod.Message);
        Assert.Contains("keyed by Integer", wrongKeyKind.Message);
    }

    [Fact]
    public async Task MutatedBodiesNeverEscapeAsAnythingButGridErrors()
    {
        await using var silo = await TestSilo.StartAsync(grains => grains.AddGrain<IShardGrain, InMemoryShardGrain>());
        var handler = new GrainCallRequestHandler(silo.Directory);
        var codec = GridValueCodec.Default;
        var shard = GrainInterfaceDescription.Get(typeof(IShardGrain));
        GrainCall[] calls =
        [
            new(GrainId.Create("shard", 1), "shard", 1, ["k"u8.ToArray(), "v"u8.ToArray(), SyncMode.Full, null]),
            new(GrainId.Create("shard", 1), "shard", 3, [new[] { BatchOperation.Put([1, 2], [3]), BatchOperation.Delete([4]) }, SyncMode.None, null]),
            new(GrainId.Create("shard", 1), "shard", 5, ["k"u8.ToArray(), true, null]),
            new(GrainId.Create("shard", 1), "shard", 6, [new byte[] { 0 }, null, 10, null], [GrainId.Create("other", 1)]),
        ];
        byte[][] seeds = calls.Select(call =>
        {
            using var buffer = new PooledBufferWriter();
            var w = new GridWriter(buffer);
            var method = shard.Methods.Single(m => m.Id == call.MethodId);
            GrainCallBody.Write(ref w, call, codec.GetMethodCodec(method));
            w.Commit();
            return buffer.WrittenSpan.ToArray();
        }).ToArray();
        var peer = new GridPeerInfo("fuzz", GridPeerRole.Client, GridProtocol.Version, GridProtocol.DefaultMaxFrameSize, null);
        var random = new Random(7);
        var codes = new Dictionary<string, int>();

        for (int round = 0; round < 3000; round++)
        {
            byte[] body = (byte[])seeds[round % seeds.Length].Clone();
            if (round >= seeds.Length)
            {
                for (int flips = random.Next(1, 4); flips > 0; flips--) body[random.Next(body.Length)] = (byte)random.Next(256);
                if (random.Next(4) == 0) body = body[..random.Next(body.Length)];
            }
            var context = new GridRequestContext(peer, (ulong)round + 1, 0);
            using var timeout = new CancellationTokenSource(Bounded.Timeout);
            string outcome;
            try
            {
                await handler.HandleAsync(body, context, timeout.Token).AsTask().Within();
                outcome = "ok";
            }
            catch (GridException ex)
            {
                outcome = ex.Code.ToString();
            }
            finally
            {
                context.ReleaseResponse();
            }
            codes[outcome] = codes.GetValueOrDefault(outcome) + 1;
        }

        Assert.True(codes.GetValueOrDefault("ok") >= seeds.Length, string.Join(", ", codes));
        Assert.True(codes.GetValueOrDefault(nameof(GridErrorCode.ProtocolViolation)) > 100, string.Join(", ", codes));
    }
}
