using Rustorium.Grid.Cluster;

namespace Rustorium.Grid.Runtime.Cluster;

/// <summary>
/// This silo's view of the cluster, kept by <see cref="MembershipAgent"/>: who it is, the members the table lists, and
/// whether it may serve. One per silo (a DI singleton).
/// </summary>
/// <remarks>
/// <b>Serving lease.</b> A silo may serve only while its own last successful heartbeat is younger than
/// <see cref="ClusterOptions.DeathTimeout"/> less one heartbeat interval (measured on the monotonic clock, so a paused
/// process sees the pause): past that, the others may already have declared it dead and moved its shards, and a read it
/// answered could be stale. <see cref="EnsureServing"/> is the check; writes are fenced by epochs regardless.
/// </remarks>
public sealed class ClusterMembership
{
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly Lazy<SiloRegistration> _self;
    private volatile IReadOnlyList<SiloEntry> _members = [];
    private long _lastHeartbeatTimestamp;
    private volatile bool _joined;
    private volatile bool _declaredDead;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the view of the silo <paramref name="self"/> describes.</summary>
    /// <param name="self">This silo's registration, asked for once, when it joins (after its transport listens, so a port
    /// chosen by the system is known).</param>
    /// <param name="options">Membership settings.</param>
    /// <param name="time">The clock of the serving lease; the system's by default.</param>
    public ClusterMembership(Func<SiloRegistration> self, ClusterOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(self);
        ArgumentNullException.ThrowIfNull(options);
        _self = new Lazy<SiloRegistration>(self);
        _options = options;
        _time = time ?? TimeProvider.System;
    }

    private Func<SiloLoad>? _loadSource;

    /// <summary>Sets what this silo reports as its load with each heartbeat (<see cref="CurrentLoad"/>); none: zero.</summary>
    public void SetLoadSource(Func<SiloLoad> source)
    {
        ArgumentNullException.ThrowIfNull(source);
        _loadSource = source;
    }

    /// <summary>This silo's load now, as its next heartbeat reports it.</summary>
    public SiloLoad CurrentLoad() => _loadSource?.Invoke() ?? default;

    /// <summary>This silo's registration (its address carries this start's generation).</summary>
    public SiloRegistration Self => _self.Value;

    /// <summary>This silo's address.</summary>
    public SiloAddress Address => Self.Address;

    /// <summary>The settings.</summary>
    public ClusterOptions Options => _options;

    /// <summary>Every member the table listed at the last read (live and dead).</summary>
    public IReadOnlyList<SiloEntry> Members => _members;

    /// <summary>Members that are <see cref="SiloStatus.Active"/> (candidates for new shards), ordered by address.</summary>
    public IReadOnlyList<SiloEntry> ActiveMembers => _members.Where(m => m.Status == SiloStatus.Active).ToList();

    /// <summary>True once the table declared this silo dead: it must stop serving and exit.</summary>
    public bool IsDeclaredDead => _declaredDead;

    /// <summary>True once this silo joined.</summary>
    public bool HasJoined => _joined;

    /// <summary>The member with this address, or null if the table does not list it.</summary>
    public SiloEntry? Find(SiloAddress address) => _members.FirstOrDefault(m => m.Address == address);

    /// <summary>
    /// The status of <paramref name="address"/> as last read, or null if the last read did not list it (it may have joined
    /// since: use <see cref="StatusOfAsync"/> to decide anything on it).
    /// </summary>
    public SiloStatus? StatusOf(SiloAddress address) => Find(address)?.Status;

    /// <summary>
    /// The status of <paramref name="address"/>; a silo the last read did not list is looked up in the table again (it may
    /// have joined since), and is <see cref="SiloStatus.Dead"/> only if the table does not list it either.
    /// </summary>
    /// <param name="address">The silo.</param>
    /// <param name="cancellationToken">Abandons the read.</param>
    /// <param name="refresh">Read the table even if the silo is listed (to act on its current status, not a heartbeat-old one).</param>
    public async ValueTask<SiloStatus> StatusOfAsync(SiloAddress address, CancellationToken cancellationToken, bool refresh = false)
    {
        if (!refresh && StatusOf(address) is { } status) return status;
        if (_refresh is not null) await _refresh(cancellationToken).ConfigureAwait(false);
        return StatusOf(address) ?? SiloStatus.Dead;
    }

    private Func<CancellationToken, Task>? _refresh;

    /// <summary>Sets how <see cref="StatusOfAsync"/> re-reads the table (the membership agent does).</summary>
    internal void SetRefresh(Func<CancellationToken, Task> refresh) => _refresh = refresh;

    /// <summary>Whether this silo may serve now (joined, not declared dead, heartbeat lease valid).</summary>
    public bool IsServing => _joined && !_declaredDead && LeaseRemaining > TimeSpan.Zero;

    private TimeSpan LeaseRemaining =>
        _options.DeathTimeout - _options.HeartbeatInterval - _time.GetElapsedTime(Interlocked.Read(ref _lastHeartbeatTimestamp));

    /// <summary>Throws unless <see cref="IsServing"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> naming the reason.</exception>
    public void EnsureServing()
    {
        if (IsServing) return;
        string why = !_joined ? "has not joined the cluster yet"
            : _declaredDead ? "was declared dead by the cluster and is stopping"
            : "cannot reach the membership table (its heartbeat lease ran out)";
        throw new GridException(GridErrorCode.Unavailable, $"Silo {Address} {why}; retry on another silo.");
    }

    /// <summary>Completes the next time the member list or this silo's state changes.</summary>
    public Task WaitForChangeAsync(CancellationToken cancellationToken) => Volatile.Read(ref _changed).Task.WaitAsync(cancellationToken);

    internal void Joined(SiloEntry entry)
    {
        _joined = true;
        HeartbeatSucceeded();
        Update([entry]);
    }

    internal void HeartbeatSucceeded() => Interlocked.Exchange(ref _lastHeartbeatTimestamp, _time.GetTimestamp());

    internal void DeclaredDead()
    {
        _declaredDead = true;
        Signal();
    }

    internal void Update(IReadOnlyList<SiloEntry> members)
    {
        var old = _members;
        _members = members;
        if (!SameMembers(old, members)) Signal();
    }

    private static bool SameMembers(IReadOnlyList<SiloEntry> a, IReadOnlyList<SiloEntry> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.Address == p.Second.Address && p.First.Status == p.Second.Status);

    private void Signal() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
