using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Storage;

/// <summary>
/// A bounded least-recently-used map from node hash to node. Entries live in one preallocated array linked into a
/// recency list by index, so neither a hit nor an eviction allocates. Not thread-safe.
/// </summary>
/// <remarks>Every tree operation starts at the root and reads down, so the top levels are the most recently used
/// nodes at all times and stay cached; a cache of a few thousand nodes makes a proof in a million-key tree cost only
/// the few deepest levels in store reads.</remarks>
internal sealed class SmtNodeCache
{
    private const int None = -1;

    private struct Entry
    {
        public Fr Hash;
        public SmtNode Node;
        public int Previous; // towards the most recent
        public int Next;     // towards the least recent
    }

    private readonly Dictionary<Fr, int> _index;
    private readonly Entry[] _entries;
    private int _count;
    private int _head = None; // most recently used
    private int _tail = None; // least recently used

    public SmtNodeCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _entries = new Entry[capacity];
        _index = new Dictionary<Fr, int>(capacity);
    }

    public int Capacity => _entries.Length;

    public int Count => _count;

    public bool TryGet(in Fr hash, out SmtNode node)
    {
        if (!_index.TryGetValue(hash, out int i))
        {
            node = default;
            return false;
        }
        MoveToFront(i);
        node = _entries[i].Node;
        return true;
    }

    /// <summary>Adds or refreshes <paramref name="hash"/>, evicting the least recently used entry when full.</summary>
    public void Set(in Fr hash, in SmtNode node)
    {
        if (_index.TryGetValue(hash, out int i))
        {
            _entries[i].Node = node;
            MoveToFront(i);
            return;
        }
        if (_count < _entries.Length)
        {
            i = _count++;
        }
        else
        {
            i = _tail;
            Unlink(i);
            _index.Remove(_entries[i].Hash);
        }
        _entries[i].Hash = hash;
        _entries[i].Node = node;
        LinkFront(i);
        _index.Add(hash, i);
    }

    public void Remove(in Fr hash)
    {
        if (!_index.Remove(hash, out int i)) return;
        Unlink(i);
        // Fill the hole with the last slot so occupied slots stay 0.._count-1.
        int last = --_count;
        if (i != last)
        {
            var moved = _entries[last];
            Unlink(last);
            _entries[i] = moved;
            _index[moved.Hash] = i;
            InsertAt(i, moved.Previous, moved.Next);
        }
    }

    public void Clear()
    {
        _index.Clear();
        _count = 0;
        _head = _tail = None;
    }

    private void MoveToFront(int i)
    {
        if (i == _head) return;
        Unlink(i);
        LinkFront(i);
    }

    private void LinkFront(int i)
    {
        _entries[i].Previous = None;
        _entries[i].Next = _head;
        if (_head != None) _entries[_head].Previous = i;
        _head = i;
        if (_tail == None) _tail = i;
    }

    private void Unlink(int i)
    {
        ref var e = ref _entries[i];
        if (e.Previous != None) _entries[e.Previous].Next = e.Next;
        else _head = e.Next;
        if (e.Next != None) _entries[e.Next].Previous = e.Previous;
        else _tail = e.Previous;
        e.Previous = e.Next = None;
    }

    /// <summary>Links slot <paramref name="i"/> between <paramref name="previous"/> and <paramref name="next"/> (a moved entry's old neighbours).</summary>
    private void InsertAt(int i, int previous, int next)
    {
        _entries[i].Previous = previous;
        _entries[i].Next = next;
        if (previous != None) _entries[previous].Next = i;
        else _head = i;
        if (next != None) _entries[next].Previous = i;
        else _tail = i;
    }
}
