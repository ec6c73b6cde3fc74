namespace Rustorium.Grid.Abstractions.Tests;

public sealed class KeyRangeTests
{
    [Fact]
    public void ContainsUsesUnsignedLexicographicOrderWithPrefixFirst()
    {
        var r = new KeyRange([0x40], [0x80]);
        Assert.True(r.Contains([0x40]));
        Assert.True(r.Contains([0x40, 0x00]));
        Assert.True(r.Contains([0x7f, 0xff, 0xff]));
        Assert.False(r.Contains([0x80]));
        Assert.False(r.Contains([0x3f, 0xff]));
        Assert.False(r.Contains([]));
        Assert.True(KeyRange.All.Contains([]));
        Assert.True(KeyRange.All.Contains([0xff, 0xff]));
        Assert.True(new KeyRange([0xc0], null).Contains([0xff, 0xff, 0xff]));
    }

    [Theory]
    [InlineData(new byte[] { 0x80 }, new byte[] { 0x40 })]
    [InlineData(new byte[] { 0x40 }, new byte[] { 0x40 })]
    [InlineData(new byte[] { 0x40, 0x00 }, new byte[] { 0x40 })]
    public void EndNotAfterStartIsInvalidArgument(byte[] start, byte[] end)
    {
        var ex = Assert.Throws<GridException>(() => new KeyRange(start, end));
        Assert.Equal(GridErrorCode.InvalidArgument, ex.Code);
    }

    [Fact]
    public void IsImmutableAndHasValueEquality()
    {
        var start = new byte[] { 1 };
        var end = new byte[] { 2 };
        var r = new KeyRange(start, end);
        start[0] = 9;
        end[0] = 9;
        Assert.True(r.Contains([1, 5]));
        Assert.Equal(new KeyRange([1], [2]), r);
        Assert.Equal(new KeyRange([1], [2]).GetHashCode(), r.GetHashCode());
        Assert.NotEqual(new KeyRange([1], null), r);
        Assert.Equal("[01, 02)", r.ToString());
        Assert.Equal("[\"\", ∞)", KeyRange.All.ToString());
    }
}

public sealed class GridLimitsTests
{
    [Fact]
    public void EmptyOrOversizedKeysAndOversizedValuesAreInvalidArgument()
    {
        var limits = new GridLimits { MaxKeyBytes = 4, MaxValueBytes = 8 };
        limits.CheckKey([1, 2, 3, 4]);
        limits.CheckValue(new byte[8]);
        limits.CheckValue([]);
        Assert.Equal(GridErrorCode.InvalidArgument, Assert.Throws<GridException>(() => limits.CheckKey([])).Code);
        var big = Assert.Throws<GridException>(() => limits.CheckKey(new byte[5]));
        Assert.Contains("5 bytes", big.Message);
        Assert.Equal(GridErrorCode.InvalidArgument, Assert.Throws<GridException>(() => limits.CheckValue(new byte[9])).Code);
    }

    [Fact]
    public void ValidateNamesTheBadLimit()
    {
        GridLimits.Default.Validate();
        var ex = Assert.Throws<GridException>(() => new GridLimits { MaxKeyBytes = 0 }.Validate());
        Assert.Contains("MaxKeyBytes", ex.Message);
        Assert.Contains("MaxScanLimit", Assert.Throws<GridException>(() => new GridLimits { MaxScanLimit = 0 }.Validate()).Message);
    }
}
