using System.Buffers;
using System.Diagnostics;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Tests.Serialization;
using Rustorium.Grid.Runtime.Transport;
using static Rustorium.Grid.Runtime.Tests.Transport.TransportTestKit;

namespace Rustorium.Grid.Runtime.Tests.Transport;

/// <summary>
/// Bounded-time fuzzing: random, truncated and mutated frames against the decoder and against a live server.
/// The only acceptable outcomes are a decoded frame, "need more bytes", a <see cref="GridErrorCode.ProtocolViolation"/>,
/// or (live) an Error frame and a clean close. The seed is printed on failure.
/// </summary>
[Trait("Category", "Fuzz")]
[Collection(MeasuresProcessMemory.Name)]
public sealed class FrameFuzzTests
{
    private static readonly TimeSpan DecoderBudget = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan LiveBudget = TimeSpan.FromSeconds(2.5);

    /// <summary>A stream of valid frames of every type with plausible payloads.</summary>
    private static byte[] ValidStream(Random rng)
    {
        var frames = new List<byte>();
        frames.AddRange(Hello(name: "fuzz"));
        int count = rng.Next(1, 6);
        for (int i = 0; i < count; i++)
        {
            ulong id = (ulong)rng.Next(1, 1000);
            byte[] body = new byte[rng.Next(0, 40)];
            rng.NextBytes(body);
            frames.AddRange(rng.Next(5) switch
            {
                0 => Frame(GridFrameType.Ping, id, []),
                1 => Frame(GridFrameType.Cancel, id, []),
                2 => ErrorFrame(id),
                _ => Request(id, (uint)rng.Next(0, 5000), body),
            });
        }
        return frames.ToArray();
    }

    private static byte[] ErrorFrame(ulong id)
    {
        using var p = GridErrorPayload.Encode(GridErrorCode.Conflict, "fuzz", new OwnerHint(1, "x:1", 1));
        return Frame(GridFrameType.Error, id, p.WrittenSpan);
    }

    private static byte[] Mutate(Random rng, byte[] valid)
    {
        var bytes = (byte[])valid.Clone();
        switch (rng.Next(6))
        {
            case 0: // flip bits
                for (int i = rng.Next(1, 4); i > 0; i--) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                return bytes;
            case 1: // truncate
                return bytes[..rng.Next(bytes.Length)];
            case 2: // random byte somewhere in a header-ish position
                bytes[rng.Next(Math.Min(bytes.Length, 40))] = (byte)rng.Next(256);
                return bytes;
            case 3: // pure noise
            {
                var noise = new byte[rng.Next(1, 200)];
                rng.NextBytes(noise);
                return noise;
            }
            case 4: // splice noise into the middle
            {
                int at = rng.Next(bytes.Length);
                var noise = new byte[rng.Next(1, 16)];
                rng.NextBytes(noise);
                return [.. bytes[..at], .. noise, .. bytes[at..]];
            }
            default:
                return bytes;
        }
    }

    /// <summary>Decodes as the server would: frames, then each control payload's fields.</summary>
    private static void DecodeAll(ReadOnlySequence<byte> input, int maxFrame)
    {
        while (GridFrameCodec.TryReadFrame(ref input, maxFrame, out var header, out var payload))
        {
            var r = new GridReader(payload);
            switch (header.Type)
            {
                case GridFrameType.Hello or GridFrameType.HelloAck:
                    GridHello.Read(ref r);
                    break;
                case GridFrameType.Error:
                    GridErrorPayload.Read(ref r);
                    break;
                case GridFrameType.Request:
                    GridRequestPayload.ReadDeadline(ref r);
                    break;
            }
        }
    }

    [Fact]
    public void TheDecoderOnlyEverDecodesAsksForMoreOrReportsAProtocolViolation()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        var clock = Stopwatch.StartNew();
        long runs = 0, violations = 0;
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        long inputBytes = 0;
        while (clock.Elapsed < DecoderBudget)
        {
            var bytes = Mutate(rng, ValidStream(rng));
            inputBytes += bytes.Length;
            int a = rng.Next(bytes.Length + 1), b = rng.Next(a, bytes.Length + 1);
            try
            {
                DecodeAll(Segments.Split(bytes, a, b), maxFrame: rng.Next(2) == 0 ? 1024 : GridProtocol.DefaultMaxFrameSize);
            }
            catch (GridException e) when (e.Code == GridErrorCode.ProtocolViolation)
            {
                violations++;
            }
            catch (Exception e)
            {
                Assert.Fail($"Seed {seed}, input {Convert.ToHexString(bytes)}: {e}");
            }
            runs++;
        }
        // Memory stays proportional to the input actually given, never to the lengths it claims.
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.True(allocated < inputBytes * 64 + runs * 4096, $"Allocated {allocated} bytes for {inputBytes} input bytes in {runs} runs.");
        Assert.True(runs > 1000, $"Only {runs} runs in {DecoderBudget}.");
        Assert.True(violations > 0);
    }

    [Fact(Timeout = 120_000)]
    public async Task ALiveServerSurvivesFuzzedConnectionsWhileAGoodClientKeepsWorking()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        await using var server = StartServer(DelegateHandler.Echo, new GridServerOptions
        {
            Name = "fuzzed",
            MaxFrameSize = 64 * 1024,
            HandshakeTimeout = TimeSpan.FromSeconds(5),
        });
        await using var good = await ConnectAsync(server);
        long memoryBefore = GC.GetTotalMemory(forceFullCollection: true);

        using var stop = new CancellationTokenSource(LiveBudget);
        long goodCalls = 0;
        var goodLoop = Task.Run(async () =>
        {
            var payload = new byte[32];
            while (!stop.IsCancellationRequested)
            {
                using var r = await good.CallAsync(payload, TimeSpan.FromSeconds(10));
                Assert.Equal(32, r.Length);
                Interlocked.Increment(ref goodCalls);
            }
        });

        int connections = 0;
        var fuzzers = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            var local = new Random(seed + worker);
            while (!stop.IsCancellationRequested)
            {
                var bytes = Mutate(local, ValidStream(local));
                await using var raw = await RawPeer.ConnectAsync(server.LocalEndPoint);
                await raw.TrySendAsync(bytes);
                raw.ShutdownSend();
                // Never hang: the server answers and closes (EOF), within the bound ReadFrameAsync enforces.
                foreach (var (header, payload) in await raw.ReadUntilClosedAsync())
                {
                    if (header.Type == GridFrameType.Error) ReadError(payload); // well-formed
                }
                Interlocked.Increment(ref connections);
            }
        })).ToArray();

        try
        {
            await Task.WhenAll(fuzzers.Append(goodLoop)).WaitAsync(LiveBudget + Bound);
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            Assert.Fail($"Seed {seed}: {e}");
        }

        Assert.True(connections > 20, $"Only {connections} fuzzed connections.");
        Assert.True(goodCalls > 0);
        using (var after = await good.CallAsync(new byte[] { 1, 2 }, TimeSpan.FromSeconds(10)))
            Assert.Equal(2, after.Length);
        await EventuallyAsync(() => server.ConnectionCount == 1, "every fuzzed connection is closed");
        long memoryAfter = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(memoryAfter - memoryBefore < 64L * 1024 * 1024, $"Managed memory grew by {(memoryAfter - memoryBefore) >> 20} MiB.");
    }
}

/// <summary>
/// Tests that measure the whole process's managed memory run alone: in parallel with other test classes their
/// measurement would count everybody's allocations (seen in CI: a 329 MiB "growth" that was not the server's).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuresProcessMemory
{
    public const string Name = "Measures process memory";
}
