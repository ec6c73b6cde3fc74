using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Rustorium.Grid.Silo;

/// <summary>
/// Reads the silo's configuration: appsettings.json beside the executable, then environment variables prefixed
/// <c>RGRID_</c>, then the command line (later sources win), and binds section <c>Silo</c> to
/// <see cref="GridSiloOptions"/>. Anything it does not understand is reported, never silently ignored: a typo in an
/// option must not start a silo with a default the operator did not choose.
/// </summary>
internal static class SiloConfiguration
{
    /// <summary>Prefix of the environment variables read (<c>RGRID_Silo__Port=7401</c>).</summary>
    public const string EnvironmentPrefix = "RGRID_";

    /// <summary>The friendly switches and the settings they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> SwitchMappings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--name"] = "Silo:Name",
        ["--region"] = "Silo:Region",
        ["--data-dir"] = "Silo:DataDirectory",
        ["--host"] = "Silo:Host",
        ["--advertised-host"] = "Silo:AdvertisedHost",
        ["--port"] = "Silo:Port",
        ["--http-port"] = "Silo:HttpPort",
        ["--shards"] = "Silo:InitialShards",
        ["--sync-mode"] = "Silo:DefaultSyncMode",
        ["--collection-age"] = "Silo:GrainCollectionAge",
        ["--drain-timeout"] = "Silo:DrainTimeout",
        ["--shutdown-timeout"] = "Silo:ShutdownTimeout",
        ["--store"] = "Silo:Store",
        ["--postgres"] = "Silo:Postgres",
        ["--schema"] = "Silo:PostgresSchema",
        ["--placement"] = "Silo:Cluster:Placement",
    };

    /// <summary>Top-level sections the command line may set with <c>--Section:Key=value</c>.</summary>
    private static readonly string[] KnownSections = [GridSiloOptions.SectionName, "Logging"];

    /// <summary>True if the arguments ask for help.</summary>
    public static bool IsHelpRequested(IReadOnlyList<string> args) =>
        args.Any(a => a is "--help" or "-h" or "-?" or "/?" or "/h" or "--Help");

    /// <summary>The configuration from every source; problems with the command line itself are added to <paramref name="problems"/>.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="problems">Receives one message per unknown or malformed argument.</param>
    /// <param name="baseDirectory">Where appsettings.json is looked for; default the executable's directory.</param>
    /// <param name="environment">Environment variables to read instead of the process's (tests); null for the process's.</param>
    public static IConfigurationRoot Build(IReadOnlyList<string> args, List<string> problems, string? baseDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        CheckArguments(args, problems);
        var builder = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(baseDirectory ?? AppContext.BaseDirectory, "appsettings.json"), optional: true, reloadOnChange: false);
        if (environment is null)
            builder.AddEnvironmentVariables(EnvironmentPrefix);
        else
            builder.AddInMemoryCollection(environment
                .Where(e => e.Key.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
                .Select(e => KeyValuePair.Create(e.Key[EnvironmentPrefix.Length..].Replace("__", ":"), e.Value)));
        builder.AddCommandLine([.. args], new Dictionary<string, string>(SwitchMappings, StringComparer.OrdinalIgnoreCase));
        return builder.Build();
    }

    /// <summary>
    /// Binds section <c>Silo</c>; unknown settings and values that do not convert are added to
    /// <paramref name="problems"/> (and the result is then not to be used).
    /// </summary>
    public static GridSiloOptions Bind(IConfiguration configuration, List<string> problems)
    {
        var section = configuration.GetSection(GridSiloOptions.SectionName);
        CheckKnownKeys(section, typeof(GridSiloOptions), problems);

        var syncMode = section[nameof(GridSiloOptions.DefaultSyncMode)];
        if (syncMode is not null && !Enum.GetNames<SyncMode>().Contains(syncMode, StringComparer.OrdinalIgnoreCase))
        {
            problems.Add($"Silo:DefaultSyncMode must be one of {string.Join(", ", Enum.GetNames<SyncMode>())}; got \"{syncMode}\".");
            return new GridSiloOptions();
        }

        try
        {
            return section.Get<GridSiloOptions>() ?? new GridSiloOptions();
        }
        catch (InvalidOperationException e)
        {
            // "Failed to convert configuration value 'abc' at 'Silo:Port' to type 'System.Int32'."
            var detail = e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal)
                ? $"{e.Message} ({inner.Message})"
                : e.Message;
            problems.Add($"Invalid setting: {detail} Durations are written hh:mm:ss (00:00:10 is ten seconds).");
            return new GridSiloOptions();
        }
    }

    private static void CheckKnownKeys(IConfigurationSection section, Type type, List<string> problems)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                problems.Add($"Unknown setting {child.Path}; the settings of {section.Path} are {string.Join(", ", properties.Keys.Order())}.");
                continue;
            }
            if (property.PropertyType == typeof(GridLimits)) CheckKnownKeys(child, typeof(GridLimits), problems);
            if (property.PropertyType == typeof(SiloClusterSettings)) CheckKnownKeys(child, typeof(SiloClusterSettings), problems);
        }
    }

    /// <summary>
    /// Reports arguments the command-line provider would silently drop or misread: unknown switches, switches without
    /// a value, stray words.
    /// </summary>
    private static void CheckArguments(IReadOnlyList<string> args, List<string> problems)
    {
        // The provider's rules: "--key" and "/key" name a setting or a mapped switch, taking "=value" or the next
        // argument as the value; "key=value" sets a setting; a single "-key" counts only if mapped; anything else is
        // dropped without a word. Here every dropped or unknown argument is a problem.
        for (int i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            bool dashed = arg.StartsWith("--", StringComparison.Ordinal) || (arg.StartsWith('/') && arg.Length > 1);
            int equals = arg.IndexOf('=');
            if (!dashed)
            {
                if (arg.StartsWith('-') || equals < 0)
                    problems.Add(arg.StartsWith('-')
                        ? $"Unknown option \"{arg}\"; see --help for the options."
                        : $"Unexpected argument \"{arg}\"; options look like --port 7401 or --Silo:Port=7401 (see --help).");
                else if (!IsSetting(arg[..equals]))
                    problems.Add($"Unknown setting \"{arg[..equals]}\" in \"{arg}\"; see --help for the options.");
                continue;
            }

            var key = arg[(arg[0] == '/' ? 1 : 2)..(equals < 0 ? arg.Length : equals)];
            if (!SwitchMappings.ContainsKey("--" + key) && !IsSetting(key))
            {
                problems.Add($"Unknown option \"{arg}\"; see --help for the options.");
                continue;
            }
            if (equals < 0)
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                    problems.Add($"Option {arg} needs a value (e.g. {arg} VALUE or {arg}=VALUE).");
                else i++;
            }
        }
    }

    private static bool IsSetting(string key) =>
        KnownSections.Any(s => key.Length > s.Length + 1 && key.StartsWith(s + ":", StringComparison.OrdinalIgnoreCase));

    /// <summary>The text of <c>--help</c>.</summary>
    public static string HelpText()
    {
        var d = new GridSiloOptions();
        var limits = new GridLimits();
        (string Switch, string Setting, string Meaning, string Default)[] rows =
        [
            ("--name NAME", "Silo:Name", "the silo's name (logs, status, handshake)", "<machine>-<port>"),
            ("--region NAME", "Silo:Region", "the region it runs in", d.Region),
            ("--data-dir PATH", "Silo:DataDirectory", "the store's directory (created if missing)", d.DataDirectory),
            ("--host ADDRESS", "Silo:Host", "IP address to listen on; 0.0.0.0 or :: for all", d.Host),
            ("--advertised-host HOST", "Silo:AdvertisedHost", "host name the shard map gives clients", "the listen address"),
            ("--port N", "Silo:Port", "grid protocol TCP port (0: any free port)", Invariant(d.Port)),
            ("--http-port N", "Silo:HttpPort", "HTTP status port (0: any free port)", Invariant(d.HttpPort)),
            ("--shards N", "Silo:InitialShards", $"shards of a new store, 1..{GridSiloOptions.MaxInitialShards}, split on the first key byte", Invariant(d.InitialShards)),
            ("--sync-mode MODE", "Silo:DefaultSyncMode", "None, Async or Full, for writes that ask for the default", d.DefaultSyncMode.ToString()),
            ("", "Silo:RowCacheBytes", "committed rows cached per open shard, bytes (0: off)", d.RowCacheBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("", "Silo:FoldInterval", "least time between two tree folds of a shard (root lag)", d.FoldInterval.ToString("c")),
            ("", "Silo:TreeCommitInterval", "least time between two tree commits of a shard (0: when the last landed)", d.TreeCommitInterval.ToString("c")),
            ("--collection-age T", "Silo:GrainCollectionAge", "idle time before a shard grain is closed", d.GrainCollectionAge.ToString("c")),
            ("--drain-timeout T", "Silo:DrainTimeout", "on stop: time for requests in flight", d.DrainTimeout.ToString("c")),
            ("--shutdown-timeout T", "Silo:ShutdownTimeout", "on stop: time for the whole stop", d.ShutdownTimeout.ToString("c")),
            ("--store KIND", "Silo:Store", "sqlite (embedded, one silo) or postgres (a cluster)", d.Store),
            ("--postgres CONN", "Silo:Postgres", "PostgreSQL connection string (with --store postgres)", "none"),
            ("--schema NAME", "Silo:PostgresSchema", "PostgreSQL schema of the grid's tables", d.PostgresSchema),
            ("--placement NAME", "Silo:Cluster:Placement", "load-based, random or prefer-local", d.Cluster.Placement),
            ("", "Silo:Cluster:GrainPlacement", "new application grains: prefer-local, random or load-based", d.Cluster.GrainPlacement),
            ("", "Silo:Cluster:HeartbeatInterval", "heartbeat period", d.Cluster.HeartbeatInterval.ToString("c")),
            ("", "Silo:Cluster:DeathTimeout", "heartbeat age that declares a silo dead", d.Cluster.DeathTimeout.ToString("c")),
            ("", "Silo:Cluster:Rebalance", "move shards to even out silos", d.Cluster.Rebalance ? "true" : "false"),
            ("", "Silo:Cluster:RebalanceThreshold", "shard gap that triggers a move (>= 2)", Invariant(d.Cluster.RebalanceThreshold)),
            ("", "Silo:Cluster:MoveCooldown", "a moved shard stays put this long", d.Cluster.MoveCooldown.ToString("c")),
            ("", "Silo:Cluster:SplitKeys", "keys at which a shard splits (0: off)", d.Cluster.SplitKeys.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("", "Silo:Cluster:SplitOpsPerSecond", "calls/s at which a shard splits (0: off)", d.Cluster.SplitOpsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("", "Silo:Cluster:MergeKeys", "adjacent cold shards under this merge (0: off)", d.Cluster.MergeKeys.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("", "Silo:Cluster:MergeMaxOpsPerSecond", "calls/s under which a shard is cold", d.Cluster.MergeMaxOpsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("", "Silo:Cluster:MinShards", "merges stop at this many shards", Invariant(d.Cluster.MinShards)),
            ("", "Silo:Limits:MaxKeyBytes", "longest key, bytes", Invariant(limits.MaxKeyBytes)),
            ("", "Silo:Limits:MaxValueBytes", "largest value, bytes", Invariant(limits.MaxValueBytes)),
            ("", "Silo:Limits:MaxBatchOperations", "operations in one batch", Invariant(limits.MaxBatchOperations)),
            ("", "Silo:Limits:MaxScanLimit", "rows in one scan page", Invariant(limits.MaxScanLimit)),
            ("-h, --help", "", "this text", ""),
        ];
        var table = new System.Text.StringBuilder();
        table.AppendLine($"  {"option",-24}{"setting",-32}{"default",-20}meaning");
        foreach (var (option, setting, meaning, value) in rows)
            table.AppendLine($"  {option,-24}{setting,-32}{value,-20}{meaning}".TrimEnd());

        return $"""
            rustorium-silo: a Rustorium Grid silo. Hosts key-range shards on an embedded SQLite store (the default) or,
            with --store postgres, as one member of a cluster whose shards, membership and directory live in PostgreSQL;
            serves the grid protocol over TCP and a status page over HTTP. Stops cleanly on SIGTERM or Ctrl+C (a
            cluster member first hands its shards to the other silos).

            Usage:
              dotnet run --project silo/Rustorium.Grid.Silo -- [options]
              rustorium-silo [options]

            {table.ToString().TrimEnd()}

            --shards applies to a new store only; an existing store keeps its layout. Durations (T) are written
            hh:mm:ss (00:00:10 is ten seconds). Every setting can be given on the command line as --Silo:Key=value
            (--Silo:Limits:MaxKeyBytes=512), in the environment as {EnvironmentPrefix}Silo__Key ({EnvironmentPrefix}Silo__Port=7401), or in
            appsettings.json next to the executable; the command line wins over the environment, which wins over
            appsettings.json.

            Endpoints: the grid protocol on tcp://HOST:PORT; GET http://HOST:HTTP-PORT/status (JSON) and /health ("ok").

            Exit codes: 0 stopped cleanly (or --help); 2 invalid configuration (a bad value, an unknown option, a port
            in use, a data directory that cannot be written); 3 the store could not be opened (corrupt, I/O error);
            1 the silo failed while starting, running or stopping; 4 the cluster declared this silo dead (it stopped
            serving; restart it to rejoin).
            """;

        static string Invariant(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
