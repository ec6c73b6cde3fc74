using System.Reflection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>How a turn shares its activation with other turns.</summary>
internal enum TurnKind : byte
{
    /// <summary>Runs alone: starts when nothing else runs, and nothing else starts until it finishes.</summary>
    Exclusive,

    /// <summary>Runs alongside other read-only turns, never alongside an exclusive or interleaving one.</summary>
    ReadOnly,

    /// <summary>
    /// <see cref="AlwaysInterleaveAttribute"/>: admitted at once, whatever runs, without waiting in the queue. While it runs,
    /// read-only and exclusive turns wait for it like for a writer.
    /// </summary>
    Interleaving,
}

/// <summary>
/// Something that runs as a turn of an activation: a call or a timer tick. Starts at most once; an item that leaves the
/// queue without running (cancelled, dropped, failed) is finished through <see cref="Abandon"/>.
/// </summary>
internal abstract class WorkItem
{
    private const int Queued = 0;
    private const int Running = 1;
    private const int Finished = 2;

    private int _state;

    /// <summary>How the item shares the activation with other turns.</summary>
    public abstract TurnKind Kind { get; }

    /// <summary>True for calls (they count as activity for idle collection; ticks do not).</summary>
    public abstract bool IsCall { get; }

    /// <summary>True if the item finished without running (for example cancelled while queued).</summary>
    public bool IsFinished => Volatile.Read(ref _state) == Finished;

    /// <summary>True if the item no longer needs to run (a tick of a stopped timer).</summary>
    public virtual bool IsObsolete => false;

    /// <summary>Claims the item for running; false if it already finished (cancelled).</summary>
    public bool TryStart() => Interlocked.CompareExchange(ref _state, Running, Queued) == Queued;

    /// <summary>Runs the item as a turn of <paramref name="activation"/>; never throws. Only after <see cref="TryStart"/>.</summary>
    public abstract Task ExecuteAsync(GrainActivation activation);

    /// <summary>Finishes an item that will never run: with <paramref name="error"/>, or dropped if null. No-op if already finished or running.</summary>
    public abstract void Abandon(Exception? error);

    /// <summary>Moves a queued item to finished; false if it had started or finished already.</summary>
    protected bool TryFinishUnstarted() => Interlocked.CompareExchange(ref _state, Finished, Queued) == Queued;
}

/// <summary>A grain call waiting for, or running as, a turn.</summary>
internal sealed class CallWorkItem : WorkItem
{
    private readonly TaskCompletionSource<object?> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationToken _cancellationToken;
    private readonly CancellationTokenRegistration _cancellation;
    private GrainActivation? _owner;

    public CallWorkItem(GrainCall call, GrainMethodDescription method, GrainTypeRegistration registration, CancellationToken cancellationToken)
    {
        Call = call;
        Method = method;
        Registration = registration;
        Kind = method.IsAlwaysInterleave ? TurnKind.Interleaving : method.IsReadOnly ? TurnKind.ReadOnly : TurnKind.Exclusive;
        _cancellationToken = cancellationToken;
        if (cancellationToken.CanBeCanceled)
            _cancellation = cancellationToken.UnsafeRegister(static state => ((CallWorkItem)state!).OnCancelled(), this);
    }

    public GrainCall Call { get; }

    public GrainMethodDescription Method { get; }

    public GrainTypeRegistration Registration { get; }

    public Task<object?> Completion => _completion.Task;

    public override TurnKind Kind { get; }

    public override bool IsCall => true;

    /// <summary>Records which activation holds the item, so a cancellation can wake it up.</summary>
    public void SetOwner(GrainActivation activation) => Volatile.Write(ref _owner, activation);

    public override async Task ExecuteAsync(GrainActivation activation)
    {
        _cancellation.Unregister();
        GrainCallContext.Current = new GrainCallContext(activation, GrainCallContext.Extend(Call.CallChain, activation.GrainId));
        try
        {
            var arguments = new object?[Call.Arguments.Count];
            for (int i = 0; i < arguments.Length; i++) arguments[i] = Call.Arguments[i];
            if (Method.CancellationTokenIndex >= 0) arguments[Method.CancellationTokenIndex] = _cancellationToken;

            // The interface method dispatches virtually to the grain's implementation (explicit implementations too).
            object? returned = Method.Method.Invoke(activation.Instance, BindingFlags.DoNotWrapExceptions, binder: null, arguments, culture: null)
                ?? throw new InvalidOperationException($"Grain method {activation.Registration.GrainClass.Name}.{Method.Method.Name} returned null instead of a task.");
            object? result = await Method.AwaitGrainResult(returned).ConfigureAwait(false);
            _completion.TrySetResult(result);
        }
        catch (Exception ex)
        {
            // The caller gets the very exception the grain threw: same type, same code, same data.
            _completion.TrySetException(ex);
        }
    }

    public override void Abandon(Exception? error)
    {
        if (!TryFinishUnstarted()) return;
        _cancellation.Unregister();
        if (error is null) _completion.TrySetCanceled(_cancellationToken);
        else _completion.TrySetException(error);
    }

    private void OnCancelled()
    {
        // Only a call still waiting is cancelled here; a running call sees the token and decides for itself.
        if (!TryFinishUnstarted()) return;
        _completion.TrySetCanceled(_cancellationToken);
        Volatile.Read(ref _owner)?.OnQueuedItemCancelled();
    }
}

/// <summary>One tick of a grain timer, run as an exclusive turn.</summary>
internal sealed class TimerTickWorkItem : WorkItem
{
    private readonly GrainTimer _timer;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TimerTickWorkItem(GrainTimer timer)
    {
        _timer = timer;
    }

    /// <summary>Completes when the tick ran or was dropped; never faults.</summary>
    public Task Done => _done.Task;

    public override TurnKind Kind => TurnKind.Exclusive;

    public override bool IsCall => false;

    public override bool IsObsolete => _timer.IsStopped;

    public override async Task ExecuteAsync(GrainActivation activation)
    {
        try
        {
            if (_timer.IsStopped) return;
            GrainCallContext.Current = new GrainCallContext(activation, [activation.GrainId]);
            await _timer.Callback(_timer.Token);
        }
        catch (OperationCanceledException) when (_timer.IsStopped)
        {
            // The timer was stopped while its callback ran and the callback honoured the token.
        }
        catch (Exception ex)
        {
            activation.Directory.LogTimerFailure(activation.GrainId, ex);
        }
        finally
        {
            _done.TrySetResult();
        }
    }

    public override void Abandon(Exception? error)
    {
        TryFinishUnstarted();
        _done.TrySetResult();
    }
}
