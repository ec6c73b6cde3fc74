using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

[GrainType("test-lifecycle")]
public interface ILifecycleGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task<Guid> GetActivationId();

    [GrainMethod(2)] Task Deactivate();

    [GrainMethod(3)] ValueTask<string> GetIdSeenByConstructor();
}

public sealed class ActivationFailedException(string message) : Exception(message);

public sealed class LifecycleGrain : Grain, ILifecycleGrain
{
    private readonly Guid _activationId = Guid.NewGuid();
    private readonly GrainJournal _journal;
    private readonly string _idSeenByConstructor;

    public LifecycleGrain(GrainJournal journal)
    {
        _journal = journal;
        _idSeenByConstructor = GrainId.ToString();
        journal.Add($"ctor {GrainId.IntegerKey}");
    }

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        long key = GrainId.IntegerKey;
        _journal.Add($"activate {key}");
        await _journal.PassGate($"activate {key}");
        if (_journal.Flag($"fail-activation {key}")) throw new ActivationFailedException($"activation of {key} refused");
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        long key = GrainId.IntegerKey;
        _journal.Add($"deactivate {key} {reason}");
        _journal.Raise($"deactivating {key}");
        await _journal.PassGate($"deactivate {key}");
        _journal.Raise($"deactivated {key}");
    }

    public Task<Guid> GetActivationId()
    {
        _journal.Add($"call {GrainId.IntegerKey}");
        return Task.FromResult(_activationId);
    }

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public ValueTask<string> GetIdSeenByConstructor() => new(_idSeenByConstructor);
}

public interface INamedGrain : IGrainWithStringKey
{
    [GrainMethod(1)] Task<Guid> GetActivationId();

    [GrainMethod(2)] Task<string> GetKey();
}

public sealed class NamedGrain : Grain, INamedGrain
{
    private readonly Guid _activationId = Guid.NewGuid();

    public Task<Guid> GetActivationId() => Task.FromResult(_activationId);

    public Task<string> GetKey() => Task.FromResult(GrainId.StringKey);
}

public interface ITurnGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Write();

    [GrainMethod(2)] Task<int> GetMaxConcurrentWriters();

    [GrainMethod(3)] Task<int> GetWriteCount();

    [GrainMethod(4), ReadOnly] Task WaitForPartner();

    [GrainMethod(5), ReadOnly] Task ReleasePartner();

    [GrainMethod(6), ReadOnly] Task Read(string name);

    [GrainMethod(7)] Task WriteLogged(string name, CancellationToken cancellationToken);

    [GrainMethod(8)] Task CallSelf();

    [GrainMethod(9)] Task CallOther(long other);

    [GrainMethod(10)] Task CallBack(long caller);

    [GrainMethod(11)] Task WaitForCancellation(CancellationToken cancellationToken);

    [GrainMethod(12), ReadOnly] Task<bool> OnActivationScheduler();
}

public sealed class TurnGrain(GrainJournal journal) : Grain, ITurnGrain
{
    private readonly TaskCompletionSource _waiterStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _writers;
    private int _maxWriters;
    private int _writes;

    public async Task Write()
    {
        _writers++;
        _maxWriters = Math.Max(_maxWriters, _writers);
        // Give any wrongly admitted concurrent turn every chance to run in between.
        await Task.Yield();
        await Task.Delay(1);
        await Task.Yield();
        _writers--;
        _writes++;
    }

    public Task<int> GetMaxConcurrentWriters() => Task.FromResult(_maxWriters);

    public Task<int> GetWriteCount() => Task.FromResult(_writes);

    public async Task WaitForPartner()
    {
        // Completes only if ReleasePartner runs while this call is still running.
        _waiterStarted.TrySetResult();
        await _released.Task;
    }

    public async Task ReleasePartner()
    {
        await _waiterStarted.Task;
        _released.TrySetResult();
    }

    public async Task Read(string name)
    {
        journal.Add($"{name} start");
        journal.Raise($"{name} started");
        await journal.PassGate(name);
        journal.Add($"{name} end");
    }

    public async Task WriteLogged(string name, CancellationToken cancellationToken)
    {
        journal.Add($"{name} start");
        journal.Raise($"{name} started");
        await journal.PassGate(name);
        journal.Add($"{name} end");
    }

    public Task CallSelf() => GrainFactory.GetGrain<ITurnGrain>(GrainId.IntegerKey).Write();

    public Task CallOther(long other) => GrainFactory.GetGrain<ITurnGrain>(other).CallBack(GrainId.IntegerKey);

    public Task CallBack(long caller) => GrainFactory.GetGrain<ITurnGrain>(caller).Write();

    public async Task WaitForCancellation(CancellationToken cancellationToken)
    {
        journal.Raise($"waiting {GrainId.IntegerKey}");
        await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
    }

    public async Task<bool> OnActivationScheduler()
    {
        bool before = TaskScheduler.Current != TaskScheduler.Default;
        await Task.Delay(1);
        return before && TaskScheduler.Current != TaskScheduler.Default;
    }
}

public sealed class CustomGrainException(string message, int detail) : Exception(message)
{
    public int Detail { get; } = detail;
}

public interface IFailingGrain : IGrainWithStringKey
{
    [GrainMethod(1)] Task ThrowInvalidOperation(string message);

    [GrainMethod(2)] Task<int> ThrowGrid(GridErrorCode code);

    [GrainMethod(3)] ValueTask<int> ThrowCustom(int detail);

    [GrainMethod(4)] Task ThrowSynchronously();

    [GrainMethod(5)] ValueTask ThrowFromValueTask();

    [GrainMethod(6)] Task<int> Echo(int value);
}

public sealed class FailingGrain : Grain, IFailingGrain
{
    public async Task ThrowInvalidOperation(string message)
    {
        await Task.Yield();
        throw new InvalidOperationException(message);
    }

    public async Task<int> ThrowGrid(GridErrorCode code)
    {
        await Task.Yield();
        throw new GridException(code, $"grain says {code}");
    }

    public async ValueTask<int> ThrowCustom(int detail)
    {
        await Task.Yield();
        throw new CustomGrainException("custom failure", detail);
    }

    // Not async: throws before any task exists.
    public Task ThrowSynchronously() => throw new ArgumentException("thrown before returning a task", "value");

    public async ValueTask ThrowFromValueTask()
    {
        await Task.Yield();
        throw new NotSupportedException("value task failure");
    }

    public Task<int> Echo(int value) => Task.FromResult(value);
}

public sealed record TimerStats(int Overlaps, bool AllTicksOnActivationScheduler);

public interface ITimerGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Start(TimeSpan period);

    [GrainMethod(2)] Task BusyWrite(TimeSpan duration);

    [GrainMethod(3)] Task<TimerStats> GetStats();

    [GrainMethod(4)] Task Deactivate();
}

public sealed class TimerGrain(GrainJournal journal) : Grain, ITimerGrain
{
    private bool _writing;
    private int _overlaps;
    private bool _allOnScheduler = true;

    public Task Start(TimeSpan period)
    {
        RegisterTimer(OnTick, period, period);
        return Task.CompletedTask;
    }

    public async Task BusyWrite(TimeSpan duration)
    {
        _writing = true;
        await Task.Delay(duration);
        _writing = false;
    }

    public Task<TimerStats> GetStats() => Task.FromResult(new TimerStats(_overlaps, _allOnScheduler));

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        journal.Add($"timer-grain deactivate {GrainId.IntegerKey} {reason}");
        journal.Raise($"timer-grain deactivated {GrainId.IntegerKey}");
        return Task.CompletedTask;
    }

    private async Task OnTick(CancellationToken cancellationToken)
    {
        if (_writing) _overlaps++;
        _allOnScheduler &= TaskScheduler.Current != TaskScheduler.Default;
        await Task.Yield();
        if (_writing) _overlaps++;
        journal.Add($"tick {GrainId.IntegerKey}");
    }
}
