namespace Rustorium.Grid.Runtime.Tests.Grains;

public sealed class GrainIdTests
{
    [Fact]
    public void StringFormIsStableAndRoundTrips()
    {
        var integer = GrainId.Create("shard", -42);
        var text = GrainId.Create("region", "eu/west 1");

        Assert.Equal("shard/i/-42", integer.ToString());
        Assert.Equal("region/s/eu/west 1", text.ToString());
        Assert.Equal(integer, GrainId.Parse("shard/i/-42"));
        Assert.Equal(text, GrainId.Parse(text.ToString()));
        Assert.Equal(GrainId.Create("t", ""), GrainId.Parse("t/s/"));
    }

    [Fact]
    public void EqualityIsByTypeKindAndKey()
    {
        Assert.Equal(GrainId.Create("a", 5), GrainId.Create("a", 5));
        Assert.True(GrainId.Create("a", 5) == GrainId.Create("a", 5));
        Assert.NotEqual(GrainId.Create("a", 5), GrainId.Create("b", 5));
        Assert.NotEqual(GrainId.Create("a", 5), GrainId.Create("a", "5"));
        Assert.NotEqual(GrainId.Create("a", "x"), GrainId.Create("a", "X"));
        Assert.Equal(GrainId.Create("a", "x").GetHashCode(), GrainId.Create("a", "x").GetHashCode());
        Assert.True(default(GrainId).IsDefault);
        Assert.Equal("(none)", default(GrainId).ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("noslash")]
    [InlineData("/i/1")]
    [InlineData("t/x/1")]
    [InlineData("t/i/")]
    [InlineData("t/i/01")]
    [InlineData("t/i/+1")]
    [InlineData("t/i/ 1")]
    [InlineData("t/i/99999999999999999999")]
    [InlineData("t y/i/1")]
    public void MalformedIdsAreRejected(string text)
    {
        Assert.False(GrainId.TryParse(text, out _));
        Assert.Equal(GridErrorCode.InvalidArgument, Assert.Throws<GridException>(() => GrainId.Parse(text)).Code);
    }

    [Fact]
    public void KeysOfTheWrongKindAndBadTypeNamesAreRefused()
    {
        Assert.Throws<InvalidOperationException>(() => GrainId.Create("a", 1).StringKey);
        Assert.Throws<InvalidOperationException>(() => GrainId.Create("a", "1").IntegerKey);
        Assert.Throws<GridException>(() => GrainId.Create("a/b", 1));
        Assert.Throws<GridException>(() => GrainId.Create("", 1));
        Assert.Throws<GridException>(() => GrainId.Create(new string('x', 257), 1));
    }
}
