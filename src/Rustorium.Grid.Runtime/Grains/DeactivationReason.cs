namespace Rustorium.Grid.Runtime.Grains;

/// <summary>Why an activation is being deactivated. Explicit values, append-only (they may be logged and reported).</summary>
public enum DeactivationReason : byte
{
    /// <summary>No call arrived for longer than <see cref="GrainCollectionOptions.CollectionAge"/>.</summary>
    IdleCollection = 1,

    /// <summary>The grain called <see cref="Grain.DeactivateOnIdle"/>.</summary>
    ApplicationRequested = 2,

    /// <summary>The silo is shutting down (<see cref="ActivationDirectory.DeactivateAllAsync"/>).</summary>
    ShuttingDown = 3,

    /// <summary>The grain is handed over to another silo (migration, rebalancing, a silo leaving).</summary>
    Migrating = 4,

    /// <summary>This silo lost the grain: another silo owns it now (this one was fenced or declared dead).</summary>
    OwnershipLost = 5,
}
