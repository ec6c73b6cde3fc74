using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Rustorium.Grid.Client;
using Rustorium.Grid.Storage;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>
/// Answers that are not what the shard's tree holds: forged on the wire, the client's proof check must reject exactly those,
/// also when many calls are verified together in one batch; read from a corrupted store, the silo itself must say so at once.
/// </summary>
public sealed class ClientProofVerificationTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Returns the stored row of every key ending in an odd byte with its value's last byte flipped.</summary>
    private sealed class CorruptingStore(IShardStore inner) : ForwardingShardStore(inner)
    {
        public override async ValueTask<StoredRow?> GetAsync(long shardId, ReadOnlyMemory<byte> key, CancellationToken cancellationToken)
        {
            var row = await base.GetAsync(shardId, key, cancellationToken);
            if (row is null || key.Span[^1] % 2 == 0) return row;
            var forged = row.Value.ToArray();
            forged[^1] ^= 0x01;
            return row with { Value = forged };
        }
    }

    internal static async Task<(Task<int> Run, string Endpoint)> StartSiloAsync(string dataDirectory, CancellationToken stop, StringWriter errors,
        Action<IServiceCollection>? configure = null)
    {
        int port = LoopbackPorts.Take();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // No row cache: every read goes to the store rather than to the rows cached at commit.
        string[] args = ["--data-dir", dataDirectory, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--http-port", "0",
            "--Silo:RowCacheBytes=0", "--Logging:LogLevel:Default=Warning"];
        var run = Task.Run(() => GridSilo.RunAsync(args, TextWriter.Null, errors, stop, _ => started.TrySetResult(), configure));
        var first = await Task.WhenAny(started.Task, run).WaitAsync(Deadline);
        Assert.True(first == started.Task, $"The silo exited before serving: {errors}");
        return (run, $"127.0.0.1:{port}");
    }

    // Flips the last byte of every value (of a 5-byte key) that ends in an odd byte, counting them.
    private static void ForgeOddValues(byte[] payload, ref int forged)
    {
        const int valueLength = 14; // "value of " + a 5-byte key
        var prefix = "value of "u8;
        for (int at = payload.AsSpan().IndexOf(prefix); at >= 0 && at + valueLength <= payload.Length;)
        {
            if (payload[at + valueLength - 1] % 2 == 1)
            {
                payload[at + valueLength - 1] ^= 0x01;
                Interlocked.Increment(ref forged);
            }
            int next = payload.AsSpan(at + 1).IndexOf(prefix);
            at = next < 0 ? -1 : at + 1 + next;
        }
    }

    private static byte[][] Keys() => Enumerable.Range(0, 48).Select(i => Encoding.UTF8.GetBytes($"k{i:D2}/{(char)('a' + i % 26)}")).ToArray();

    private static bool Odd(byte[] keyOrValue) => keyOrValue[^1] % 2 == 1;

    [Fact]
    public async Task AnswersTamperedWithOnTheWireFailVerificationAndOnlyThoseWhenManyAreVerifiedTogether()
    {
        using var dir = new TempDirectory("rgrid-verify-");
        using var stop = new CancellationTokenSource();
        var errors = new StringWriter();
        var (run, endpoint) = await StartSiloAsync(dir.Path, stop.Token, errors);
        try
        {
            var keys = Keys();
            int forged = 0;
            await using (var direct = await GridClient.ConnectAsync([endpoint]))
                foreach (var key in keys) await direct.PutAsync(key, Value(key));

            // The client reaches the silo only through a relay that forges the values of odd keys in the silo's answers.
            await using var proxy = new RelayProxy(endpoint, payload => ForgeOddValues(payload, ref forged));
            await using var client = await GridClient.ConnectAsync([proxy.Endpoint]);
            var outcomes = await Task.WhenAll(keys.Select(async key =>
            {
                try
                {
                    return (Key: key, Value: await client.GetAsync(key), Error: (GridException?)null);
                }
                catch (GridException e)
                {
                    return (Key: key, Value: null, Error: e);
                }
            })).WaitAsync(Deadline);
            foreach (var (key, value, error) in outcomes)
            {
                if (!Odd(key))
                {
                    Assert.Null(error);
                    Assert.Equal(Value(key), value);
                }
                else
                {
                    Assert.NotNull(error);
                    Assert.Equal(GridErrorCode.VerificationFailed, error.Code);
                    Assert.Contains("different value", error.Message);
                }
            }
            Assert.Equal(keys.Count(Odd), Volatile.Read(ref forged));

            // Without verification the forged values come through: the check is what caught them.
            await using var trusting = await GridClient.ConnectAsync([proxy.Endpoint], new GridClientOptions { VerifyProofs = false });
            var odd = keys.First(Odd);
            Assert.NotEqual(Value(odd), await trusting.GetAsync(odd));
        }
        finally
        {
            stop.Cancel();
            await run.WaitAsync(Deadline);
        }
    }

    [Fact]
    public async Task AStoredRowThatDisagreesWithTheTreeIsReportedCorruptedAtOnceNotWaitedOn()
    {
        using var dir = new TempDirectory("rgrid-corrupt-");
        using var stop = new CancellationTokenSource();
        var errors = new StringWriter();
        var (run, endpoint) = await StartSiloAsync(dir.Path, stop.Token, errors, services =>
        {
            var honest = (IShardStore)services.Last(d => d.ServiceType == typeof(IShardStore)).ImplementationInstance!;
            services.Replace(ServiceDescriptor.Singleton<IShardStore>(new CorruptingStore(honest)));
        });
        try
        {
            await using var client = await GridClient.ConnectAsync([endpoint], new GridClientOptions { CallTimeout = TimeSpan.FromSeconds(20) });
            var keys = Keys();
            foreach (var key in keys) await client.PutAsync(key, Value(key));
            foreach (var key in keys)
            {
                if (!Odd(key))
                {
                    Assert.Equal(Value(key), await client.GetAsync(key));
                    continue;
                }
                var error = await Assert.ThrowsAsync<GridException>(() => client.GetAsync(key));
                Assert.Equal(GridErrorCode.Corrupted, error.Code);
                Assert.Contains(Convert.ToHexStringLower(key), error.Message);
            }
        }
        finally
        {
            stop.Cancel();
            await run.WaitAsync(Deadline);
        }
    }

    private static byte[] Value(byte[] key) => [.. Encoding.UTF8.GetBytes("value of "), .. key];
}
