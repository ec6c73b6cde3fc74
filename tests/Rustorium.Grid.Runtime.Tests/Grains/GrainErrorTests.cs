namespace Rustorium.Grid.Runtime.Tests.Grains;

public sealed class GrainErrorTests
{
    [Fact]
    public async Task ExceptionsReachTheCallerUnchanged()
    {
        await using var silo = await TestSilo.StartAsync();
        var grain = silo.Factory.GetGrain<IFailingGrain>("errors");

        var invalid = await Assert.ThrowsAsync<InvalidOperationException>(() => grain.ThrowInvalidOperation("exact message").Within());
        Assert.Equal("exact message", invalid.Message);

        var grid = await Assert.ThrowsAsync<GridException>(() => grain.ThrowGrid(GridErrorCode.Conflict).Within());
        Assert.Equal(GridErrorCode.Conflict, grid.Code);
        Assert.Equal("grain says Conflict", grid.Message);

        var custom = await Assert.ThrowsAsync<CustomGrainException>(() => grain.ThrowCustom(17).Within());
        Assert.Equal(17, custom.Detail);

        var argument = await Assert.ThrowsAsync<ArgumentException>(() => grain.ThrowSynchronously().Within());
        Assert.Equal("value", argument.ParamName);

        await Assert.ThrowsAsync<NotSupportedException>(() => grain.ThrowFromValueTask().Within());

        // A failed call leaves the activation serving.
        Assert.Equal(5, await grain.Echo(5).Within());
        Assert.Equal(1, silo.Directory.Count);
    }
}
