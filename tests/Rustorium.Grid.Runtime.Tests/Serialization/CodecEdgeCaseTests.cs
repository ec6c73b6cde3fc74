using System.Buffers;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Tests.Serialization;

/// <summary>Known encodings (the examples in docs/protocol.md) and every way a reader must refuse input.</summary>
public sealed class CodecEdgeCaseTests
{
    private delegate void WriteAction(ref GridWriter w);

    private delegate void ReadAction(ref GridReader r);

    private static string Hex(WriteAction write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new GridWriter(buffer);
        write(ref w);
        w.Commit();
        return Convert.ToHexString(buffer.WrittenSpan);
    }

    private static GridException Refuses(string hex, ReadAction read)
    {
        var bytes = Convert.FromHexString(hex);
        var e = Assert.Throws<GridException>(() =>
        {
            var r = new GridReader(bytes);
            read(ref r);
        });
        Assert.Equal(GridErrorCode.ProtocolViolation, e.Code);
        // And the same over a sequence cut into single bytes.
        var e2 = Assert.Throws<GridException>(() =>
        {
            var r = new GridReader(Segments.ByteByByte(bytes));
            read(ref r);
        });
        Assert.Equal(GridErrorCode.ProtocolViolation, e2.Code);
        return e;
    }

    [Theory]
    [InlineData(0UL, "00")]
    [InlineData(1UL, "01")]
    [InlineData(127UL, "7F")]
    [InlineData(128UL, "8001")]
    [InlineData(300UL, "AC02")]
    [InlineData(16_384UL, "808001")]
    [InlineData(ulong.MaxValue, "FFFFFFFFFFFFFFFFFF01")]
    public void VarintsAreMinimalLeb128(ulong value, string hex)
    {
        Assert.Equal(hex, Hex((ref GridWriter w) => w.WriteVarUInt64(value)));
        var r = new GridReader(Convert.FromHexString(hex));
        Assert.Equal(value, r.ReadVarUInt64());
        r.ExpectEnd();
    }

    [Theory]
    [InlineData(0L, "00")]
    [InlineData(-1L, "01")]
    [InlineData(1L, "02")]
    [InlineData(-2L, "03")]
    [InlineData(63L, "7E")]
    [InlineData(-64L, "7F")]
    [InlineData(64L, "8001")]
    [InlineData(long.MinValue, "FFFFFFFFFFFFFFFFFF01")]
    public void SignedVarintsAreZigzag(long value, string hex)
    {
        Assert.Equal(hex, Hex((ref GridWriter w) => w.WriteVarInt64(value)));
        var r = new GridReader(Convert.FromHexString(hex));
        Assert.Equal(value, r.ReadVarInt64());
    }

    [Fact]
    public void FixedWidthIsLittleEndianTwosComplement()
    {
        Assert.Equal("0201", Hex((ref GridWriter w) => w.WriteUInt16(0x0102)));
        Assert.Equal("FEFFFFFF", Hex((ref GridWriter w) => w.WriteInt32(-2)));
        Assert.Equal("0807060504030201", Hex((ref GridWriter w) => w.WriteUInt64(0x0102030405060708)));
        Assert.Equal("0001", Hex((ref GridWriter w) =>
        {
            w.WriteBool(false);
            w.WriteBool(true);
        }));
    }

    [Fact]
    public void StringsAreLengthPrefixedUtf8()
    {
        Assert.Equal("00", Hex((ref GridWriter w) => w.WriteString("")));
        Assert.Equal("0368C3A9", Hex((ref GridWriter w) => w.WriteString("hé")));
        Assert.Equal("04F09F9880", Hex((ref GridWriter w) => w.WriteString("😀")));
        Assert.Equal("00", Hex((ref GridWriter w) => w.WriteOptionalString(null)));
        Assert.Equal("010161", Hex((ref GridWriter w) => w.WriteOptionalString("a")));
        Assert.Equal("03010203", Hex((ref GridWriter w) => w.WriteBytes([1, 2, 3])));
    }

    [Fact]
    public void FieldElementsAre32BytesLittleEndianCanonical()
    {
        var five = Fr.FromUInt64(5);
        Assert.Equal("05" + new string('0', 62), Hex((ref GridWriter w) => w.WriteFr(five)));
        var bytes = Convert.FromHexString("05" + new string('0', 62));
        var r = new GridReader(bytes);
        Assert.Equal(five, r.ReadFr());

        // p itself (and anything above) is not canonical.
        var p = Fr.Modulus.ToByteArray(isUnsigned: true, isBigEndian: false);
        var e = Refuses(Convert.ToHexString(p), (ref GridReader x) => x.ReadFr());
        Assert.Contains("canonical", e.Message);
        Refuses(new string('F', 64), (ref GridReader x) => x.ReadFr());
    }

    [Theory]
    [InlineData("8000")]                 // 0 in two bytes
    [InlineData("FF00")]                 // 127 with a redundant zero group
    [InlineData("818000")]
    public void NonMinimalVarintsAreRefused(string hex)
    {
        Assert.Contains("Non-minimal", Refuses(hex, (ref GridReader r) => r.ReadVarUInt64()).Message);
        Refuses(hex, (ref GridReader r) => r.ReadVarUInt32());
    }

    [Theory]
    [InlineData("FFFFFFFFFFFFFFFFFF02")]    // the 10th byte may only carry one bit
    [InlineData("FFFFFFFFFFFFFFFFFF81")]    // a continuation on the 10th byte
    [InlineData("FFFFFFFFFFFFFFFFFFFFFF01")]
    public void SixtyFourBitOverflowIsRefused(string hex) =>
        Assert.Contains("overflows 64 bits", Refuses(hex, (ref GridReader r) => r.ReadVarUInt64()).Message);

    [Theory]
    [InlineData("FFFFFFFF10")]  // 2^32
    [InlineData("FFFFFFFF8F01")]
    public void ThirtyTwoBitOverflowIsRefused(string hex) =>
        Assert.Contains("overflows 32 bits", Refuses(hex, (ref GridReader r) => r.ReadVarUInt32()).Message);

    [Fact]
    public void TheLargest32BitVarintIsAccepted()
    {
        var r = new GridReader(Convert.FromHexString("FFFFFFFF0F"));
        Assert.Equal(uint.MaxValue, r.ReadVarUInt32());
    }

    [Fact]
    public void BoolsAndPresenceMarkersAreZeroOrOne()
    {
        Refuses("02", (ref GridReader r) => r.ReadBool());
        Refuses("FF", (ref GridReader r) => r.ReadPresence());
        Refuses("0501", (ref GridReader r) => r.ReadOptionalBytes(10));
    }

    [Theory]
    [InlineData("02C328")]        // invalid continuation
    [InlineData("02C080")]        // overlong encoding of NUL
    [InlineData("03EDA080")]      // UTF-16 surrogate encoded in UTF-8
    [InlineData("01FF")]
    [InlineData("04F4908080")]    // above U+10FFFF
    public void InvalidUtf8IsRefused(string hex) =>
        Assert.Contains("not valid UTF-8", Refuses(hex, (ref GridReader r) => r.ReadString(100)).Message);

    [Fact]
    public void LengthsAreCheckedAgainstTheLimitAndTheRemainingBytesBeforeAllocating()
    {
        Assert.Contains("exceeds the limit of 3", Refuses("0401020304", (ref GridReader r) => r.ReadBytes(3)).Message);
        Assert.Contains("exceeds the limit of 3", Refuses("0461626364", (ref GridReader r) => r.ReadString(3)).Message);

        // A 2 GiB claim with a limit of int.MaxValue: refused for lack of bytes, and nothing big is allocated.
        var bytes = Convert.FromHexString("FEFFFFFF07");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<GridException>(() =>
        {
            var r = new GridReader(bytes);
            r.ReadBytes(int.MaxValue);
        });
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 * 1024);
        Assert.Contains("Truncated", e.Message);
    }

    [Fact]
    public void CountsAreCheckedAgainstTheLimitAndTheRemainingBytes()
    {
        Assert.Contains("exceeds the limit of 2", Refuses("03000000", (ref GridReader r) => r.ReadCount(2)).Message);
        Assert.Contains("needs at least", Refuses("05000000", (ref GridReader r) => r.ReadCount(100)).Message);
        Assert.Contains("needs at least 64", Refuses("02" + new string('0', 64), (ref GridReader r) => r.ReadCount(100, minElementBytes: 32)).Message);
        var ok = new GridReader(Convert.FromHexString("03000000"));
        Assert.Equal(3, ok.ReadCount(3));
    }

    [Fact]
    public void TruncatedFixedWidthValuesAreRefusedWithTheFieldAndOffset()
    {
        var e = Refuses("010203", (ref GridReader r) => r.ReadUInt32());
        Assert.Contains("u32", e.Message);
        Assert.Contains("offset 0", e.Message);
        Refuses("", (ref GridReader r) => r.ReadByte());
        Refuses("01", (ref GridReader r) => r.ReadUInt16());
        Refuses("01020304050607", (ref GridReader r) => r.ReadInt64());
        Refuses("00", (ref GridReader r) => r.ReadFr());
        Refuses("0102", (ref GridReader r) => r.ReadRaw(new byte[3]));
        Refuses("01", (ref GridReader r) => r.Skip(2));
    }

    [Fact]
    public void TrailingBytesAreReportedByExpectEnd()
    {
        var e = Refuses("0102", (ref GridReader r) =>
        {
            r.ReadByte();
            r.ExpectEnd();
        });
        Assert.Contains("1 unexpected trailing byte", e.Message);
    }

    [Fact]
    public void ALoneSurrogateCannotBeWritten()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var e = Assert.Throws<GridException>(() =>
        {
            var w = new GridWriter(buffer);
            w.WriteString("a\uD800b");
        });
        Assert.Equal(GridErrorCode.InvalidArgument, e.Code);
    }

    [Fact]
    public void ReadBytesSpanPointsIntoTheInputWhenContiguous()
    {
        var bytes = Convert.FromHexString("03AABBCC02DDEE");
        var r = new GridReader(bytes);
        var first = r.ReadBytesSpan(10);
        Assert.True(first.Overlaps(bytes));
        Assert.Equal(new byte[] { 0xAA, 0xBB, 0xCC }, first.ToArray());

        var split = new GridReader(Segments.Split(bytes, 2, 6));
        Assert.Equal(new byte[] { 0xAA, 0xBB, 0xCC }, split.ReadBytesSpan(10).ToArray());
        Assert.Equal(new byte[] { 0xDD, 0xEE }, split.ReadBytesSpan(10).ToArray());
        Assert.True(split.End);
    }

    [Fact]
    public void PositionAndRemainingTrackAcrossSegments()
    {
        var bytes = new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
        var r = new GridReader(Segments.Split(bytes, 3, 3, 7));
        Assert.Equal(10, r.Remaining);
        r.Skip(4);
        Assert.Equal(4, r.Position);
        Assert.Equal(0x08070605u, r.ReadUInt32());
        Assert.Equal(2, r.Remaining);
        Assert.Equal(9, r.ReadByte());
        Assert.Equal(10, r.ReadByte());
        Assert.True(r.End);
    }

    [Fact]
    public void PooledBufferWriterGrowsAndKeepsWhatWasWritten()
    {
        using var buffer = new PooledBufferWriter(4);
        var w = new GridWriter(buffer);
        for (int i = 0; i < 10_000; i++) w.WriteVarInt32(i - 5000);
        w.Commit();
        var r = new GridReader(buffer.WrittenSpan);
        for (int i = 0; i < 10_000; i++) Assert.Equal(i - 5000, r.ReadVarInt32());
        r.ExpectEnd();
        buffer.Clear();
        Assert.Equal(0, buffer.WrittenCount);
    }
}
