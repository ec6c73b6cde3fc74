using System.Net;
using System.Text;

namespace Rustorium.Grid.Silo;

/// <summary>
/// The silo's settings: section <c>Silo</c> of the configuration (appsettings.json, then environment variables with
/// the prefix <c>RGRID_</c> such as <c>RGRID_Silo__Port</c>, then the command line such as <c>--Silo:Port=7401</c> or
/// <c>--port 7401</c>; later sources win). Every default is stated on its property and in docs/silo.md.
/// </summary>
public sealed class GridSiloOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Silo";

    /// <summary>Most shards a new store may be split into (one per value of the first key byte).</summary>
    public const int MaxInitialShards = 256;

    /// <summary>The silo's name (logs, status, the transport handshake). Default: <c>{machine name}-{port}</c>.</summary>
    public string? Name { get; set; }

    /// <summary>The region the silo runs in: 1..64 letters, digits, '.', '_' or '-'. Default <c>local</c>.</summary>
    public string Region { get; set; } = "local";

    /// <summary>The directory of the embedded SQLite store (created if missing; relative to the working directory). Default <c>./data/silo</c>.</summary>
    public string DataDirectory { get; set; } = "./data/silo";

    /// <summary>
    /// The IP address both listeners bind: <c>127.0.0.1</c> (the default: loopback only), <c>0.0.0.0</c> or <c>::</c>
    /// for every interface, or one interface's address. <c>localhost</c> means 127.0.0.1.
    /// </summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>
    /// The host name or address the shard map tells clients to connect to. Default: <see cref="Host"/>, or the machine's
    /// host name when <see cref="Host"/> listens on every interface.
    /// </summary>
    public string? AdvertisedHost { get; set; }

    /// <summary>TCP port of the grid protocol (0: any free port, reported in the log and in /status). Default 7400.</summary>
    public int Port { get; set; } = 7400;

    /// <summary>TCP port of the HTTP status endpoint (0: any free port, reported in the log). Default 7480.</summary>
    public int HttpPort { get; set; } = 7480;

    /// <summary>
    /// How many shards a new, empty store is split into, evenly on the first key byte (8: [00,20), [20,40), … [e0,∞),
    /// the first starting at the empty key). 1..256. Default 8. An existing store keeps its layout.
    /// </summary>
    public int InitialShards { get; set; } = 8;

    /// <summary>The sync mode of writes that ask for the silo's default (mode 0). None, Async or Full. Default Full.</summary>
    public SyncMode DefaultSyncMode { get; set; } = SyncMode.Full;

    /// <summary>
    /// Where shards live: <c>sqlite</c> (the default: an embedded store in <see cref="DataDirectory"/>, one silo) or
    /// <c>postgres</c> (shard data, membership and the directory in PostgreSQL: a cluster of silos, see <see cref="Postgres"/>).
    /// </summary>
    public string Store { get; set; } = "sqlite";

    /// <summary>
    /// The PostgreSQL connection string (Npgsql syntax: <c>Host=…;Port=…;Username=…;Password=…;Database=…</c>); required when
    /// <see cref="Store"/> is <c>postgres</c>. Give passwords through the environment (<c>RGRID_Silo__Postgres</c>) rather
    /// than the command line.
    /// </summary>
    public string? Postgres { get; set; }

    /// <summary>The PostgreSQL schema that holds the grid's tables (created and migrated at start). Default <c>rgrid</c>.</summary>
    public string PostgresSchema { get; set; } = "rgrid";

    /// <summary>Membership, failure detection, placement and rebalancing (with <see cref="Store"/> = <c>postgres</c>).</summary>
    public SiloClusterSettings Cluster { get; set; } = new();

    /// <summary>True when the silo runs as a cluster member on PostgreSQL.</summary>
    public bool IsCluster => string.Equals(Store, "postgres", StringComparison.OrdinalIgnoreCase);

    /// <summary>Key, value, batch and scan limits (<see cref="GridLimits"/>; the defaults are its defaults).</summary>
    public GridLimits Limits { get; set; } = new();

    /// <summary>
    /// Bytes of committed rows each open shard keeps in memory for reads (least recently used evicted; 0: off). 0..16 GiB.
    /// Default 8 MiB (8388608).
    /// </summary>
    public long RowCacheBytes { get; set; } = new Grains.Shards.ShardEngineOptions().RowCacheBytes;

    /// <summary>
    /// Least time between two folds of a shard's committed writes into its tree while few wait (docs/sharding.md): longer
    /// folds share more of the tree (more writes/s); the published root and write-with-proof answers lag by up to this much.
    /// 0..10 s. Default 250 ms.
    /// </summary>
    public TimeSpan FoldInterval { get; set; } = new Grains.Shards.ShardEngineOptions().FoldInterval;

    /// <summary>
    /// Least time between the starts of two tree commits (checkpoints) of a shard (docs/sharding.md, "Checkpoint"): folds
    /// are proven from memory and those since the last checkpoint stored together, writing each changed path once; after a
    /// crash the next owner folds the rows since the last checkpoint again. 0: as soon as the last one landed. 0..60 s.
    /// Default 0.
    /// </summary>
    public TimeSpan TreeCommitInterval { get; set; } = new Grains.Shards.ShardEngineOptions().TreeCommitInterval;

    /// <summary>How long a shard grain may stay idle before it is deactivated (its engine closed). Positive. Default 15 minutes.</summary>
    public TimeSpan GrainCollectionAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>On shutdown, how long requests in flight may run before they are cancelled. 0..10 minutes. Default 10 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// On shutdown, how long the whole stop (drain, then closing every shard: commit and fold what is queued) may take
    /// before it is forced. More than <see cref="DrainTimeout"/>, at most 1 hour. Default 2 minutes.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The address the listeners bind. Call after <see cref="Validate"/>.</summary>
    public IPAddress BindAddress =>
        string.Equals(Host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : IPAddress.Parse(Host);

    /// <summary>The silo's name: <see cref="Name"/> or its default.</summary>
    public string ResolveName() => string.IsNullOrWhiteSpace(Name)
        ? $"{Environment.MachineName.ToLowerInvariant()}-{(Port != 0 ? Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : "pid" + Environment.ProcessId)}"
        : Name;

    /// <summary>The advertised grid endpoint (<c>host:port</c>) for a listener on <paramref name="port"/>.</summary>
    public string ResolveEndpoint(int port)
    {
        var host = AdvertisedHost;
        if (string.IsNullOrWhiteSpace(host))
        {
            var address = BindAddress;
            host = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) ? Dns.GetHostName() : address.ToString();
        }
        return host.Contains(':') && !host.StartsWith('[') ? $"[{host}]:{port}" : $"{host}:{port}";
    }

    /// <summary>The store's directory, absolute.</summary>
    public string ResolveDataDirectory() => Path.GetFullPath(DataDirectory);

    /// <summary>
    /// Checks every value (no I/O); returns the problems found, each naming its setting (<c>Silo:Port</c>), empty if
    /// none.
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Name is not null)
        {
            if (string.IsNullOrWhiteSpace(Name)) problems.Add("Silo:Name must not be blank (leave it unset for the default).");
            else if (Encoding.UTF8.GetByteCount(Name) > 256 || Name.Any(char.IsControl))
                problems.Add($"Silo:Name must be at most 256 UTF-8 bytes without control characters; got \"{Name}\".");
        }
        if (string.IsNullOrEmpty(Region) || Region.Length > 64 || !Region.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            problems.Add($"Silo:Region must be 1..64 letters, digits, '.', '_' or '-'; got \"{Region}\".");
        if (string.IsNullOrWhiteSpace(DataDirectory))
            problems.Add("Silo:DataDirectory must name a directory.");
        else
        {
            try
            {
                Path.GetFullPath(DataDirectory);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
            {
                problems.Add($"Silo:DataDirectory \"{DataDirectory}\" is not a valid path: {e.Message}");
            }
        }
        if (string.IsNullOrWhiteSpace(Host) || (!string.Equals(Host, "localhost", StringComparison.OrdinalIgnoreCase) && !IPAddress.TryParse(Host, out _)))
            problems.Add($"Silo:Host must be an IP address (127.0.0.1 for this machine only, 0.0.0.0 or :: for every interface) or localhost; got \"{Host}\".");
        if (AdvertisedHost is not null && (string.IsNullOrWhiteSpace(AdvertisedHost) || AdvertisedHost.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '/')))
            problems.Add($"Silo:AdvertisedHost must be a host name or an address; got \"{AdvertisedHost}\".");
        if (Port is < 0 or > 65535) problems.Add($"Silo:Port must be 0..65535 (0: any free port); got {Port}.");
        if (HttpPort is < 0 or > 65535) problems.Add($"Silo:HttpPort must be 0..65535 (0: any free port); got {HttpPort}.");
        if (Port != 0 && Port == HttpPort) problems.Add($"Silo:Port and Silo:HttpPort must differ; both are {Port}.");
        if (InitialShards is < 1 or > MaxInitialShards)
            problems.Add($"Silo:InitialShards must be 1..{MaxInitialShards} (the key space is split on the first key byte); got {InitialShards}.");
        if (!Enum.IsDefined(DefaultSyncMode))
            problems.Add($"Silo:DefaultSyncMode must be one of {string.Join(", ", Enum.GetNames<SyncMode>())}; got {(int)DefaultSyncMode}.");
        if (Limits is null) problems.Add("Silo:Limits must not be null.");
        else
        {
            try
            {
                Limits.Validate();
            }
            catch (GridException e)
            {
                problems.Add($"Silo:Limits:{e.Message}");
            }
        }
        if (!string.Equals(Store, "sqlite", StringComparison.OrdinalIgnoreCase) && !IsCluster)
            problems.Add($"Silo:Store must be sqlite (embedded, one silo) or postgres (a cluster); got \"{Store}\".");
        if (IsCluster)
        {
            if (string.IsNullOrWhiteSpace(Postgres))
                problems.Add("Silo:Postgres must give the PostgreSQL connection string when Silo:Store is postgres (e.g. --postgres \"Host=127.0.0.1;Port=5432;Username=grid;Database=grid\").");
            else
            {
                try
                {
                    _ = new Npgsql.NpgsqlConnectionStringBuilder(Postgres);
                }
                catch (ArgumentException e)
                {
                    problems.Add($"Silo:Postgres is not a valid connection string: {e.Message}");
                }
            }
            try
            {
                Storage.Postgres.PostgresMigrator.QuoteSchema(PostgresSchema);
            }
            catch (GridException e)
            {
                problems.Add($"Silo:PostgresSchema: {e.Message}");
            }
            if (Cluster is null) problems.Add("Silo:Cluster must not be null.");
            else problems.AddRange(Cluster.Validate());
            if (Port == 0)
                problems.Add("Silo:Port must be a fixed port in a cluster (other silos and the directory record it); got 0.");
        }
        if (RowCacheBytes is < 0 or > 16L << 30)
            problems.Add($"Silo:RowCacheBytes must be 0 (off) .. 17179869184 (16 GiB); got {RowCacheBytes}.");
        if (FoldInterval < TimeSpan.Zero || FoldInterval > TimeSpan.FromSeconds(10))
            problems.Add($"Silo:FoldInterval must be 00:00:00..00:00:10; got {FoldInterval}.");
        if (TreeCommitInterval < TimeSpan.Zero || TreeCommitInterval > TimeSpan.FromSeconds(60))
            problems.Add($"Silo:TreeCommitInterval must be 00:00:00..00:01:00; got {TreeCommitInterval}.");
        if (GrainCollectionAge <= TimeSpan.Zero)
            problems.Add($"Silo:GrainCollectionAge must be a positive duration (e.g. 00:15:00); got {GrainCollectionAge}.");
        if (DrainTimeout < TimeSpan.Zero || DrainTimeout > TimeSpan.FromMinutes(10))
            problems.Add($"Silo:DrainTimeout must be 00:00:00..00:10:00; got {DrainTimeout}.");
        if (ShutdownTimeout <= DrainTimeout || ShutdownTimeout > TimeSpan.FromHours(1))
            problems.Add($"Silo:ShutdownTimeout must be more than Silo:DrainTimeout ({DrainTimeout}) and at most 01:00:00; got {ShutdownTimeout}.");
        return problems;
    }

    /// <summary>The engine options every shard of this silo opens with.</summary>
    public Grains.Shards.ShardEngineOptions ToEngineOptions() => new()
    {
        Limits = Limits,
        DefaultSyncMode = DefaultSyncMode,
        Region = Region,
        RowCacheBytes = RowCacheBytes,
        FoldInterval = FoldInterval,
        TreeCommitInterval = TreeCommitInterval,
    };
}

/// <summary>Section <c>Silo:Cluster</c>: membership, failure detection, placement and rebalancing (docs/membership.md, docs/placement.md).</summary>
public sealed class SiloClusterSettings
{
    /// <summary>How often the silo heartbeats and reads the membership table. Default 00:00:01.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = new Runtime.Cluster.ClusterOptions().HeartbeatInterval;

    /// <summary>Heartbeat age (by the database clock) after which a silo is declared dead. At least 3 heartbeat intervals. Default 00:00:05.</summary>
    public TimeSpan DeathTimeout { get; set; } = new Runtime.Cluster.ClusterOptions().DeathTimeout;

    /// <summary>Where shards without a live owner go: load-based (the default), random or prefer-local.</summary>
    public string Placement { get; set; } = "load-based";

    /// <summary>
    /// Where a new activation of an application grain goes, for grain types whose [GrainPlacement] names no director:
    /// prefer-local (the silo the call arrived at; the default), random or load-based (docs/placement.md).
    /// </summary>
    public string GrainPlacement { get; set; } = "prefer-local";

    /// <summary>How often the silo reconciles its shards with the directory. Default 00:00:01.</summary>
    public TimeSpan ReconcileInterval { get; set; } = new Grains.Cluster.ShardPlacementOptions().ReconcileInterval;

    /// <summary>Whether silos move shards to even out their number. Default true.</summary>
    public bool Rebalance { get; set; } = true;

    /// <summary>Shards more than the least-loaded silo before one is given away (hysteresis), at least 2. Default 2.</summary>
    public int RebalanceThreshold { get; set; } = new Grains.Cluster.ShardPlacementOptions().RebalanceThreshold;

    /// <summary>A moved shard stays put at least this long. Default 00:00:30.</summary>
    public TimeSpan MoveCooldown { get; set; } = new Grains.Cluster.ShardPlacementOptions().MoveCooldown;

    /// <summary>Keys at which a shard splits in two (0: never by size). Default 1,000,000.</summary>
    public long SplitKeys { get; set; } = new Grains.Cluster.ShardPlacementOptions().SplitKeys;

    /// <summary>Calls per second at which a shard splits in two (0: never by load). Default 20,000.</summary>
    public double SplitOpsPerSecond { get; set; } = new Grains.Cluster.ShardPlacementOptions().SplitOpsPerSecond;

    /// <summary>Two adjacent cold shards of one silo holding fewer keys than this merge (0: never). Default 10,000.</summary>
    public long MergeKeys { get; set; } = new Grains.Cluster.ShardPlacementOptions().MergeKeys;

    /// <summary>Calls per second under which a shard is cold enough to merge. Default 10.</summary>
    public double MergeMaxOpsPerSecond { get; set; } = new Grains.Cluster.ShardPlacementOptions().MergeMaxOpsPerSecond;

    /// <summary>Merges stop at this many shards. Default 8.</summary>
    public int MinShards { get; set; } = new Grains.Cluster.ShardPlacementOptions().MinShards;

    /// <summary>The membership settings.</summary>
    public Runtime.Cluster.ClusterOptions ToClusterOptions() => new() { HeartbeatInterval = HeartbeatInterval, DeathTimeout = DeathTimeout };

    /// <summary>The placement settings.</summary>
    public Grains.Cluster.ShardPlacementOptions ToPlacementOptions() => new()
    {
        ReconcileInterval = ReconcileInterval,
        Rebalance = Rebalance,
        RebalanceThreshold = RebalanceThreshold,
        MoveCooldown = MoveCooldown,
        SplitKeys = SplitKeys,
        SplitOpsPerSecond = SplitOpsPerSecond,
        MergeKeys = MergeKeys,
        MergeMaxOpsPerSecond = MergeMaxOpsPerSecond,
        MinShards = MinShards,
    };

    /// <summary>Checks every value; one message per problem, naming the setting.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        problems.AddRange(ToClusterOptions().Validate());
        problems.AddRange(ToPlacementOptions().Validate());
        if (!Runtime.Cluster.PlacementDirectors.Names.Contains(Placement?.ToLowerInvariant()))
            problems.Add($"Silo:Cluster:Placement must be one of {string.Join(", ", Runtime.Cluster.PlacementDirectors.Names)}; got \"{Placement}\".");
        if (!Runtime.Cluster.GrainPlacementDirectors.BuiltInNames.Contains(GrainPlacement?.ToLowerInvariant()))
            problems.Add($"Silo:Cluster:GrainPlacement must be one of {string.Join(", ", Runtime.Cluster.GrainPlacementDirectors.BuiltInNames)}; got \"{GrainPlacement}\".");
        return problems;
    }
}
