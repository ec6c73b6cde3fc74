using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// Runs the idle collector while the host runs; on stop, deactivates every grain (draining calls in flight) within
/// the host's shutdown timeout.
/// </summary>
internal sealed class GrainRuntimeService : IHostedService
{
    private readonly ActivationDirectory _directory;
    private readonly ILogger<GrainRuntimeService> _logger;
    private CancellationTokenSource? _stop;
    private Task? _collector;

    public GrainRuntimeService(ActivationDirectory directory, ILogger<GrainRuntimeService> logger)
    {
        _directory = directory;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_directory.CollectionOptions.CollectionAge != Timeout.InfiniteTimeSpan)
        {
            _stop = new CancellationTokenSource();
            _collector = DetachedTask.Start(() => CollectAsync(_stop.Token), TaskScheduler.Default);
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _collector!.ConfigureAwait(false);
            _stop.Dispose();
            _stop = null;
        }
        await _directory.DeactivateAllAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task CollectAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_directory.CollectionOptions.CollectionQuantum, _directory.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    _directory.CollectIdleActivations();
                }
                catch (Exception ex)
                {
                    _logger.LogError(ex, "Idle grain collection failed; retrying next quantum");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }
}
