namespace Rustorium.Grid.Runtime.Cluster;

/// <summary>
/// Membership and failure-detection settings (section <c>Silo:Cluster</c> in the silo). The defaults declare a silo dead
/// about 5 s after its last heartbeat, so its shards serve again elsewhere within about 7 s (docs/membership.md).
/// </summary>
public sealed record ClusterOptions
{
    /// <summary>How often a silo writes its heartbeat and reads the table. 100 ms..1 min. Default 1 s.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How old (by the database's clock) a member's last heartbeat must be before another silo may declare it dead. At
    /// least three heartbeat intervals, at most 10 min. Default 5 s. A silo whose own last successful heartbeat is older
    /// than this stops serving until it heartbeats again (it may already have been declared dead).
    /// </summary>
    public TimeSpan DeathTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Checks the settings; returns one message per problem, naming the setting.</summary>
    public IReadOnlyList<string> Validate(string prefix = "Silo:Cluster:")
    {
        var problems = new List<string>();
        if (HeartbeatInterval < TimeSpan.FromMilliseconds(100) || HeartbeatInterval > TimeSpan.FromMinutes(1))
            problems.Add($"{prefix}HeartbeatInterval must be 00:00:00.1..00:01:00; got {HeartbeatInterval}.");
        if (DeathTimeout < 3 * HeartbeatInterval || DeathTimeout > TimeSpan.FromMinutes(10))
            problems.Add($"{prefix}DeathTimeout must be at least three heartbeat intervals ({3 * HeartbeatInterval}) and at most 00:10:00; got {DeathTimeout}.");
        return problems;
    }
}
