using System.Buffers;

namespace Rustorium.Grid.Runtime.Serialization;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over arrays rented from <see cref="ArrayPool{T}.Shared"/>: the scratch buffer
/// for encoding a message whose size is not known up front. Dispose it to return the array.
/// </summary>
/// <remarks>Not thread-safe. Growth doubles the capacity (at least the size hint), up to <see cref="Array.MaxLength"/>.</remarks>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _written;

    /// <summary>Creates a writer; <paramref name="initialCapacity"/> bytes (default 256) are rented at once.</summary>
    public PooledBufferWriter(int initialCapacity = 256)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initialCapacity);
        _buffer = initialCapacity == 0 ? [] : ArrayPool<byte>.Shared.Rent(initialCapacity);
    }

    /// <summary>Bytes written so far.</summary>
    public int WrittenCount => _written;

    /// <summary>The bytes written so far (valid until the next write, <see cref="Clear"/> or <see cref="Dispose"/>).</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    /// <summary>The bytes written so far, as memory (same validity as <see cref="WrittenSpan"/>).</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    /// <summary>Forgets what was written; keeps the buffer.</summary>
    public void Clear() => _written = 0;

    /// <inheritdoc />
    public void Advance(int count)
    {
        if (count < 0 || count > _buffer.Length - _written)
            throw new ArgumentOutOfRangeException(nameof(count), $"Cannot advance {count} bytes: {_buffer.Length - _written} are available.");
        _written += count;
    }

    /// <inheritdoc />
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsMemory(_written);
    }

    /// <inheritdoc />
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void EnsureCapacity(int sizeHint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        if (sizeHint == 0) sizeHint = 1;
        if (_buffer.Length - _written >= sizeHint) return;

        long needed = (long)_written + sizeHint;
        if (needed > Array.MaxLength)
            throw new GridException(GridErrorCode.InvalidArgument, $"A message of more than {Array.MaxLength} bytes cannot be encoded.");
        long grown = Math.Max(needed, Math.Max(256L, (long)_buffer.Length * 2));
        var next = ArrayPool<byte>.Shared.Rent((int)Math.Min(grown, Array.MaxLength));
        _buffer.AsSpan(0, _written).CopyTo(next);
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = next;
    }

    /// <summary>Returns the buffer to the pool; the writer must not be used afterwards.</summary>
    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        _written = 0;
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}
