namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// A timer registered by a grain. Its loop waits, enqueues a tick on the activation, waits for the tick to finish, and
/// only then waits for the next period: ticks never overlap and a slow callback delays the next tick instead of piling up.
/// </summary>
internal sealed class GrainTimer : IDisposable
{
    private readonly GrainActivation _activation;
    private readonly TimeSpan _dueTime;
    private readonly TimeSpan _period;
    private readonly CancellationTokenSource _stop = new();

    public GrainTimer(GrainActivation activation, Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period)
    {
        _activation = activation;
        Callback = callback;
        _dueTime = dueTime;
        _period = period;
        Token = _stop.Token;
    }

    public Func<CancellationToken, Task> Callback { get; }

    /// <summary>Cancelled when the timer stops.</summary>
    public CancellationToken Token { get; }

    public bool IsStopped => Token.IsCancellationRequested;

    public void Start() => DetachedTask.Start(RunAsync, TaskScheduler.Default);

    /// <summary>Stops the timer: no new tick is enqueued, a queued tick is dropped, a running one finishes.</summary>
    public void Stop() => _stop.Cancel();

    /// <inheritdoc />
    public void Dispose() => Stop();

    private async Task RunAsync()
    {
        TimeProvider time = _activation.Directory.TimeProvider;
        try
        {
            if (_dueTime == Timeout.InfiniteTimeSpan) return;
            if (_dueTime > TimeSpan.Zero) await Task.Delay(_dueTime, time, Token).ConfigureAwait(false);
            while (!IsStopped)
            {
                var tick = new TimerTickWorkItem(this);
                if (!_activation.TryEnqueueTick(tick)) break;
                await tick.Done.ConfigureAwait(false);
                if (_period == Timeout.InfiniteTimeSpan) break;
                await Task.Delay(_period, time, Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
        finally
        {
            _activation.RemoveTimer(this);
        }
    }
}

/// <summary>Starts runtime work that must not inherit the starter's execution context (its AsyncLocals, its grain call context).</summary>
internal static class DetachedTask
{
    public static Task Start(Func<Task> work, TaskScheduler scheduler)
    {
        if (ExecutionContext.IsFlowSuppressed()) return StartCore(work, scheduler);
        using (ExecutionContext.SuppressFlow())
        {
            return StartCore(work, scheduler);
        }
    }

    private static Task StartCore(Func<Task> work, TaskScheduler scheduler) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler).Unwrap();
}
