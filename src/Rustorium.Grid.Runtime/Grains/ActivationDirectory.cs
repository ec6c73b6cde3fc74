using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// The activations of this silo: at most one per <see cref="GrainId"/>, created by the first call and removed when
/// deactivated. Runs every call that reaches this silo, whether it came from a local grain reference or (later) from
/// the transport.
/// </summary>
/// <remarks>
/// This is the silo-local catalog (Orleans calls it the same). Which silo hosts a grain in a cluster is a different
/// question, answered later by the cluster-wide grain directory; this class only ever answers for this process.
/// </remarks>
public sealed class ActivationDirectory
{
    private readonly ConcurrentDictionary<GrainId, GrainActivation> _activations = new();
    private readonly CancellationTokenSource _forcedShutdown = new();
    private readonly GrainTypeRegistry _registry;
    private readonly ILogger _logger;
    private IGrainFactory? _grainFactory;
    private int _shuttingDown;

    internal ActivationDirectory(
        GrainTypeRegistry registry, IServiceProvider services, GrainCollectionOptions collectionOptions,
        GrainRuntimeOptions runtimeOptions, TimeProvider timeProvider, ILogger logger)
    {
        collectionOptions.Validate();
        runtimeOptions.Validate();
        _registry = registry;
        Services = services;
        CollectionOptions = collectionOptions;
        RuntimeOptions = runtimeOptions;
        TimeProvider = timeProvider;
        _logger = logger;
        _gate = new Lazy<IGrainActivationGate?>(() => services.GetService(typeof(IGrainActivationGate)) as IGrainActivationGate);
    }

    private readonly Lazy<IGrainActivationGate?> _gate;

    /// <summary>How many activations exist right now (in any state short of deactivated).</summary>
    public int Count => _activations.Count;

    /// <summary>True once <see cref="DeactivateAllAsync"/> has been called: new calls are refused with <see cref="GridErrorCode.Unavailable"/>.</summary>
    public bool IsShuttingDown => Volatile.Read(ref _shuttingDown) != 0;

    internal IServiceProvider Services { get; }

    internal GrainCollectionOptions CollectionOptions { get; }

    internal GrainRuntimeOptions RuntimeOptions { get; }

    internal TimeProvider TimeProvider { get; }

    internal IGrainFactory GrainFactory => _grainFactory ??= Services.GetRequiredService<IGrainFactory>();

    /// <summary>
    /// Runs <paramref name="call"/> on the grain's activation in this silo, activating it if needed, as a turn.
    /// </summary>
    /// <param name="call">The call; its target must be a grain type registered in this silo.</param>
    /// <param name="cancellationToken">Cancels the call while it waits for its turn; handed to the grain method once it runs.</param>
    /// <returns>The method's boxed result (null for methods without one).</returns>
    /// <exception cref="GridException">
    /// (in the returned task) <see cref="GridErrorCode.UnknownShard"/> if the grain type is not registered here;
    /// <see cref="GridErrorCode.InvalidArgument"/> if the interface, key kind, method id or arguments do not match the
    /// registration; <see cref="GridErrorCode.Unavailable"/> if the silo is shutting down or the grain's queue is full.
    /// </exception>
    /// <exception cref="GrainReentrancyException">(in the returned task) the target is already waiting on this call chain.</exception>
    /// <exception cref="OperationCanceledException">(in the returned task) cancelled before the call started.</exception>
    public ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<object?>(cancellationToken);
        if (IsShuttingDown) return ValueTask.FromException<object?>(ShuttingDown());
        var error = Resolve(call, out var registration, out var method);
        if (error is not null) return ValueTask.FromException<object?>(error);

        var item = new CallWorkItem(call, method!, registration!, cancellationToken);
        Dispatch(item);
        return new ValueTask<object?>(item.Completion);
    }

    /// <summary>
    /// Shuts the grains of this silo down: refuses new calls (<see cref="GridErrorCode.Unavailable"/>), lets every call
    /// already running or queued finish, then deactivates every activation with
    /// <see cref="DeactivationReason.ShuttingDown"/>. Irreversible.
    /// </summary>
    /// <param name="cancellationToken">
    /// Forces the shutdown: calls not started yet fail with <see cref="GridErrorCode.Unavailable"/>, the tokens given to
    /// <see cref="Grain.OnActivateAsync"/>/<see cref="Grain.OnDeactivateAsync"/> are cancelled, and this method stops
    /// waiting (throwing <see cref="OperationCanceledException"/>) while the remaining deactivations finish on their own.
    /// </param>
    public async Task DeactivateAllAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _shuttingDown, 1);
        try
        {
            // A call that passed the shutdown check just before it was set may still create an activation: loop until empty.
            while (!_activations.IsEmpty)
            {
                GrainActivation[] all = [.. _activations.Values];
                foreach (var activation in all) activation.RequestDeactivation(DeactivationReason.ShuttingDown);
                await Task.WhenAll(all.Select(a => a.Finished)).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Forced from here rather than from a token registration: the wait above observes the token first and a
            // registration disposed on the way out could be dropped before it ran.
            ForceShutdown();
            throw;
        }
    }

    /// <summary>Whether <paramref name="grain"/> has an activation in this silo right now (in any state short of deactivated).</summary>
    public bool IsActive(GrainId grain) => _activations.ContainsKey(grain);

    /// <summary>
    /// Deactivates <paramref name="grain"/>'s activation in this silo, if it has one, once the calls already queued on it
    /// have run; completes when it is gone. Calls arriving meanwhile wait and then go to a fresh activation (which a grain
    /// that moved elsewhere refuses in its activation hook). Used to hand a grain over to another silo.
    /// </summary>
    /// <param name="grain">The grain.</param>
    /// <param name="reason">Why (given to <see cref="Grain.OnDeactivateAsync"/>).</param>
    public Task DeactivateAsync(GrainId grain, DeactivationReason reason)
    {
        if (!_activations.TryGetValue(grain, out var activation)) return Task.CompletedTask;
        activation.RequestDeactivation(reason);
        return activation.Finished;
    }

    /// <summary>Asks every activation idle for longer than <see cref="GrainCollectionOptions.CollectionAge"/> to deactivate; returns how many.</summary>
    internal int CollectIdleActivations()
    {
        TimeSpan age = CollectionOptions.CollectionAge;
        if (age == Timeout.InfiniteTimeSpan || IsShuttingDown) return 0;
        long now = TimeProvider.GetTimestamp();
        int collected = 0;
        foreach (var activation in _activations.Values)
        {
            if (activation.TryCollectIdle(now, age)) collected++;
        }
        if (collected > 0) _logger.LogDebug("Collecting {Count} idle grain activations", collected);
        return collected;
    }

    /// <summary>Queues <paramref name="item"/> on its grain's activation, creating it if needed.</summary>
    internal void Dispatch(CallWorkItem item)
    {
        while (true)
        {
            if (IsShuttingDown)
            {
                item.Abandon(ShuttingDown());
                return;
            }
            // GetOrAdd may construct a losing GrainActivation under a race; construction has no side effects and the
            // loser is never used, so exactly one activation per grain ever runs anything.
            var activation = _activations.GetOrAdd(
                item.Call.Target,
                static (id, state) => new GrainActivation(state.Directory, state.Registration, id),
                (Directory: this, item.Registration));
            if (activation.TryEnqueue(item)) return;
            // It became Invalid after we found it; it is already out of the dictionary, so the next lookup differs.
        }
    }

    internal void Remove(GrainActivation activation) =>
        _activations.TryRemove(KeyValuePair.Create(activation.GrainId, activation));

    /// <summary>The silo's activation gate, if it has one (resolved on first use: the gate may itself depend on this directory).</summary>
    internal IGrainActivationGate? Gate => _gate.Value;

    /// <summary>Tells the gate that <paramref name="activation"/> has gone; its failures are logged, never thrown.</summary>
    internal void NotifyRemoved(GrainActivation activation)
    {
        if (Gate is not { } gate) return;
        _ = NotifyAsync(gate, activation);

        async Task NotifyAsync(IGrainActivationGate g, GrainActivation a)
        {
            try
            {
                await g.OnRemovedAsync(a.GrainId, a.Registration).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _logger.LogWarning(ex, "The activation gate failed after grain {Grain} was deactivated", a.GrainId);
            }
        }
    }

    internal CancellationTokenSource CreateActivationTimeout() => CreateTimeout(RuntimeOptions.ActivationTimeout);

    internal CancellationTokenSource CreateDeactivationTimeout() => CreateTimeout(CollectionOptions.DeactivationTimeout);

    internal void LogActivationFailure(GrainId grain, Exception ex)
    {
        // A grain refusing to activate here because it lives elsewhere (or the silo may not serve now) is routine in a
        // cluster: the caller is redirected. Only other failures are worth a warning and a stack trace.
        if (ex is GridException { Code: GridErrorCode.NotOwner or GridErrorCode.Unavailable } routine)
            _logger.LogDebug("Grain {GrainId} did not activate here: {Message}", grain, routine.Message);
        else
            _logger.LogWarning(ex, "Activation of grain {GrainId} failed; the calls waiting for it fail with the same exception", grain);
    }

    internal void LogDeactivationFailure(GrainId grain, DeactivationReason reason, Exception ex) =>
        _logger.LogWarning(ex, "OnDeactivateAsync of grain {GrainId} ({Reason}) failed; the activation is dropped anyway", grain, reason);

    internal void LogDisposeFailure(GrainId grain, Exception ex) =>
        _logger.LogWarning(ex, "Disposing grain {GrainId} failed", grain);

    internal void LogTimerFailure(GrainId grain, Exception ex) =>
        _logger.LogWarning(ex, "A timer callback of grain {GrainId} failed; the timer keeps running", grain);

    internal void LogUnexpected(GrainId grain, Exception ex) =>
        _logger.LogError(ex, "Unexpected failure in the turn machinery of grain {GrainId}", grain);

    private CancellationTokenSource CreateTimeout(TimeSpan timeout)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(_forcedShutdown.Token);
        source.CancelAfter(timeout);
        return source;
    }

    /// <summary>
    /// The registration and method a call to (<paramref name="target"/>, <paramref name="interfaceName"/>,
    /// <paramref name="methodId"/>) would run, or the error the call gets: the checks of <see cref="InvokeAsync"/> that do
    /// not need the arguments. The transport's receive side uses it to learn the parameter types before decoding them.
    /// </summary>
    internal GridException? ResolveMethod(
        GrainId target, string interfaceName, ushort methodId,
        out GrainTypeRegistration? registration, out GrainMethodDescription? method)
    {
        method = null;
        if (!_registry.TryGet(target.Type, out registration))
            return new GridException(GridErrorCode.UnknownShard, $"No grain type \"{target.Type}\" is registered in this silo (call to {target}).");
        GrainInterfaceDescription grainInterface = registration.Interface;
        if (!string.Equals(interfaceName, grainInterface.Name, StringComparison.Ordinal))
            return GridException.InvalidArgument($"Grain {target} implements interface \"{grainInterface.Name}\", not \"{interfaceName}\".");
        if (target.KeyKind != grainInterface.KeyKind)
            return GridException.InvalidArgument($"Grain type \"{grainInterface.Name}\" is keyed by {grainInterface.KeyKind}, but {target} has a {target.KeyKind} key.");
        if (!grainInterface.TryGetMethod(methodId, out method))
            return GridException.InvalidArgument($"Grain interface \"{grainInterface.Name}\" has no method with id {methodId} (are the caller and the silo built from different versions of it?).");
        return null;
    }

    private GridException? Resolve(GrainCall call, out GrainTypeRegistration? registration, out GrainMethodDescription? method)
    {
        var unresolved = ResolveMethod(call.Target, call.InterfaceName, call.MethodId, out registration, out method);
        if (unresolved is not null) return unresolved;
        GrainInterfaceDescription grainInterface = registration!.Interface;

        IReadOnlyList<Type> parameters = method!.ParameterTypes;
        if (call.Arguments.Count != parameters.Count)
            return GridException.InvalidArgument($"{grainInterface.Name}.{method.Method.Name} takes {parameters.Count} arguments; the call carries {call.Arguments.Count}.");
        for (int i = 0; i < parameters.Count; i++)
        {
            if (i == method.CancellationTokenIndex) continue;
            object? argument = call.Arguments[i];
            Type parameter = parameters[i];
            bool fits = argument is null
                ? !parameter.IsValueType || Nullable.GetUnderlyingType(parameter) is not null
                : parameter.IsInstanceOfType(argument);
            if (!fits)
                return GridException.InvalidArgument($"Argument {i} of {grainInterface.Name}.{method.Method.Name} must be {parameter.Name}; got {argument?.GetType().Name ?? "null"}.");
        }

        for (int i = 0; i < call.CallChain.Count; i++)
        {
            if (call.CallChain[i] == call.Target) return new GrainReentrancyException(call.Target, call.CallChain);
        }
        return null;
    }

    private void ForceShutdown()
    {
        _forcedShutdown.Cancel();
        var error = new GridException(GridErrorCode.Unavailable, "The silo's shutdown was forced before this grain call could run; it was not run. Retry on another silo or later.");
        foreach (var activation in _activations.Values) activation.AbandonWaitingCalls(error);
    }

    private static GridException ShuttingDown() =>
        new(GridErrorCode.Unavailable, "The silo is shutting down; the grain call was not run. Retry on another silo or later.");
}

/// <summary>Runs grain calls on the activations of this silo (<see cref="ActivationDirectory"/>).</summary>
public sealed class LocalGrainCallInvoker : IGrainCallInvoker
{
    private readonly ActivationDirectory _directory;

    /// <summary>Creates the invoker over <paramref name="directory"/>.</summary>
    public LocalGrainCallInvoker(ActivationDirectory directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        _directory = directory;
    }

    /// <inheritdoc />
    public ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken) => _directory.InvokeAsync(call, cancellationToken);
}
