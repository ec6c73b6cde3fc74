using System.Collections.Concurrent;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// The shards whose grain is active in this silo right now (an engine is open and serving). Lets a status page tell
/// live shards from stored ones without calling, and so activating, any grain.
/// </summary>
public sealed class ActiveShards
{
    private readonly ConcurrentDictionary<long, long> _ids = new();

    /// <summary>True while shard <paramref name="shardId"/> has an active grain in this silo.</summary>
    public bool Contains(long shardId) => _ids.ContainsKey(shardId);

    /// <summary>How many shards are active.</summary>
    public int Count => _ids.Count;

    /// <summary>A snapshot of the active shard ids, ascending.</summary>
    public long[] Snapshot()
    {
        var ids = _ids.Keys.ToArray();
        Array.Sort(ids);
        return ids;
    }

    /// <summary>The epoch shard <paramref name="shardId"/>'s active grain serves under, if it is active here.</summary>
    public bool TryGetEpoch(long shardId, out long epoch) => _ids.TryGetValue(shardId, out epoch);

    internal void Add(long shardId, long epoch) => _ids[shardId] = epoch;

    private readonly ConcurrentDictionary<long, System.Runtime.CompilerServices.StrongBox<long>> _operations = new();

    /// <summary>
    /// The counter of calls served by shard <paramref name="shardId"/> (its load, for load-based splits): a shard grain takes
    /// it once when it activates and increments it per call, with no lookup on the call path.
    /// </summary>
    internal System.Runtime.CompilerServices.StrongBox<long> OperationCounter(long shardId) =>
        _operations.GetOrAdd(shardId, static _ => new System.Runtime.CompilerServices.StrongBox<long>());

    /// <summary>Calls served by shard <paramref name="shardId"/> in this silo since it started (a monotonic counter).</summary>
    public long OperationCount(long shardId) => _operations.TryGetValue(shardId, out var box) ? Interlocked.Read(ref box.Value) : 0;

    /// <summary>Calls served by all shards in this silo since it started (a monotonic counter).</summary>
    public long TotalOperationCount()
    {
        long total = 0;
        foreach (var box in _operations.Values) total += Interlocked.Read(ref box.Value);
        return total;
    }

    internal void Remove(long shardId) => _ids.TryRemove(shardId, out _);
}
