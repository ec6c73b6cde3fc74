using System.Buffers;

namespace Rustorium.Grid.Runtime.Tests.Serialization;

/// <summary>Builds multi-segment sequences, so readers are tested across segment boundaries (including empty segments).</summary>
internal static class Segments
{
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>The bytes cut at the given (ascending) offsets; equal offsets give empty segments.</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, params int[] cuts)
    {
        var first = new Segment(bytes.AsMemory(0, cuts.Length == 0 ? bytes.Length : cuts[0]), 0);
        var last = first;
        for (int i = 0; i < cuts.Length; i++)
        {
            int end = i + 1 < cuts.Length ? cuts[i + 1] : bytes.Length;
            last = last.Append(bytes.AsMemory(cuts[i], end - cuts[i]));
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>One segment per byte: the worst case for a reader.</summary>
    public static ReadOnlySequence<byte> ByteByByte(byte[] bytes) =>
        bytes.Length == 0 ? ReadOnlySequence<byte>.Empty : Split(bytes, Enumerable.Range(1, bytes.Length - 1).ToArray());
}
