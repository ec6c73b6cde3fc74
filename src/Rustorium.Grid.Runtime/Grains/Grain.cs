namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// Base class of grain implementations. The runtime creates an instance (with dependency injection) when the grain's
/// first call arrives, calls <see cref="OnActivateAsync"/>, runs calls one turn at a time, and calls
/// <see cref="OnDeactivateAsync"/> before dropping the instance.
/// </summary>
/// <remarks>
/// <para>
/// Grain code runs on its activation's own scheduler: at most one piece of it runs at a time, and <c>await</c>
/// resumes there, so fields need no locks. <c>ConfigureAwait(false)</c> and <c>Task.Run</c> leave that scheduler; do
/// not touch grain state from code that ran away from it.
/// </para>
/// <para>
/// The instance is discarded after deactivation and a later call gets a fresh one: keep nothing in fields that must
/// outlive the activation; persist it (and load it in <see cref="OnActivateAsync"/>).
/// </para>
/// </remarks>
public abstract class Grain
{
    [ThreadStatic]
    private static GrainActivation? t_constructing;

    private readonly GrainActivation? _activation;

    /// <summary>Binds the instance to the activation the runtime is constructing, so <see cref="GrainId"/> already works in derived constructors.</summary>
    protected Grain()
    {
        _activation = t_constructing;
    }

    /// <summary>This grain's identity.</summary>
    /// <exception cref="InvalidOperationException">The instance was not created by the grain runtime.</exception>
    public GrainId GrainId => Activation.GrainId;

    /// <summary>References to other grains (and to this one, for handing out; calling yourself is refused, see <see cref="GrainReentrancyException"/>).</summary>
    /// <exception cref="InvalidOperationException">The instance was not created by the grain runtime.</exception>
    protected IGrainFactory GrainFactory => Activation.Directory.GrainFactory;

    internal GrainActivation Activation => _activation
        ?? throw new InvalidOperationException($"{GetType().Name} was not created by the grain runtime; grains are activated by calling them through IGrainFactory.GetGrain.");

    /// <summary>
    /// Called once after construction, before the first call, as an exclusive turn. Load state here. If it throws, the
    /// calls waiting for the activation fail with that exception, the instance is discarded (disposed if it is
    /// disposable; <see cref="OnDeactivateAsync"/> is not called) and the next call tries a fresh activation.
    /// </summary>
    /// <param name="cancellationToken">Cancelled after <see cref="GrainRuntimeOptions.ActivationTimeout"/> (default 30 s).</param>
    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Called once before the instance is dropped, as an exclusive turn, after every call already queued has run and
    /// after its timers have stopped. Calls arriving meanwhile wait and then go to a fresh activation. An exception is
    /// logged and does not stop the deactivation.
    /// </summary>
    /// <param name="reason">Why the activation is going away.</param>
    /// <param name="cancellationToken">Cancelled after <see cref="GrainCollectionOptions.DeactivationTimeout"/> (default 30 s) or when a shutdown is forced.</param>
    public virtual Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Starts a timer whose callback runs as a turn of this activation (exclusive: never alongside a call). The next tick
    /// is scheduled <paramref name="period"/> after the previous callback finished, so ticks never overlap. Ticks do not
    /// count as activity for idle collection. The timer stops when disposed or when the activation starts to deactivate.
    /// A callback that throws is logged and the timer keeps going.
    /// </summary>
    /// <param name="callback">The work; its token is cancelled when the timer stops.</param>
    /// <param name="dueTime">Delay before the first tick (zero: at once); <see cref="Timeout.InfiniteTimeSpan"/>: never.</param>
    /// <param name="period">Delay between ticks (positive); <see cref="Timeout.InfiniteTimeSpan"/>: tick once.</param>
    /// <returns>Disposing it stops the timer (a tick already running finishes; a queued one is dropped).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dueTime"/> is negative or <paramref name="period"/> is not positive (other than infinite).</exception>
    /// <exception cref="InvalidOperationException">The activation is deactivating.</exception>
    protected IDisposable RegisterTimer(Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period) =>
        Activation.RegisterTimer(callback, dueTime, period);

    /// <summary>
    /// Asks the runtime to deactivate this activation as soon as the calls already queued have run (the current turn
    /// included). Calls arriving after this wait and go to a fresh activation.
    /// </summary>
    protected void DeactivateOnIdle() => Activation.RequestDeactivation(DeactivationReason.ApplicationRequested);

    /// <inheritdoc />
    public override string ToString() => _activation is null ? GetType().Name : $"{GetType().Name}({_activation.GrainId})";

    internal static Grain Construct(GrainActivation activation, Func<Grain> factory)
    {
        GrainActivation? previous = t_constructing;
        t_constructing = activation;
        try
        {
            return factory();
        }
        finally
        {
            t_constructing = previous;
        }
    }
}
