using System.Buffers;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Tests.Serialization;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Tests.Transport;

/// <summary>The frame header and the control payloads, byte for byte as docs/protocol.md describes them.</summary>
public sealed class FrameCodecTests
{
    [Fact]
    public void TheHeaderIsLengthTypeFlagsCorrelationIdLittleEndian()
    {
        var bytes = new byte[GridProtocol.HeaderSize];
        GridFrameCodec.WriteHeader(bytes, GridFrameType.Request, GridFrameFlags.None, 0x0102030405060708, payloadLength: 5);
        Assert.Equal(Convert.FromHexString("0F000000" + "03" + "00" + "0807060504030201"), bytes);
        var header = GridFrameCodec.ReadHeader(bytes, 1024);
        Assert.Equal(new GridFrameHeader(15, GridFrameType.Request, GridFrameFlags.None, 0x0102030405060708), header);
        Assert.Equal(5, header.PayloadLength);
    }

    [Fact]
    public void HelloIsEncodedAsDocumented()
    {
        var buffer = new PooledBufferWriter();
        var w = new GridWriter(buffer);
        new GridHello(0x0100, GridPeerRole.Client, "c1", 16 * 1024 * 1024).Write(ref w);
        w.Commit();
        // "RGRD" | 00 01 (1.0 LE) | 01 client | 02 "c1" | 80 80 80 08 (16 MiB varint)
        Assert.Equal(Convert.FromHexString("52475244" + "0001" + "01" + "026331" + "80808008"), buffer.WrittenSpan.ToArray());
    }

    [Fact]
    public void ErrorIsEncodedAsDocumented()
    {
        using var payload = GridErrorPayload.Encode(GridErrorCode.NotOwner, "moved", new OwnerHint(7, "h:1", 2));
        Assert.Equal(Convert.FromHexString("0200" + "056d6f766564" + "01" + "0700000000000000" + "03683a31" + "0200000000000000"),
            payload.WrittenSpan.ToArray());
        var r = new GridReader(payload.WrittenSpan);
        var e = GridErrorPayload.Read(ref r);
        Assert.Equal(GridErrorCode.NotOwner, e.Code);
        Assert.Equal("moved", e.Message);
        Assert.Equal(new OwnerHint(7, "h:1", 2), e.OwnerHint);
    }

    [Fact]
    public void UnknownErrorCodesBecomeInternalAndKeepTheNumber()
    {
        var buffer = new PooledBufferWriter();
        var w = new GridWriter(buffer);
        w.WriteUInt16(999);
        w.WriteString("future");
        w.WritePresence(false);
        w.Commit();
        var r = new GridReader(buffer.WrittenSpan);
        var e = GridErrorPayload.Read(ref r);
        Assert.Equal(GridErrorCode.Internal, e.Code);
        Assert.Contains("999", e.Message);
    }

    [Fact]
    public void LongErrorMessagesAreTruncatedAtACharacterBoundary()
    {
        string message = string.Concat(Enumerable.Repeat("é😀", 10_000));
        using var payload = GridErrorPayload.Encode(GridErrorCode.Internal, message, null);
        var r = new GridReader(payload.WrittenSpan);
        var e = GridErrorPayload.Read(ref r);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(e.Message) <= GridProtocol.MaxErrorMessageBytes);
        Assert.EndsWith("…", e.Message);
        Assert.StartsWith("é😀é😀", e.Message);
    }

    [Theory]
    [InlineData("09000000", "below the minimum")]       // 9 < 10
    [InlineData("01040000", "exceeds the limit")]       // 1025 > 1024
    [InlineData("FFFFFFFF", "exceeds the limit")]
    public void ABadLengthIsRefusedFromTheFourBytesOfThePrefixAlone(string prefix, string expected)
    {
        var seq = new ReadOnlySequence<byte>(Convert.FromHexString(prefix));
        var e = Assert.Throws<GridException>(() => GridFrameCodec.TryReadFrame(ref seq, 1024, out _, out _));
        Assert.Equal(GridErrorCode.ProtocolViolation, e.Code);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(9)]
    [InlineData(200)]
    public void UnknownFrameTypesAreRefused(byte type)
    {
        var frame = TransportTestKit.Frame(GridFrameType.Ping, 1, []);
        frame[4] = type;
        var seq = new ReadOnlySequence<byte>(frame);
        Assert.Equal(GridErrorCode.ProtocolViolation,
            Assert.Throws<GridException>(() => GridFrameCodec.TryReadFrame(ref seq, 1024, out _, out _)).Code);
    }

    [Fact]
    public void EveryPrefixOfAFrameAsksForMoreAndTheWholeFrameDecodesInAnySegmentation()
    {
        var frame = TransportTestKit.Request(3, 250, [1, 2, 3, 4, 5, 6, 7]);
        for (int cut = 0; cut < frame.Length; cut++)
        {
            var partial = new ReadOnlySequence<byte>(frame, 0, cut);
            Assert.False(GridFrameCodec.TryReadFrame(ref partial, 1024, out _, out _));
            Assert.Equal(cut, partial.Length);
        }
        for (int a = 0; a <= frame.Length; a++)
        {
            for (int b = a; b <= frame.Length; b++)
            {
                var seq = Segments.Split(frame, a, b);
                Assert.True(GridFrameCodec.TryReadFrame(ref seq, 1024, out var header, out var payload));
                Assert.Equal(GridFrameType.Request, header.Type);
                Assert.Equal(3UL, header.CorrelationId);
                Assert.True(seq.IsEmpty);
                var r = new GridReader(payload);
                Assert.Equal(250u, GridRequestPayload.ReadDeadline(ref r));
                Assert.Equal(7, r.Remaining);
            }
        }
    }

    [Fact]
    public void EveryTruncationOfHelloAndErrorPayloadsIsAProtocolViolation()
    {
        var hello = new PooledBufferWriter();
        var w = new GridWriter(hello);
        new GridHello(GridProtocol.Version, GridPeerRole.Silo, "silo-ü", 1 << 20).Write(ref w);
        w.Commit();
        using var error = GridErrorPayload.Encode(GridErrorCode.NotOwner, "not mine", new OwnerHint(1, "127.0.0.1:1", 3));

        for (int cut = 0; cut < hello.WrittenCount; cut++)
        {
            var bytes = hello.WrittenSpan[..cut].ToArray();
            var e = Assert.Throws<GridException>(() =>
            {
                var r = new GridReader(bytes);
                GridHello.Read(ref r);
            });
            Assert.Equal(GridErrorCode.ProtocolViolation, e.Code);
        }
        for (int cut = 0; cut < error.WrittenCount; cut++)
        {
            var bytes = error.WrittenSpan[..cut].ToArray();
            var e = Assert.Throws<GridException>(() =>
            {
                var r = new GridReader(bytes);
                GridErrorPayload.Read(ref r);
            });
            Assert.Equal(GridErrorCode.ProtocolViolation, e.Code);
        }
    }

    [Fact]
    public void AHeaderClaimingAGigabyteAllocatesNothing()
    {
        var frame = new byte[GridProtocol.HeaderSize];
        GridFrameCodec.WriteHeader(frame, GridFrameType.Request, GridFrameFlags.None, 1, payloadLength: 1 << 30);
        var seq = new ReadOnlySequence<byte>(frame);
        Assert.False(GridFrameCodec.TryReadFrame(ref seq, int.MaxValue, out _, out _)); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            seq = new ReadOnlySequence<byte>(frame);
            Assert.False(GridFrameCodec.TryReadFrame(ref seq, int.MaxValue, out _, out _));
        }
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1024);
    }

    [Theory]
    [InlineData(0, 0u)]
    [InlineData(1, 1u)]
    [InlineData(1.2, 2u)]
    [InlineData(5000, 5000u)]
    public void DeadlinesAreMillisecondsRoundedUp(double ms, uint expected)
    {
        Assert.Equal(expected == 0 ? 0u : expected, ms == 0 ? GridRequestPayload.DeadlineFor(Timeout.InfiniteTimeSpan) : GridRequestPayload.DeadlineFor(TimeSpan.FromMilliseconds(ms)));
    }
}
