namespace Rustorium.Grid.Cluster;

/// <summary>
/// One incarnation of a silo: the grid endpoint it serves on and a generation that is new every time a silo process
/// starts there (Orleans's SiloAddress). A restarted silo is a new member; its previous incarnation is dead.
/// </summary>
/// <param name="Endpoint">The advertised grid endpoint, <c>host:port</c>.</param>
/// <param name="Generation">Positive; larger for a later start on the same endpoint.</param>
public readonly record struct SiloAddress(string Endpoint, long Generation)
{
    /// <summary><c>host:port@generation</c>.</summary>
    public override string ToString() => $"{Endpoint}@{Generation}";

    /// <summary>Parses <see cref="ToString"/>'s form.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for anything else.</exception>
    public static SiloAddress Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int at = text.LastIndexOf('@');
        if (at <= 0 || !long.TryParse(text.AsSpan(at + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture,
                out long generation) || generation <= 0)
            throw GridException.InvalidArgument($"A silo address is host:port@generation; got '{text}'.");
        return new SiloAddress(text[..at], generation);
    }
}

/// <summary>A member's state in the membership table. Values are stored: append-only.</summary>
public enum SiloStatus : byte
{
    /// <summary>Serving and heartbeating.</summary>
    Active = 1,

    /// <summary>Handing its shards over before it leaves; still serving what it has not handed over.</summary>
    ShuttingDown = 2,

    /// <summary>Gone: left cleanly, or declared dead after missed heartbeats. Final: a dead row never becomes live again.</summary>
    Dead = 3,
}

/// <summary>What a silo tells the table when it joins.</summary>
/// <param name="Address">Its endpoint and this start's generation.</param>
/// <param name="Name">Its name (logs, dashboard).</param>
/// <param name="Region">The region it runs in.</param>
/// <param name="HttpEndpoint">Its HTTP status endpoint base address, or null.</param>
public sealed record SiloRegistration(SiloAddress Address, string Name, string Region, string? HttpEndpoint);

/// <summary>
/// The load a silo reports with each heartbeat, for load-based placement: every silo reads the same values from the table,
/// so directors on different silos still agree.
/// </summary>
/// <param name="OpsPerSecond">Calls its shards served per second over the last heartbeat interval.</param>
/// <param name="Activations">Grain activations it holds (shards and application grains).</param>
public readonly record struct SiloLoad(double OpsPerSecond, int Activations);

/// <summary>A row of the membership table.</summary>
/// <param name="Address">The member.</param>
/// <param name="Name">Its name.</param>
/// <param name="Region">Its region.</param>
/// <param name="HttpEndpoint">Its HTTP endpoint, or null.</param>
/// <param name="Status">Its state.</param>
/// <param name="JoinedAt">When it joined (the store's clock).</param>
/// <param name="LastHeartbeat">Its last heartbeat (the store's clock).</param>
/// <param name="HeartbeatAge">How old that heartbeat was when the row was read, by the store's clock — so silos with skewed clocks agree.</param>
public sealed record SiloEntry(SiloAddress Address, string Name, string Region, string? HttpEndpoint, SiloStatus Status,
    DateTimeOffset JoinedAt, DateTimeOffset LastHeartbeat, TimeSpan HeartbeatAge)
{
    /// <summary>The load reported with its last heartbeat (zero until it reports one, or where the table keeps none).</summary>
    public SiloLoad Load { get; init; }
}

/// <summary>
/// The membership table (Orleans's IMembershipTable, simplified): the truth about which silos are members. Failure
/// detection is decided here, never by one silo's timing alone: a silo is declared dead only by a conditional update
/// that checks, by the store's own clock, that its last heartbeat is older than the caller's limit.
/// </summary>
/// <remarks>Implementations are thread-safe and durable: what a call changed survives a restart of every silo.</remarks>
public interface IMembershipTable
{
    /// <summary>
    /// Adds the silo as <see cref="SiloStatus.Active"/> with a heartbeat now, and declares every earlier generation on the
    /// same endpoint <see cref="SiloStatus.Dead"/> (a restart supersedes the previous incarnation).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Conflict"/> if this address (endpoint and generation) is already in
    /// the table, or a later generation on the same endpoint is; <see cref="GridErrorCode.InvalidArgument"/> for a blank field.</exception>
    Task<SiloEntry> JoinAsync(SiloRegistration registration, CancellationToken cancellationToken);

    /// <summary>Records a heartbeat now. Returns false, changing nothing, when the silo is dead or unknown: it must stop serving.</summary>
    Task<bool> HeartbeatAsync(SiloAddress silo, CancellationToken cancellationToken);

    /// <summary>
    /// Records a heartbeat now with the silo's <paramref name="load"/> (read back as <see cref="SiloEntry.Load"/>). A table that
    /// keeps no load records the heartbeat alone. Returns false, changing nothing, when the silo is dead or unknown.
    /// </summary>
    Task<bool> HeartbeatAsync(SiloAddress silo, SiloLoad load, CancellationToken cancellationToken) => HeartbeatAsync(silo, cancellationToken);

    /// <summary>Every row (live and dead), ordered by endpoint then generation.</summary>
    Task<IReadOnlyList<SiloEntry>> ReadAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Declares <paramref name="silo"/> dead if, by the store's clock, its last heartbeat is older than
    /// <paramref name="heartbeatOlderThan"/> and it is not dead yet. Returns whether this call changed it. When it did, the
    /// store also ends the dead silo's own sessions with it, if it can tell them apart (a silo frozen in the middle of a
    /// commit must not keep a shard's lock from its next owner).
    /// </summary>
    Task<bool> DeclareDeadAsync(SiloAddress silo, TimeSpan heartbeatOlderThan, CancellationToken cancellationToken);

    /// <summary>
    /// Moves a live silo to <see cref="SiloStatus.ShuttingDown"/> or <see cref="SiloStatus.Dead"/> (a clean leave).
    /// Returns false, changing nothing, if it is already dead or unknown (a dead row never comes back).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for <see cref="SiloStatus.Active"/> or an undefined status.</exception>
    Task<bool> SetStatusAsync(SiloAddress silo, SiloStatus status, CancellationToken cancellationToken);
}
