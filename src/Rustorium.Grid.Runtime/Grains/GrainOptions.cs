namespace Rustorium.Grid.Runtime.Grains;

/// <summary>When idle activations are collected and how long deactivation may take. Validated at start-up.</summary>
public sealed class GrainCollectionOptions
{
    /// <summary>
    /// How long an activation may go without a call before the collector deactivates it. Default 15 minutes.
    /// Timer ticks do not count as calls. <see cref="Timeout.InfiniteTimeSpan"/> turns idle collection off.
    /// </summary>
    public TimeSpan CollectionAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// How often the collector looks for idle activations. Default 1 minute. An idle activation is collected between
    /// <see cref="CollectionAge"/> and <see cref="CollectionAge"/> + <see cref="CollectionQuantum"/> after its last call.
    /// </summary>
    public TimeSpan CollectionQuantum { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long <see cref="Grain.OnDeactivateAsync"/> has before its token is cancelled. Default 30 seconds. The runtime
    /// does not abandon the method when the token fires; the token asks it to stop.
    /// </summary>
    public TimeSpan DeactivationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the options.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the bad option.</exception>
    public void Validate()
    {
        if (CollectionAge != Timeout.InfiniteTimeSpan && CollectionAge <= TimeSpan.Zero)
            throw GridException.InvalidArgument($"GrainCollectionOptions.CollectionAge must be positive (or Timeout.InfiniteTimeSpan to never collect); got {CollectionAge}.");
        GrainRuntimeOptions.CheckDuration(CollectionQuantum, "GrainCollectionOptions.CollectionQuantum");
        GrainRuntimeOptions.CheckDuration(DeactivationTimeout, "GrainCollectionOptions.DeactivationTimeout");
    }
}

/// <summary>Limits of the grain runtime. Validated at start-up.</summary>
public sealed class GrainRuntimeOptions
{
    /// <summary>
    /// How long <see cref="Grain.OnActivateAsync"/> has before its token is cancelled. Default 30 seconds. The runtime does
    /// not abandon the method when the token fires; the token asks it to stop.
    /// </summary>
    public TimeSpan ActivationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most calls that may wait in one activation's queue (running calls not counted). Default 10,000. A call beyond it is
    /// refused at once with <see cref="GridErrorCode.Unavailable"/>, so an overloaded grain sheds load instead of growing
    /// its queue (and the silo's memory) without bound.
    /// </summary>
    public int MaxQueuedCallsPerActivation { get; set; } = 10_000;

    /// <summary>Checks the options.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the bad option.</exception>
    public void Validate()
    {
        CheckDuration(ActivationTimeout, "GrainRuntimeOptions.ActivationTimeout");
        if (MaxQueuedCallsPerActivation < 1)
            throw GridException.InvalidArgument($"GrainRuntimeOptions.MaxQueuedCallsPerActivation must be at least 1; got {MaxQueuedCallsPerActivation}.");
    }

    internal static void CheckDuration(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(1))
            throw GridException.InvalidArgument($"{name} must be more than zero and at most one day; got {value}.");
    }
}
