using Rustorium.Grid.Storage;

namespace Rustorium.Grid.Grains.Shards;

/// <summary>
/// A shard's committed rows most recently read or written, bounded in bytes (least recently used evicted first), so
/// repeated reads of hot keys are answered without a store round trip (on PostgreSQL that is a network round trip).
/// Thread-safe.
/// </summary>
/// <remarks>
/// Coherent because the shard has one writer (its owner, fenced by its epoch): every commit puts its rows, with their
/// version, when it is accepted — before its writes are acknowledged — and a deleted key is kept as a known absence.
/// A row (or an absence) read from the store is kept only if no commit was accepted since the read began
/// (<see cref="Generation"/>): a read that overlapped a commit may have seen the older state, and the newer entry may
/// already have been evicted, so it must not put the older state back. An entry never replaces a newer version.
/// </remarks>
internal sealed class RowCache
{
    private const int EntryOverhead = 96; // dictionary slot, list node, entry: a fair estimate per row

    private readonly object _gate = new();
    private readonly Dictionary<byte[], LinkedListNode<Entry>> _index = new(ByteArrayComparer.Instance);
    private readonly LinkedList<Entry> _recency = new(); // first: most recent
    private readonly long _capacityBytes;
    private long _bytes;

    /// <summary>A committed row (<see cref="Value"/> null: the key is known to be absent) at <see cref="Version"/>.</summary>
    public readonly record struct Entry(byte[] Key, byte[]? Value, long Version, long TimestampMicros)
    {
        public long Size => Key.Length + (Value?.Length ?? 0) + EntryOverhead;

        public StoredRow? ToRow() => Value is null ? null : new StoredRow(Key, Value, Version, TimestampMicros);
    }

    public RowCache(long capacityBytes) => _capacityBytes = capacityBytes;

    private long _generation;

    /// <summary>Moves on with every accepted commit; a store read takes it before it starts (<see cref="OfferRead"/>).</summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>Puts a committed group's rows (deletes as known absences) and moves <see cref="Generation"/> on, atomically.</summary>
    public void OfferCommit(IReadOnlyList<RowWrite> rows, long version, long timestampMicros)
    {
        lock (_gate)
        {
            Interlocked.Increment(ref _generation);
            foreach (var row in rows) OfferLocked(new Entry(row.Key, row.Value, version, timestampMicros));
        }
    }

    /// <summary>Keeps what a store read found, unless a commit was accepted since <paramref name="generationBeforeRead"/>.</summary>
    public void OfferRead(in Entry entry, long generationBeforeRead)
    {
        lock (_gate)
        {
            if (Interlocked.Read(ref _generation) != generationBeforeRead) return;
            OfferLocked(entry);
        }
    }

    public bool TryGet(byte[] key, out Entry entry)
    {
        lock (_gate)
        {
            if (_index.TryGetValue(key, out var node))
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
                entry = node.Value;
                return true;
            }
        }
        entry = default;
        return false;
    }

    private void OfferLocked(in Entry entry)
    {
        if (entry.Size > _capacityBytes / 4)
        {
            // A huge value would evict everything else: drop any older entry of the key instead of keeping this one.
            if (_index.Remove(entry.Key, out var old))
            {
                _recency.Remove(old);
                _bytes -= old.Value.Size;
            }
            return;
        }
        if (_index.TryGetValue(entry.Key, out var node))
        {
            if (node.Value.Version > entry.Version) return;
            _bytes -= node.Value.Size;
            node.Value = entry;
            _bytes += entry.Size;
            _recency.Remove(node);
            _recency.AddFirst(node);
        }
        else
        {
            _index[entry.Key] = _recency.AddFirst(entry);
            _bytes += entry.Size;
        }
        while (_bytes > _capacityBytes && _recency.Last is { } last)
        {
            _recency.RemoveLast();
            _index.Remove(last.Value.Key);
            _bytes -= last.Value.Size;
        }
    }
}
