using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Silo;

/// <summary>
/// Runs the grid protocol's TCP server for the lifetime of the host. Registered after the grain runtime, so on stop it
/// runs first: it stops accepting and drains requests in flight (up to <see cref="GridSiloOptions.DrainTimeout"/>)
/// before the grains are deactivated.
/// </summary>
internal sealed class GridTransportService : IHostedService, IAsyncDisposable
{
    private readonly GridSiloOptions _options;
    private readonly LocalSiloDetails _silo;
    private readonly IGridRequestHandler _handler;
    private readonly ILogger<GridTransportService> _logger;
    private GridServer? _server;

    public GridTransportService(GridSiloOptions options, LocalSiloDetails silo, IServiceProvider services, ILogger<GridTransportService> logger)
    {
        _options = options;
        _silo = silo;
        _logger = logger;
        _handler = SiloRequestHandler.Create(services);
    }

    /// <summary>The address the server listens on (with the chosen port when configured with 0); null before start.</summary>
    public IPEndPoint? LocalEndPoint => _server?.LocalEndPoint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _server = GridServer.Start(new IPEndPoint(_options.BindAddress, _options.Port), _handler, new GridServerOptions
        {
            Name = _silo.Name,
            Logger = _logger,
            HandlerFault = (context, error) => _logger.LogError(error, "A grid request from {Peer} failed unexpectedly", context.Peer),
        });
        _silo.Endpoint = _options.ResolveEndpoint(_server.LocalEndPoint.Port);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is null) return;
        // Never throws: on timeout or when the host runs out of patience the rest is cancelled (callers get Unavailable).
        await _server.StopAsync(_options.DrainTimeout, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>What answers the grid protocol's requests in this silo.</summary>
internal static class SiloRequestHandler
{
    /// <summary>
    /// Remote grain calls: decoded and run through the silo's grain call invoker — the <see cref="ActivationDirectory"/>, the
    /// path local calls take (validation, turns, activation), or in a cluster the router in front of it, which forwards calls
    /// of grains that live on another silo — with the wire's standard codec.
    /// </summary>
    public static IGridRequestHandler Create(IServiceProvider services) =>
        new GrainCallRequestHandler(
            services.GetRequiredService<ActivationDirectory>(),
            logger: services.GetRequiredService<ILogger<GrainCallRequestHandler>>(),
            invoker: services.GetRequiredService<IGrainCallInvoker>());
}
