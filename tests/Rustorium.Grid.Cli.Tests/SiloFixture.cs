namespace Rustorium.Grid.Cli.Tests;

/// <summary>One real silo shared by the tests of a class (started once, killed at the end).</summary>
public sealed class SiloFixture : IAsyncLifetime
{
    private TestSilo? _silo;

    internal TestSilo Silo => _silo ?? throw new InvalidOperationException("not started");

    public string Endpoint => Silo.Endpoint;

    public async Task InitializeAsync() => _silo = await TestSilo.StartAsync();

    public async Task DisposeAsync()
    {
        if (_silo is not null) await _silo.DisposeAsync();
    }
}
