using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Rustorium.Grid.Client;

namespace Rustorium.Grid.Silo.Tests.Cluster;

/// <summary>A write the grid acknowledged: the key and value as sent, with the shard and version it reported.</summary>
internal sealed record AckedWrite(byte[] Key, byte[] Value, long ShardId, long Version);

/// <summary>A call of the load that failed (after the client's own retries).</summary>
internal sealed record LoadError(TimeSpan At, string Operation, string Key, GridErrorCode? Code, string Message)
{
    public override string ToString() => $"[{At.TotalSeconds:0.000} s] {Operation} {Key}: {(Code?.ToString() ?? "not a GridException")}: {Message}";
}

/// <summary>
/// Concurrent client load through one <see cref="GridClient"/>: writer tasks put single keys and atomic batches of
/// unique keys with unique values (every shard gets some: the first key byte is random), and reader tasks read back keys
/// already acknowledged (the client verifies each proof; a wrong value is recorded as an error). It records every
/// acknowledged write and every failed call, so a test can check that nothing acknowledged was lost and that the client
/// saw no error it did not expect.
/// </summary>
internal sealed class WriteLoad
{
    private readonly GridClient _client;
    private readonly string _tag;
    private readonly int _writers;
    private readonly int _readers;
    private readonly TimeSpan _pause;
    private readonly Func<TimeSpan> _clock;
    private readonly ConcurrentDictionary<string, AckedWrite> _acked = new();
    private readonly List<byte[]> _ackedKeys = [];
    private readonly ConcurrentQueue<LoadError> _errors = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private long _puts, _batches, _reads, _maxLatencyTicks;

    /// <param name="client">The client every call goes through.</param>
    /// <param name="tag">Makes this load's keys unique (several loads may run at once).</param>
    /// <param name="writers">Writer tasks.</param>
    /// <param name="readers">Reader tasks.</param>
    /// <param name="pause">Pause between two calls of one task (keeps the row count, and so the checks' time, bounded).</param>
    /// <param name="clock">The test's clock, for error timestamps.</param>
    public WriteLoad(GridClient client, string tag, int writers, int readers, TimeSpan pause, Func<TimeSpan> clock)
    {
        _client = client;
        _tag = tag;
        _writers = writers;
        _readers = readers;
        _pause = pause;
        _clock = clock;
    }

    /// <summary>Every acknowledged write, by key (hex).</summary>
    public IReadOnlyDictionary<string, AckedWrite> Acked => _acked;

    /// <summary>Every call that failed, in the order they failed.</summary>
    public IReadOnlyList<LoadError> Errors => _errors.ToArray();

    /// <summary>The slowest call so far (a failover or a move shows up here as a slow call).</summary>
    public TimeSpan MaxLatency => TimeSpan.FromTicks(Interlocked.Read(ref _maxLatencyTicks));

    /// <summary>Acknowledged puts and batches so far.</summary>
    public long Writes => Interlocked.Read(ref _puts) + Interlocked.Read(ref _batches);

    public void Start()
    {
        for (int i = 0; i < _writers; i++)
        {
            int writer = i;
            _tasks.Add(Task.Run(() => WriteLoopAsync(writer)));
        }
        for (int i = 0; i < _readers; i++)
        {
            int reader = i;
            _tasks.Add(Task.Run(() => ReadLoopAsync(reader)));
        }
    }

    /// <summary>Stops starting calls and waits for the calls in flight to complete (each is bounded by the client's call timeout).</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_tasks);
    }

    /// <summary>Stops starting calls without waiting (for a test that failed half-way).</summary>
    public void Cancel() => _stop.Cancel();

    /// <summary>Waits until at least <paramref name="writes"/> more writes were acknowledged (so a fault hits a running load).</summary>
    public async Task WaitForWritesAsync(long writes, TimeSpan deadline)
    {
        long target = Writes + writes;
        var watch = Stopwatch.StartNew();
        while (Writes < target)
        {
            if (watch.Elapsed > deadline)
                throw new Xunit.Sdk.XunitException($"The load acknowledged only {Writes} of {target} writes within {deadline}: {Summary()}");
            await Task.Delay(20);
        }
    }

    public string Summary() =>
        $"{_acked.Count} keys acknowledged ({Interlocked.Read(ref _puts)} puts, {Interlocked.Read(ref _batches)} batches), " +
        $"{Interlocked.Read(ref _reads)} verified reads, {_errors.Count} failed calls, slowest call {MaxLatency.TotalMilliseconds:0} ms";

    private async Task WriteLoopAsync(int writer)
    {
        var random = new Random(writer * 7919 + _tag.Length);
        for (long seq = 0; !_stop.IsCancellationRequested; seq++)
        {
            byte first = (byte)random.Next(256);
            if (random.Next(4) == 0)
            {
                // An atomic batch of 2..5 new keys in one shard (one first byte: shards split on the first byte).
                int n = random.Next(2, 6);
                var ops = new BatchOperation[n];
                for (int i = 0; i < n; i++)
                {
                    var key = Key(first, writer, seq, i);
                    ops[i] = BatchOperation.Put(key, Value(key, random));
                }
                await CallAsync("batch", ops[0].Key, () => _client.BatchAsync(ops), result =>
                {
                    foreach (var op in ops) Ack(new AckedWrite(op.Key, op.Value!, result.ShardId, result.Version));
                    Interlocked.Increment(ref _batches);
                });
            }
            else
            {
                var key = Key(first, writer, seq, -1);
                var value = Value(key, random);
                await CallAsync("put", key, () => _client.PutAsync(key, value), result =>
                {
                    Ack(new AckedWrite(key, value, result.ShardId, result.Version));
                    Interlocked.Increment(ref _puts);
                });
            }
            if (_pause > TimeSpan.Zero) await Task.Delay(_pause);
        }
    }

    private async Task ReadLoopAsync(int reader)
    {
        var random = new Random(reader * 104729 + 1);
        while (!_stop.IsCancellationRequested)
        {
            byte[]? key = null;
            lock (_ackedKeys)
            {
                if (_ackedKeys.Count > 0) key = _ackedKeys[random.Next(_ackedKeys.Count)];
            }
            if (key is null)
            {
                await Task.Delay(10);
                continue;
            }
            var expected = _acked[Convert.ToHexStringLower(key)].Value;
            await CallAsync("read", key, () => _client.ReadAsync(key), read =>
            {
                if (read.Value is null || !read.Value.AsSpan().SequenceEqual(expected))
                    _errors.Enqueue(new LoadError(_clock(), "read", Convert.ToHexStringLower(key), null,
                        $"read {(read.Value is null ? "nothing" : Convert.ToHexStringLower(read.Value))} at version {read.Version}, " +
                        $"expected the acknowledged {Convert.ToHexStringLower(expected)}"));
                Interlocked.Increment(ref _reads);
            });
            if (_pause > TimeSpan.Zero) await Task.Delay(_pause);
        }
    }

    private async Task CallAsync<T>(string operation, byte[] key, Func<Task<T>> call, Action<T> done)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            var result = await call();
            done(result);
        }
        catch (Exception e)
        {
            _errors.Enqueue(new LoadError(_clock(), operation, Convert.ToHexStringLower(key), (e as GridException)?.Code,
                e is GridException ? e.Message : e.ToString()));
            // Do not spin on a failing cluster.
            await Task.Delay(50);
        }
        finally
        {
            long ticks = Stopwatch.GetElapsedTime(started).Ticks;
            long seen;
            while (ticks > (seen = Interlocked.Read(ref _maxLatencyTicks)) && Interlocked.CompareExchange(ref _maxLatencyTicks, ticks, seen) != seen)
            {
            }
        }
    }

    private void Ack(AckedWrite write)
    {
        _acked[Convert.ToHexStringLower(write.Key)] = write;
        lock (_ackedKeys) _ackedKeys.Add(write.Key);
    }

    private byte[] Key(byte first, int writer, long seq, int index) =>
        [first, .. Encoding.UTF8.GetBytes(index < 0 ? $"{_tag}-w{writer}-{seq}" : $"{_tag}-w{writer}-{seq}.{index}")];

    private static byte[] Value(byte[] key, Random random)
    {
        var suffix = new byte[random.Next(4, 24)];
        random.NextBytes(suffix);
        return [.. Encoding.UTF8.GetBytes("value:"), .. key, .. suffix];
    }
}
