using System.Diagnostics;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Grains.Cluster;

/// <summary>
/// This silo's load as its heartbeat reports it (<see cref="SiloLoad"/>): the calls its shards served per second since the
/// previous sample, and its grain activations now. Sampled once per heartbeat.
/// </summary>
public sealed class SiloLoadMeter(ActiveShards shards, ActivationDirectory activations)
{
    private readonly object _gate = new();
    private long _lastCount;
    private long _lastTimestamp;

    /// <summary>The load since the previous call (the first call reports the rate since the silo started counting: 0 ops/s).</summary>
    public SiloLoad Sample()
    {
        long count = shards.TotalOperationCount();
        long now = Stopwatch.GetTimestamp();
        double rate;
        lock (_gate)
        {
            var elapsed = _lastTimestamp == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_lastTimestamp, now);
            rate = elapsed > TimeSpan.FromMilliseconds(1) ? Math.Max(0, count - _lastCount) / elapsed.TotalSeconds : 0;
            _lastCount = count;
            _lastTimestamp = now;
        }
        return new SiloLoad(Math.Round(rate, 1), activations.Count);
    }
}
