using System.Reflection;
using Microsoft.Extensions.DependencyInjection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// One activation of one grain in this silo: the grain instance, its queue of work and its turn scheduling.
/// </summary>
/// <remarks>
/// <para>
/// Life cycle: Created (in the directory, nothing run yet) → Activating (constructor and <see cref="Grain.OnActivateAsync"/>,
/// started by the first queued item) → Active → Deactivating (timers stopped; already-queued work drains; new calls are
/// held) → Invalid (removed from the directory; held calls are dispatched again and get a fresh activation). A failed
/// activation goes straight to Invalid and fails what was queued.
/// </para>
/// <para>
/// Scheduling: items are admitted strictly in arrival order. A read-only item starts when no exclusive or interleaving
/// item is running; an exclusive item starts when nothing is running. Because admission stops at the first item that
/// cannot start, a writer waiting behind readers holds back the readers that came after it (no writer starvation). A
/// turn lasts until the grain method's task completes, awaits included. All grain code runs on the activation's own
/// exclusive <see cref="TaskScheduler"/>, so even interleaved turns never run grain code on two threads at once.
/// </para>
/// <para>
/// <see cref="AlwaysInterleaveAttribute"/> calls never enter the queue: once the activation is usable they start the
/// moment they arrive, whatever is running, so the FIFO order of everything else is untouched. Until then (Created,
/// Activating) they wait in <c>_earlyInterleaving</c> and start together with the first queued items when the
/// activation completes. A running interleaving call holds back read-only and exclusive items like a writer does, and
/// deactivation waits for it.
/// </para>
/// <para>
/// Invariants: every state change happens under <c>_lock</c>; the activation leaves the directory before it becomes
/// Invalid, so a caller that finds it Invalid always finds a different one on retry. Nothing that can run foreign code
/// synchronously (grain code, timer cancellation) runs under the lock; completions use asynchronous continuations.
/// </para>
/// </remarks>
internal sealed class GrainActivation
{
    private enum State : byte
    {
        Created,
        Activating,
        Active,
        Deactivating,
        Invalid,
    }

    private readonly object _lock = new();
    private readonly Queue<WorkItem> _queue = new();
    private readonly List<GrainTimer> _timers = [];
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskScheduler _scheduler = new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler;

    private State _state;
    private int _runningReadOnly;
    private int _runningInterleaving;
    private List<CallWorkItem>? _earlyInterleaving;
    private bool _exclusiveRunning;
    private bool _deactivationStarted;
    private DeactivationReason? _requestedDeactivation;
    private DeactivationReason _deactivationReason;
    private List<CallWorkItem>? _held;
    private int _callsInside;
    private long _lastCallTimestamp;
    private GrainId[] _activationChain = [];
    private Grain? _instance;
    private AsyncServiceScope? _scope;

    public GrainActivation(ActivationDirectory directory, GrainTypeRegistration registration, GrainId grainId)
    {
        Directory = directory;
        Registration = registration;
        GrainId = grainId;
        _lastCallTimestamp = directory.TimeProvider.GetTimestamp();
    }

    public GrainId GrainId { get; }

    public ActivationDirectory Directory { get; }

    public GrainTypeRegistration Registration { get; }

    /// <summary>The grain instance; set before the first turn runs.</summary>
    public Grain Instance => _instance!;

    /// <summary>Completes when the activation is Invalid (deactivated, or its activation failed).</summary>
    public Task Finished => _finished.Task;

    /// <summary>
    /// Queues a call. False only if the activation is Invalid (gone from the directory: look it up again). While
    /// deactivating, the call is held and dispatched again once the deactivation completes.
    /// </summary>
    public bool TryEnqueue(CallWorkItem item)
    {
        var pending = default(PendingTurns);
        lock (_lock)
        {
            if (item.IsFinished) return true; // cancelled on its way here
            switch (_state)
            {
                case State.Invalid:
                    return false;
                case State.Deactivating:
                    item.SetOwner(this);
                    (_held ??= []).Add(item);
                    return true;
            }
            if (item.Kind == TurnKind.Interleaving && _state == State.Active)
            {
                // Admitted at once, whatever runs; it never waits in (or reorders) the queue.
                item.SetOwner(this);
                if (!item.TryStart()) return true; // cancelled meanwhile
                _callsInside++;
                _runningInterleaving++;
                _lastCallTimestamp = Directory.TimeProvider.GetTimestamp();
                pending.Turns = [item];
            }
            else
            {
                int waiting = _queue.Count + (_earlyInterleaving?.Count ?? 0);
                if (waiting >= Directory.RuntimeOptions.MaxQueuedCallsPerActivation)
                {
                    item.Abandon(new GridException(GridErrorCode.Unavailable,
                        $"Grain {GrainId} already has {waiting} calls waiting (GrainRuntimeOptions.MaxQueuedCallsPerActivation); the call was refused without running. Retry later."));
                    return true;
                }
                item.SetOwner(this);
                if (item.Kind == TurnKind.Interleaving) (_earlyInterleaving ??= []).Add(item); // waits for the activation only
                else _queue.Enqueue(item);
                _callsInside++;
                _lastCallTimestamp = Directory.TimeProvider.GetTimestamp();
                PumpLocked(ref pending);
            }
        }
        Run(ref pending);
        return true;
    }

    /// <summary>Queues a timer tick; false once the activation is deactivating (the timer then stops).</summary>
    public bool TryEnqueueTick(TimerTickWorkItem tick)
    {
        var pending = default(PendingTurns);
        lock (_lock)
        {
            if (_state is not (State.Activating or State.Active)) return false;
            _queue.Enqueue(tick);
            PumpLocked(ref pending);
        }
        Run(ref pending);
        return true;
    }

    /// <summary>A queued call was cancelled: it may have been the head blocking others.</summary>
    public void OnQueuedItemCancelled()
    {
        var pending = default(PendingTurns);
        lock (_lock)
        {
            PumpLocked(ref pending);
        }
        Run(ref pending);
    }

    /// <summary>Starts deactivation (after the queued work drains). No-op if already deactivating or gone.</summary>
    public void RequestDeactivation(DeactivationReason reason)
    {
        var pending = default(PendingTurns);
        bool finished = false;
        lock (_lock)
        {
            switch (_state)
            {
                case State.Created:
                    // Nothing ever ran here and nothing is queued (the first enqueue leaves Created at once).
                    Directory.Remove(this);
                    _state = State.Invalid;
                    finished = true;
                    break;
                case State.Activating:
                    _requestedDeactivation ??= reason;
                    break;
                case State.Active:
                    EnterDeactivatingLocked(reason, ref pending);
                    PumpLocked(ref pending);
                    break;
            }
        }
        if (finished) _finished.TrySetResult();
        Run(ref pending);
    }

    /// <summary>Deactivates the activation if no call arrived for <paramref name="age"/> and none is queued or running.</summary>
    public bool TryCollectIdle(long now, TimeSpan age)
    {
        var pending = default(PendingTurns);
        lock (_lock)
        {
            if (_state != State.Active || _callsInside > 0) return false;
            if (Directory.TimeProvider.GetElapsedTime(_lastCallTimestamp, now) < age) return false;
            EnterDeactivatingLocked(DeactivationReason.IdleCollection, ref pending);
            PumpLocked(ref pending);
        }
        Run(ref pending);
        return true;
    }

    /// <summary>Forced shutdown: fails every call that has not started yet with <paramref name="error"/>.</summary>
    public void AbandonWaitingCalls(Exception error)
    {
        var pending = default(PendingTurns);
        lock (_lock)
        {
            // Only once the activation is usable: while Activating the queued calls wait for it and OnActivateAsync
            // sees the forced-shutdown token; they are failed if the activation fails, or drained after it.
            if (_state is State.Active or State.Deactivating)
            {
                while (_queue.TryDequeue(out WorkItem? item))
                {
                    if (item.IsCall) _callsInside--;
                    item.Abandon(item.IsCall ? error : null);
                }
                PumpLocked(ref pending);
            }
            if (_held is { } held)
            {
                _held = null;
                foreach (var item in held) item.Abandon(error);
            }
        }
        Run(ref pending);
    }

    public IDisposable RegisterTimer(Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        TimeSpan max = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        if ((dueTime < TimeSpan.Zero || dueTime > max) && dueTime != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(dueTime), dueTime, "The due time must be zero or more (at most ~49 days), or Timeout.InfiniteTimeSpan.");
        if ((period <= TimeSpan.Zero || period > max) && period != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(period), period, "The period must be more than zero (at most ~49 days), or Timeout.InfiniteTimeSpan for a single tick.");

        var timer = new GrainTimer(this, callback, dueTime, period);
        lock (_lock)
        {
            if (_state is State.Deactivating or State.Invalid)
                throw new InvalidOperationException($"Grain {GrainId} is deactivating; timers cannot be registered any more.");
            _timers.Add(timer);
        }
        timer.Start();
        return timer;
    }

    public void RemoveTimer(GrainTimer timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    /// <summary>
    /// Starts every item that may start now, in order, or the activation/deactivation turn. Must hold <c>_lock</c>; the
    /// turns are started by <see cref="Run"/> after the lock is released.
    /// </summary>
    private void PumpLocked(ref PendingTurns pending)
    {
        switch (_state)
        {
            case State.Created:
                // Only a call moves a Created activation on (ticks need Activating or Active), so it is the one just added.
                CallWorkItem? first = _queue.TryPeek(out WorkItem? queued) ? queued as CallWorkItem : _earlyInterleaving?[0];
                if (first is not null)
                {
                    _state = State.Activating;
                    // OnActivateAsync runs on behalf of the first caller: calling back into that chain would deadlock too.
                    _activationChain = GrainCallContext.Extend(first.Call.CallChain, GrainId);
                    pending.Activate = true;
                }
                return;
            case State.Activating:
            case State.Invalid:
                return;
        }

        if (_earlyInterleaving is { } early)
        {
            // Interleaving calls that arrived before the activation was usable: they waited for it, and for nothing else.
            _earlyInterleaving = null;
            foreach (var item in early)
            {
                if (!item.TryStart())
                {
                    _callsInside--; // cancelled while the activation ran
                    continue;
                }
                _runningInterleaving++;
                (pending.Turns ??= []).Add(item);
            }
        }

        while (_queue.TryPeek(out WorkItem? head))
        {
            if (head.IsFinished || head.IsObsolete)
            {
                _queue.Dequeue();
                if (head.IsCall) _callsInside--;
                head.Abandon(null);
                continue;
            }
            bool readOnly = head.Kind == TurnKind.ReadOnly;
            bool blocked = readOnly
                ? _exclusiveRunning || _runningInterleaving > 0
                : _exclusiveRunning || _runningReadOnly > 0 || _runningInterleaving > 0;
            if (blocked) break;
            _queue.Dequeue();
            if (!head.TryStart())
            {
                if (head.IsCall) _callsInside--;
                continue;
            }
            if (readOnly) _runningReadOnly++;
            else _exclusiveRunning = true;
            (pending.Turns ??= []).Add(head);
            if (!readOnly) break;
        }

        if (_state == State.Deactivating && !_deactivationStarted && _queue.Count == 0
            && _runningReadOnly == 0 && _runningInterleaving == 0 && !_exclusiveRunning)
        {
            _deactivationStarted = true;
            _exclusiveRunning = true;
            pending.Deactivate = true;
        }
    }

    private void EnterDeactivatingLocked(DeactivationReason reason, ref PendingTurns pending)
    {
        _state = State.Deactivating;
        _deactivationReason = reason;
        if (_timers.Count > 0)
        {
            pending.StopTimers = [.. _timers];
            _timers.Clear();
        }
    }

    private void Run(ref PendingTurns pending)
    {
        if (pending.StopTimers is { } timers)
        {
            foreach (var timer in timers) timer.Stop();
        }
        if (pending.Activate) DetachedTask.Start(ActivateAsync, _scheduler);
        if (pending.Turns is { } turns)
        {
            foreach (var item in turns) DetachedTask.Start(() => RunTurnAsync(item), _scheduler);
        }
        if (pending.Deactivate) DetachedTask.Start(DeactivateAsync, _scheduler);
        pending = default;
    }

    private async Task RunTurnAsync(WorkItem item)
    {
        try
        {
            await item.ExecuteAsync(this).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Directory.LogUnexpected(GrainId, ex); // ExecuteAsync catches everything; this is a runtime bug.
        }
        finally
        {
            OnTurnCompleted(item);
        }
    }

    private void OnTurnCompleted(WorkItem item)
    {
        var pending = default(PendingTurns);
        lock (_lock)
        {
            switch (item.Kind)
            {
                case TurnKind.ReadOnly:
                    _runningReadOnly--;
                    break;
                case TurnKind.Interleaving:
                    _runningInterleaving--;
                    break;
                default:
                    _exclusiveRunning = false;
                    break;
            }
            if (item.IsCall)
            {
                _callsInside--;
                _lastCallTimestamp = Directory.TimeProvider.GetTimestamp();
            }
            PumpLocked(ref pending);
        }
        Run(ref pending);
    }

    private async Task ActivateAsync()
    {
        GrainCallContext.Current = new GrainCallContext(this, _activationChain);
        try
        {
            if (Directory.Gate is { } gate)
            {
                using var gateTimeout = Directory.CreateActivationTimeout();
                await gate.OnActivatingAsync(GrainId, Registration, gateTimeout.Token); // stays on the activation's scheduler
            }
            var scope = Directory.Services.CreateAsyncScope();
            _scope = scope;
            _instance = Grain.Construct(this, () => (Grain)ActivatorUtilities.CreateInstance(scope.ServiceProvider, Registration.GrainClass));
            using var timeout = Directory.CreateActivationTimeout();
            await _instance.OnActivateAsync(timeout.Token);
        }
        catch (Exception ex)
        {
            await FailActivationAsync(ex is TargetInvocationException { InnerException: { } inner } ? inner : ex).ConfigureAwait(false);
            return;
        }

        var pending = default(PendingTurns);
        lock (_lock)
        {
            if (_requestedDeactivation is { } reason) EnterDeactivatingLocked(reason, ref pending);
            else _state = State.Active;
            PumpLocked(ref pending);
        }
        Run(ref pending);
    }

    private async Task FailActivationAsync(Exception error)
    {
        Directory.LogActivationFailure(GrainId, error);
        GrainTimer[] timers;
        lock (_lock)
        {
            timers = [.. _timers];
            _timers.Clear();
        }
        foreach (var timer in timers) timer.Stop();
        await DisposeInstanceAsync().ConfigureAwait(false);

        WorkItem[] waiting;
        lock (_lock)
        {
            Directory.Remove(this);
            _state = State.Invalid;
            waiting = [.. _queue, .. _earlyInterleaving ?? []];
            _queue.Clear();
            _earlyInterleaving = null;
            _callsInside = 0;
        }
        // Every call that was waiting for this activation fails with the activation's exception; the next call starts
        // a fresh activation (nothing broken stays behind in the directory).
        foreach (var item in waiting) item.Abandon(item.IsCall ? error : null);
        _finished.TrySetResult();
        Directory.NotifyRemoved(this);
    }

    private async Task DeactivateAsync()
    {
        GrainCallContext.Current = new GrainCallContext(this, [GrainId]);
        try
        {
            using var timeout = Directory.CreateDeactivationTimeout();
            await Instance.OnDeactivateAsync(_deactivationReason, timeout.Token);
        }
        catch (Exception ex)
        {
            Directory.LogDeactivationFailure(GrainId, _deactivationReason, ex);
        }
        await DisposeInstanceAsync().ConfigureAwait(false);

        List<CallWorkItem>? held;
        lock (_lock)
        {
            Directory.Remove(this);
            _state = State.Invalid;
            _exclusiveRunning = false;
            held = _held;
            _held = null;
            // Calls are held, not queued, once deactivating, and ticks are refused: the queue is empty here.
        }
        _finished.TrySetResult();
        Directory.NotifyRemoved(this);
        if (held is not null)
        {
            foreach (var item in held) Directory.Dispatch(item);
        }
    }

    private async Task DisposeInstanceAsync()
    {
        try
        {
            switch (_instance)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
            if (_scope is { } scope) await scope.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Directory.LogDisposeFailure(GrainId, ex);
        }
    }

    /// <summary>Turns decided under the lock, started after it is released.</summary>
    private struct PendingTurns
    {
        public List<WorkItem>? Turns;
        public List<GrainTimer>? StopTimers;
        public bool Activate;
        public bool Deactivate;
    }
}
