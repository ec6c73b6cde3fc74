using System.Buffers;

namespace Rustorium.Grid.Cli;

/// <summary>
/// Reads a byte stream line by line without decoding it and without allocating per line: each line is a view
/// into a pooled buffer, valid until the next read. Lines end at '\n'; a trailing '\r' and a leading UTF-8 byte
/// order mark on the first line are removed; the last line may lack its '\n'.
/// </summary>
internal sealed class LineReader : IDisposable
{
    /// <summary>Longest line accepted, in bytes (a guard against reading a binary file whole into memory).</summary>
    public const int MaxLineBytes = 1 << 20;

    private const int InitialBufferBytes = 1 << 16;

    private readonly Stream _stream;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _endOfStream;

    public LineReader(Stream stream)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferBytes);
    }

    /// <summary>The 1-based number of the line last returned (0 before the first).</summary>
    public long LineNumber { get; private set; }

    /// <summary>Reads the next line.</summary>
    /// <returns>False at the end of the stream.</returns>
    /// <exception cref="GridCommandException">A line is longer than <see cref="MaxLineBytes"/> (<see cref="ExitCode.BadInput"/>).</exception>
    /// <exception cref="IOException">The stream failed.</exception>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        int scanFrom = _start;
        while (true)
        {
            int newline = _buffer.AsSpan(scanFrom, _end - scanFrom).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                int lineEnd = scanFrom + newline;
                line = Finish(_buffer.AsSpan(_start, lineEnd - _start));
                _start = lineEnd + 1;
                return true;
            }
            if (_endOfStream)
            {
                if (_start == _end)
                {
                    line = default;
                    return false;
                }
                line = Finish(_buffer.AsSpan(_start, _end - _start));
                _start = _end;
                return true;
            }
            scanFrom = _end;
            if (_end - _start > MaxLineBytes)
            {
                throw GridCommandException.BadInput($"line {LineNumber + 1}: longer than {MaxLineBytes} bytes; is this the right file?");
            }
            int scanned = scanFrom - _start;
            Fill();
            scanFrom = _start + scanned;
        }
    }

    private ReadOnlySpan<byte> Finish(ReadOnlySpan<byte> line)
    {
        LineNumber++;
        if (LineNumber == 1 && line.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) line = line[3..];
        if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
        return line;
    }

    /// <summary>Moves the partial line to the front (growing the buffer if it is full) and reads more.</summary>
    private void Fill()
    {
        int pending = _end - _start;
        if (_start > 0)
        {
            _buffer.AsSpan(_start, pending).CopyTo(_buffer);
            _start = 0;
            _end = pending;
        }
        if (_end == _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            _buffer.AsSpan(0, _end).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
        int read = _stream.Read(_buffer, _end, _buffer.Length - _end);
        if (read == 0) _endOfStream = true;
        _end += read;
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _start = _end = 0;
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
    }
}
