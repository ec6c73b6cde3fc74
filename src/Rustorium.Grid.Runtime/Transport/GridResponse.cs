using System.Buffers;

namespace Rustorium.Grid.Runtime.Transport;

/// <summary>
/// A call's response body, in a buffer rented from the shared array pool. Dispose it when done to return the
/// buffer (forgetting is safe, merely slower: the GC collects it).
/// </summary>
public sealed class GridResponse : IMemoryOwner<byte>
{
    private byte[]? _buffer;
    private readonly int _length;

    private GridResponse(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    internal static GridResponse CopyOf(in ReadOnlySequence<byte> payload)
    {
        int length = (int)payload.Length;
        if (length == 0) return new GridResponse([], 0);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        payload.CopyTo(buffer);
        return new GridResponse(buffer, length);
    }

    /// <summary>Length of the body in bytes.</summary>
    public int Length => _length;

    /// <summary>The response body.</summary>
    /// <exception cref="ObjectDisposedException">After <see cref="Dispose"/>.</exception>
    public ReadOnlyMemory<byte> Payload => Memory;

    /// <summary>The response body (writable: the buffer belongs to the caller until disposed).</summary>
    /// <exception cref="ObjectDisposedException">After <see cref="Dispose"/>.</exception>
    public Memory<byte> Memory
    {
        get
        {
            var b = _buffer;
            ObjectDisposedException.ThrowIf(b is null, this);
            return b.AsMemory(0, _length);
        }
    }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is { Length: > 0 }) ArrayPool<byte>.Shared.Return(b);
    }
}
