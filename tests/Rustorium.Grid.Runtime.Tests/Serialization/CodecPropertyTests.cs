using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using Rustorium.Grid.Runtime.Serialization;
using static Rustorium.Grid.Runtime.Tests.Serialization.CodecGen;

namespace Rustorium.Grid.Runtime.Tests.Serialization;

/// <summary>FsCheck properties of <see cref="GridWriter"/> and <see cref="GridReader"/>.</summary>
public sealed class CodecPropertyTests
{
    private static GridException ViolationOf(byte[] bytes, Field[] fields, Func<byte[], ReadOnlySequence<byte>>? segment)
    {
        var e = Assert.Throws<GridException>(() =>
        {
            var r = segment is null ? new GridReader(bytes) : new GridReader(segment(bytes));
            Field.DecodeAndCheck(ref r, fields);
        });
        Assert.Equal(GridErrorCode.ProtocolViolation, e.Code);
        return e;
    }

    [Fact]
    public void EveryMessageRoundTripsOverSpansAndOverAnySegmentation()
    {
        Prop.ForAll(Messages(12).ToArbitrary(), Gen.Zip(Gen.Choose(0, 1000), Gen.Choose(0, 1000)).ToArbitrary(), (fields, cuts) =>
        {
            var bytes = Field.Encode(fields);

            var span = new GridReader(bytes);
            Field.DecodeAndCheck(ref span, fields);

            var single = new GridReader(new ReadOnlySequence<byte>(bytes));
            Field.DecodeAndCheck(ref single, fields);

            int a = Math.Min(cuts.Item1, bytes.Length), b = Math.Min(Math.Max(a, cuts.Item2), bytes.Length);
            var split = new GridReader(Segments.Split(bytes, a, a, b)); // with an empty segment in the middle
            Field.DecodeAndCheck(ref split, fields);

            if (bytes.Length < 4096)
            {
                var tiny = new GridReader(Segments.ByteByByte(bytes));
                Field.DecodeAndCheck(ref tiny, fields);
            }
            return true;
        }).Check(Runs(300));
    }

    [Fact]
    public void TheWriterProducesTheSameBytesWhenTheOutputHandsOutTinySpans()
    {
        Prop.ForAll(Messages(12).ToArbitrary(), fields =>
        {
            var expected = Field.Encode(fields);
            var tiny = new TinySpanWriter();
            var w = new GridWriter(tiny);
            foreach (var f in fields) f.Write(ref w);
            w.Commit();
            Assert.Equal(expected, tiny.Written.ToArray());
            return true;
        }).Check(Runs(200));
    }

    [Fact]
    public void EveryTruncationOfAValidMessageIsAProtocolViolation()
    {
        // Small messages so that every cut can be tried, over a span and byte by byte.
        var smallFields = Gen.Choose(1, 6).SelectMany(n => Gen.ArrayOf(CodecGen.Field, n))
            .Where(fs => Field.Encode(fs).Length <= 600);
        Prop.ForAll(smallFields.ToArbitrary(), fields =>
        {
            var bytes = Field.Encode(fields);
            for (int cut = 0; cut < bytes.Length; cut++)
            {
                var prefix = bytes[..cut];
                ViolationOf(prefix, fields, null);
                if (cut % 7 == 0) ViolationOf(prefix, fields, Segments.ByteByByte);
            }
            return true;
        }).Check(Runs(150));
    }

    [Fact]
    public void VarintSizesMatchTheEncoding()
    {
        Prop.ForAll(U64.ToArbitrary(), v =>
        {
            var buffer = new ArrayBufferWriter<byte>();
            var w = new GridWriter(buffer);
            w.WriteVarUInt64(v);
            w.Commit();
            Assert.Equal(GridWireFormat.VarUInt64Size(v), buffer.WrittenCount);
            Assert.Equal(v, GridWireFormat.ZigZagEncode(GridWireFormat.ZigZagDecode(v)));
            Assert.Equal((long)v, GridWireFormat.ZigZagDecode(GridWireFormat.ZigZagEncode((long)v)));
            return true;
        }).Check(Runs(2000));
    }

    [Fact]
    public void RandomBytesReadAsAnyMessageDecodeOrFailWithAProtocolViolationOnly()
    {
        var inputs = Gen.Zip(Messages(6), CodecGen.ByteArrays);
        Prop.ForAll(inputs.ToArbitrary(), t =>
        {
            var (fields, noise) = t;
            try
            {
                var r = new GridReader(noise);
                Field.DecodeAndCheck(ref r, fields);
            }
            catch (GridException e)
            {
                Assert.Equal(GridErrorCode.ProtocolViolation, e.Code);
            }
            catch (Xunit.Sdk.XunitException)
            {
                // Decoded fine, to a different value than the model's: acceptable for noise.
            }
            return true;
        }).Check(Runs(500));
    }

    /// <summary>An output that hands out spans of exactly the size asked for (or one byte).</summary>
    private sealed class TinySpanWriter : IBufferWriter<byte>
    {
        private readonly ArrayBufferWriter<byte> _inner = new();
        private byte[] _current = [];

        public ReadOnlySpan<byte> Written => _inner.WrittenSpan;

        public void Advance(int count) => _inner.Write(_current.AsSpan(0, count));

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            _current = new byte[Math.Max(1, sizeHint)];
            return _current;
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
