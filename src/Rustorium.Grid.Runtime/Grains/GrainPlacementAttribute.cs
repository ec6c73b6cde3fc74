namespace Rustorium.Grid.Runtime.Grains;

/// <summary>Where the activations of a grain type live in a cluster of silos (see docs/runtime.md, "Placement").</summary>
public enum GrainPlacementKind
{
    /// <summary>
    /// One activation in the whole cluster, registered in the cluster's grain directory (<c>IGrainDirectory</c>): the first
    /// call places it on the silo it reaches (prefer-local), every other silo forwards calls there, and it moves only when its
    /// silo stops or dies. The default, as in Orleans. On a single silo it makes no difference.
    /// </summary>
    Directory = 0,

    /// <summary>
    /// Activated on whichever silo a call reaches, with no directory registration: grains that exist once per silo (status,
    /// control), and grains whose activation hook checks ownership itself (shard grains, placed by the shard map).
    /// </summary>
    Local = 1,
}

/// <summary>Sets a grain class's <see cref="GrainPlacementKind"/>; without it a grain type is <see cref="GrainPlacementKind.Directory"/>-placed.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class GrainPlacementAttribute(GrainPlacementKind kind) : Attribute
{
    /// <summary>The placement.</summary>
    public GrainPlacementKind Kind { get; } = kind;

    /// <summary>
    /// For <see cref="GrainPlacementKind.Directory"/> grains: the name of the placement director that chooses the silo of a
    /// new activation (<c>prefer-local</c>, <c>random</c>, <c>load-based</c>, or one the host added); null for the silo's
    /// default (<c>Silo:Cluster:GrainPlacement</c>). See docs/placement.md.
    /// </summary>
    public string? Director { get; init; }
}

/// <summary>
/// A silo's say over which activations may exist: consulted before each new activation runs any grain code, and told when
/// an activation has gone. The cluster's grain directory implements it; a single silo has none.
/// </summary>
public interface IGrainActivationGate
{
    /// <summary>
    /// Runs before the grain's constructor and <see cref="Grain.OnActivateAsync"/>. Throwing refuses the activation: the calls
    /// waiting for it fail with the exception (e.g. <see cref="GridErrorCode.NotOwner"/> when the grain lives elsewhere) and
    /// the next call starts afresh.
    /// </summary>
    ValueTask OnActivatingAsync(GrainId grain, GrainTypeRegistration registration, CancellationToken cancellationToken);

    /// <summary>After an activation left the silo's directory (deactivated, or its activation failed).</summary>
    ValueTask OnRemovedAsync(GrainId grain, GrainTypeRegistration registration);
}
