using System.Diagnostics;
using System.Globalization;
using Rustorium.Grid.Client;

namespace Rustorium.Grid.Cli.Bench;

/// <summary>What <c>grid bench load</c> was asked to do (already validated).</summary>
internal sealed record LoadOptions(
    int Concurrency,
    TimeSpan Duration,
    double ReadRatio,
    int KeySize,
    int ValueSize,
    int Keys,
    SyncMode Sync,
    bool Proof,
    bool Preload,
    int ReadBatch = 128);

/// <summary>Throughput and latency of one kind of operation.</summary>
internal sealed record LoadOpStats(long Ops, double OpsPerSecond, double? MeanMs, double? P50Ms, double? P99Ms, double? P999Ms, double? MaxMs);

/// <summary>The outcome of a load run.</summary>
internal sealed record LoadResult(LoadOptions Options, TimeSpan Elapsed, LoadOpStats Writes, LoadOpStats Reads, long Errors, string? FirstError, TimeSpan? PreloadTime)
{
    /// <summary>What the silos' shard stores committed during the timed run (<c>--status</c>), or null.</summary>
    public StoreTotals? Store { get; init; }

    /// <summary>CPU time this process (the load generator) used during the timed run, all threads.</summary>
    public TimeSpan ClientCpu { get; init; }

    public long Ops => Writes.Ops + Reads.Ops;

    /// <summary>The load generator's CPU time per operation of the timed run (null without operations).</summary>
    public TimeSpan? ClientCpuPerOp => Ops == 0 ? null : ClientCpu / Ops;

    /// <summary>The silos' CPU time per operation, summed over them (null without <c>--status</c>, operations, or a silo that reports it).</summary>
    public TimeSpan? SilosCpuPerOp => Ops == 0 || Store?.CpuSeconds is not { } cpu ? null : TimeSpan.FromSeconds(cpu / Ops);
    public double OpsPerSecond => Ops / Elapsed.TotalSeconds;
}

/// <summary>
/// A latency histogram in microseconds, log-linear (64 sub-buckets per power of two: under 1.6 % error), in one
/// preallocated array: recording allocates nothing. One per worker and kind of operation, merged at the end.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBits = 6;
    private const int Sub = 1 << SubBits;           // 64
    private const int MaxShift = 40;                // up to ~2^46 µs, far beyond any call timeout
    private readonly long[] _counts = new long[Sub * (MaxShift + 2)];
    private long _sumMicros;
    private long _max;

    public long Count { get; private set; }

    public void Record(long micros)
    {
        if (micros < 0) micros = 0;
        _counts[IndexOf(micros)]++;
        Count++;
        _sumMicros += micros;
        if (micros > _max) _max = micros;
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        _sumMicros += other._sumMicros;
        _max = Math.Max(_max, other._max);
    }

    public double MeanMicros => Count == 0 ? 0 : (double)_sumMicros / Count;

    public long MaxMicros => _max;

    /// <summary>The latency (µs) at or below which <paramref name="quantile"/> of the recorded calls fall (bucket midpoint, capped at the max).</summary>
    public double QuantileMicros(double quantile)
    {
        if (Count == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(quantile * Count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(Midpoint(i), _max);
        }
        return _max;
    }

    internal static int IndexOf(long v)
    {
        if (v < 2 * Sub) return (int)v;
        int shift = Math.Min(63 - (int)long.LeadingZeroCount(v) - SubBits, MaxShift);
        long sub = Math.Min((v >> shift) - Sub, Sub - 1);
        return Sub * (shift + 1) + (int)sub;
    }

    private static double Midpoint(int index)
    {
        if (index < 2 * Sub) return index;
        int shift = index / Sub - 1;
        long low = (long)(Sub + index % Sub) << shift;
        return low + ((1L << shift) - 1) / 2.0;
    }
}

/// <summary>
/// <c>grid bench load</c>: N async workers share one <see cref="GridClient"/> and issue reads and writes of random
/// keys of a fixed key space for a fixed time; each worker records latencies into its own preallocated histograms.
/// </summary>
internal static class LoadBenchmark
{
    /// <summary>Most keys in the key space (all keys are built up front).</summary>
    public const int MaxKeys = 50_000_000;

    /// <summary>Most bytes all keys may take together.</summary>
    public const long MaxKeyBytesTotal = 1L << 30;

    /// <summary>Why the key space cannot be built, or null: keys must be distinct in their first min(size, 8) bytes.</summary>
    public static string? KeySpaceProblem(int keySize, int keys)
    {
        int n = Math.Min(keySize, 8);
        if (n < 8 && keys > (1L << (8 * n)))
            return $"--keys {keys} distinct keys do not fit in --key-size {keySize} byte(s) (at most {1L << (8 * n):N0}).";
        if ((long)keys * keySize > MaxKeyBytesTotal)
            return $"--keys × --key-size is {(long)keys * keySize:N0} bytes; the load generator holds every key in memory, at most {MaxKeyBytesTotal:N0}.";
        return null;
    }

    /// <summary>
    /// The i-th key: its first min(size, 8) bytes are i × (2^(8·n) / keys), big-endian, so the keys spread evenly over
    /// the first key byte (the silo's initial shards split the first byte evenly); the rest is filler.
    /// </summary>
    public static byte[][] BuildKeys(int keySize, int keys)
    {
        int n = Math.Min(keySize, 8);
        UInt128 space = (UInt128)1 << (8 * n);
        UInt128 step = space / (UInt128)keys;
        var result = new byte[keys][];
        for (int i = 0; i < keys; i++)
        {
            var key = new byte[keySize];
            ulong v = (ulong)((UInt128)(uint)i * step);
            for (int b = 0; b < n; b++) key[b] = (byte)(v >> (8 * (n - 1 - b)));
            for (int b = n; b < keySize; b++) key[b] = (byte)('a' + (i + b) % 26);
            result[i] = key;
        }
        return result;
    }

    private sealed class Worker(int id)
    {
        public readonly LatencyHistogram Reads = new();
        public readonly LatencyHistogram Writes = new();
        public readonly Random Random = new(unchecked(id * 7919 + 17));
        public long Done;   // read by the progress loop while the worker runs
        public long Errors;
        public Exception? FirstError;
    }

    /// <param name="beforeTimedRun">Runs after the preload, right before the timed run starts (e.g. a first reading of the silos' statistics).</param>
    public static async Task<LoadResult> RunAsync(GridConsole console, GridClient grid, LoadOptions options, CancellationToken ct,
        Func<Task>? beforeTimedRun = null)
    {
        var keys = BuildKeys(options.KeySize, options.Keys);
        var values = new byte[options.Concurrency][];
        var workers = new Worker[options.Concurrency];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Worker(i);
            values[i] = new byte[options.ValueSize];
            workers[i].Random.NextBytes(values[i]);
        }

        TimeSpan? preloadTime = null;
        if (options.Preload)
        {
            var preloadClock = Stopwatch.StartNew();
            int next = -1;
            var loaders = new Task[Math.Min(options.Concurrency, options.Keys)];
            for (int w = 0; w < loaders.Length; w++)
            {
                var value = values[w];
                loaders[w] = Task.Run(async () =>
                {
                    int i;
                    while ((i = Interlocked.Increment(ref next)) < keys.Length)
                        await grid.PutAsync(keys[i], value, SyncMode.Async, ct).ConfigureAwait(false);
                }, ct);
            }
            var all = Task.WhenAll(loaders);
            while (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(1), ct)).ConfigureAwait(false) != all)
                console.Error.WriteLine(Invariant($"preload: {Math.Min(Volatile.Read(ref next), keys.Length):N0}/{keys.Length:N0} keys, {preloadClock.Elapsed.TotalSeconds:F1} s"));
            await all.ConfigureAwait(false);
            preloadTime = preloadClock.Elapsed;
            console.Error.WriteLine(Invariant($"preload: {keys.Length:N0} keys written in {preloadTime.Value.TotalSeconds:F1} s"));
        }

        if (beforeTimedRun is not null) await beforeTimedRun().ConfigureAwait(false);
        int stop = 0;
        var cpuBefore = ProcessCpu();
        var clock = Stopwatch.StartNew();
        var tasks = new Task[workers.Length];
        for (int w = 0; w < workers.Length; w++)
        {
            var worker = workers[w];
            var value = values[w];
            tasks[w] = Task.Run(() => RunWorkerAsync(grid, worker, keys, value, options, () => Volatile.Read(ref stop) != 0, ct), ct);
        }

        var workersDone = Task.WhenAll(tasks);
        var nextReport = TimeSpan.FromSeconds(1);
        long lastDone = 0;
        var lastAt = TimeSpan.Zero;
        while (!workersDone.IsCompleted)
        {
            var now = clock.Elapsed;
            if (now >= options.Duration) Volatile.Write(ref stop, 1);
            var wait = Volatile.Read(ref stop) != 0 ? TimeSpan.FromSeconds(1) : Min(options.Duration, nextReport) - now;
            if (wait > TimeSpan.Zero) await Task.WhenAny(workersDone, Task.Delay(wait, ct)).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            now = clock.Elapsed;
            if (now >= nextReport && !workersDone.IsCompleted)
            {
                long done = 0, errors = 0;
                foreach (var worker in workers) { done += Volatile.Read(ref worker.Done); errors += Volatile.Read(ref worker.Errors); }
                double rate = (done - lastDone) / (now - lastAt).TotalSeconds;
                console.Error.WriteLine(Invariant(
                    $"load: {now.TotalSeconds:F1} s, {done:N0} ops, {rate:N0} ops/s{(errors > 0 ? $", {errors:N0} errors" : "")}{(Volatile.Read(ref stop) != 0 ? " (draining)" : "")}"));
                lastDone = done;
                lastAt = now;
                while (nextReport <= now) nextReport += TimeSpan.FromSeconds(1);
            }
        }
        await workersDone.ConfigureAwait(false);
        var elapsed = clock.Elapsed;
        var clientCpu = ProcessCpu() - cpuBefore;

        var reads = new LatencyHistogram();
        var writes = new LatencyHistogram();
        long totalErrors = 0;
        Exception? first = null;
        foreach (var worker in workers)
        {
            reads.Add(worker.Reads);
            writes.Add(worker.Writes);
            totalErrors += worker.Errors;
            first ??= worker.FirstError;
        }
        return new LoadResult(options, elapsed, Stats(writes, elapsed), Stats(reads, elapsed), totalErrors, first?.Message, preloadTime)
        {
            ClientCpu = clientCpu,
        };
    }

    private static TimeSpan ProcessCpu()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    private static async Task RunWorkerAsync(GridClient grid, Worker worker, byte[][] keys, byte[] value, LoadOptions options, Func<bool> stopped, CancellationToken ct)
    {
        var random = worker.Random;
        while (!stopped())
        {
            var key = keys[random.Next(keys.Length)];
            bool read = options.ReadRatio > 0 && (options.ReadRatio >= 1 || random.NextDouble() < options.ReadRatio);
            long start = Stopwatch.GetTimestamp();
            try
            {
                if (read)
                {
                    await grid.ReadAsync(key, withProof: options.Proof, ct).ConfigureAwait(false);
                }
                else if (options.Proof)
                {
                    await grid.WriteWithProofAsync(key, value, ct).ConfigureAwait(false);
                }
                else
                {
                    await grid.PutAsync(key, value, options.Sync, ct).ConfigureAwait(false);
                }
            }
            catch (GridException e)
            {
                worker.Errors++;
                worker.FirstError ??= e;
                if (e.Code is GridErrorCode.Unavailable) await Task.Delay(100, ct).ConfigureAwait(false);
                continue;
            }
            long micros = (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            (read ? worker.Reads : worker.Writes).Record(micros);
            Volatile.Write(ref worker.Done, worker.Done + 1);
        }
    }

    private static LoadOpStats Stats(LatencyHistogram h, TimeSpan elapsed)
    {
        if (h.Count == 0) return new LoadOpStats(0, 0, null, null, null, null, null);
        static double Ms(double micros) => Math.Round(micros / 1000, 3);
        return new LoadOpStats(h.Count, h.Count / elapsed.TotalSeconds, Ms(h.MeanMicros),
            Ms(h.QuantileMicros(0.50)), Ms(h.QuantileMicros(0.99)), Ms(h.QuantileMicros(0.999)), Ms(h.MaxMicros));
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
