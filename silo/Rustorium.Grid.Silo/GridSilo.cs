using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Storage;
using Rustorium.Grid.Storage.Postgres;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Silo;

/// <summary>Exit codes of <c>rustorium-silo</c> (also listed by <c>--help</c> and docs/silo.md).</summary>
public static class SiloExitCode
{
    /// <summary>Stopped cleanly (SIGTERM, Ctrl+C), or <c>--help</c>.</summary>
    public const int Ok = 0;

    /// <summary>Failed while starting, running or stopping (after the configuration was accepted).</summary>
    public const int Failed = 1;

    /// <summary>The configuration is invalid or cannot be used here: a bad value, an unknown option, a port in use, a data directory that cannot be written.</summary>
    public const int InvalidConfiguration = 2;

    /// <summary>The store could not be opened or initialised (corrupt file, I/O error, a newer schema, PostgreSQL unreachable).</summary>
    public const int StoreUnavailable = 3;

    /// <summary>The cluster declared this silo dead (missed heartbeats, e.g. after a pause): it stopped serving. Restart it to rejoin.</summary>
    public const int DeclaredDead = 4;
}

/// <summary>
/// The silo's life: read and check the configuration, open and initialise the store, start the grain runtime, the
/// grid transport and the HTTP status endpoint; on SIGTERM or Ctrl+C stop accepting, drain requests in flight,
/// deactivate every grain (each shard commits and folds what is queued), close the store.
/// </summary>
public static class GridSilo
{
    /// <summary>Long work while a store opens (a migration copying data), as lines on the silo's output.</summary>
    private static Action<string> Report(TextWriter output) => line => output.WriteLine($"rustorium-silo: {line}");

    /// <summary>Runs a silo until it is told to stop; returns the process exit code (<see cref="SiloExitCode"/>).</summary>
    /// <param name="args">Command-line arguments (see <c>--help</c>).</param>
    /// <param name="output">Where <c>--help</c> goes.</param>
    /// <param name="error">Where start-up problems go (one line each, no stack traces).</param>
    /// <param name="stop">Stops the silo like SIGTERM does (for hosting it in-process).</param>
    /// <param name="started">Called once the silo serves, with its status endpoint's base address (for hosting it in-process).</param>
    /// <param name="configureServices">Adds services and grains of the host's own to the silo (for hosting it in-process), e.g.
    /// <c>services =&gt; services.AddGrainRuntime(grains =&gt; grains.AddGrain&lt;IMyGrain, MyGrain&gt;())</c>; runs after the silo's own.</param>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken stop = default,
        Action<SiloEndpoints>? started = null, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (SiloConfiguration.IsHelpRequested(args))
        {
            await output.WriteLineAsync(SiloConfiguration.HelpText()).ConfigureAwait(false);
            return SiloExitCode.Ok;
        }

        var (options, configuration, problems) = LoadOptions(args);
        if (problems.Count > 0)
        {
            await error.WriteLineAsync("rustorium-silo cannot start:").ConfigureAwait(false);
            foreach (var problem in problems) await error.WriteLineAsync("  " + problem).ConfigureAwait(false);
            await error.WriteLineAsync("Run rustorium-silo --help for the options and their defaults.").ConfigureAwait(false);
            return SiloExitCode.InvalidConfiguration;
        }

        var dataDirectory = options!.ResolveDataDirectory();
        IShardStore store;
        PostgresClusterStore? cluster = null;
        string storeDescription;
        // This start's member address (a cluster needs a fixed port, so it is known before listening): the stores name
        // their sessions after it, so that the cluster can end them if it declares this silo dead.
        var address = new SiloAddress(options.ResolveEndpoint(options.Port), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000 + Random.Shared.Next(1000));
        try
        {
            if (options.IsCluster)
            {
                var connection = new Npgsql.NpgsqlConnectionStringBuilder(options.Postgres);
                storeDescription = $"PostgreSQL {connection.Host}:{connection.Port}/{connection.Database}, schema {options.PostgresSchema}";
                store = await PostgresShardStore.OpenAsync(
                    new PostgresShardStoreOptions
                    {
                        ConnectionString = options.Postgres, Schema = options.PostgresSchema, SessionOwner = address, Progress = Report(output),
                    },
                    stop).ConfigureAwait(false);
                try
                {
                    cluster = await PostgresClusterStore.OpenAsync(
                        new PostgresClusterStoreOptions { ConnectionString = options.Postgres!, Schema = options.PostgresSchema, SessionOwner = address },
                        stop).ConfigureAwait(false);
                }
                catch
                {
                    await store.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
            else
            {
                var sqlite = await SqliteShardStore.OpenAsync(new SqliteShardStoreOptions { DataDirectory = dataDirectory, Progress = Report(output) }, stop)
                    .ConfigureAwait(false);
                storeDescription = sqlite.FilePath;
                store = sqlite;
            }
        }
        catch (GridException e)
        {
            var where = options.IsCluster ? $"PostgreSQL (schema {options.PostgresSchema})" : dataDirectory;
            await error.WriteLineAsync($"rustorium-silo cannot open the store in {where}: {e.Message}").ConfigureAwait(false);
            return e.Code == GridErrorCode.InvalidArgument ? SiloExitCode.InvalidConfiguration : SiloExitCode.StoreUnavailable;
        }

        int exit;
        try
        {
            exit = await RunWithStoreAsync(options, configuration!, store, cluster, address, storeDescription, dataDirectory, error, stop, started, configureServices)
                .ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await store.DisposeAsync().ConfigureAwait(false);
                if (cluster is not null) await cluster.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                await error.WriteLineAsync($"rustorium-silo: closing the store failed: {e.Message}").ConfigureAwait(false);
                exit = SiloExitCode.Failed;
            }
        }
        return exit;
    }

    /// <summary>Reads, binds and checks the options; the problems name their settings.</summary>
    internal static (GridSiloOptions? Options, IConfigurationRoot? Configuration, List<string> Problems) LoadOptions(string[] args,
        string? baseDirectory = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var problems = new List<string>();
        IConfigurationRoot configuration;
        try
        {
            configuration = SiloConfiguration.Build(args, problems, baseDirectory, environment);
        }
        catch (Exception e) when (e is FormatException or InvalidDataException)
        {
            problems.Add($"Cannot read the configuration: {e.Message}");
            return (null, null, problems);
        }
        var options = SiloConfiguration.Bind(configuration, problems);
        if (problems.Count == 0) problems.AddRange(options.Validate());
        if (problems.Count == 0) problems.AddRange(SiloEnvironmentChecks.Check(options));
        return (options, configuration, problems);
    }

    private static async Task<int> RunWithStoreAsync(GridSiloOptions options, IConfiguration configuration, IShardStore store,
        PostgresClusterStore? cluster, SiloAddress address, string storeDescription, string dataDirectory, TextWriter error, CancellationToken stop,
        Action<SiloEndpoints>? started, Action<IServiceCollection>? configureServices)
    {
        IReadOnlyList<ShardState> shards;
        try
        {
            shards = await store.InitializeAsync(InitialShardLayout.SplitOnFirstByte(options.InitialShards), stop).ConfigureAwait(false);
        }
        catch (GridException e)
        {
            await error.WriteLineAsync($"rustorium-silo cannot initialise the store {storeDescription}: {e.Message}").ConfigureAwait(false);
            return SiloExitCode.StoreUnavailable;
        }

        var silo = new LocalSiloDetails(options.ResolveName(), options.Region, options.ResolveEndpoint(options.Port));
        var app = BuildApplication(options, configuration, store, cluster, address, silo,
            new SiloRunInfo(DateTimeOffset.UtcNow, options.IsCluster ? storeDescription : dataDirectory), configureServices);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Rustorium.Grid.Silo");
        try
        {
            try
            {
                await app.StartAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await error.WriteLineAsync($"rustorium-silo failed to start: {e.Message}").ConfigureAwait(false);
                return e is IOException or GridException { Code: GridErrorCode.Unavailable }
                    ? SiloExitCode.InvalidConfiguration   // a listener could not bind: the port was taken after the check
                    : SiloExitCode.Failed;
            }

            var transport = app.Services.GetRequiredService<GridTransportService>();
            var endpoints = new SiloEndpoints(silo.Endpoint, transport.LocalEndPoint!.ToString(), new Uri(app.Urls.First()));
            logger.LogInformation("Silo {Name} (region {Region}) is serving {Shards} shards", silo.Name, silo.Region, shards.Count);
            logger.LogInformation("Grid protocol: tcp://{Endpoint} (listening on {Listen})", endpoints.Grid, endpoints.GridListen);
            logger.LogInformation("Status: {Status} (health: {Health})", new Uri(endpoints.Http, "/status"), new Uri(endpoints.Http, "/health"));
            if (options.IsCluster) logger.LogInformation("Store: {Store}; cluster member {Silo}", storeDescription,
                app.Services.GetRequiredService<ClusterMembership>().Address);
            else logger.LogInformation("Data directory: {Directory} (store {File})", dataDirectory, storeDescription);
            if (shards.Count != options.InitialShards)
                logger.LogInformation("The store keeps its layout of {Shards} shards; Silo:InitialShards ({Initial}) applies to new stores only",
                    shards.Count, options.InitialShards);
            started?.Invoke(endpoints);

            // Returns once SIGTERM, Ctrl+C or `stop` asked the host to stop and every hosted service stopped: the
            // transport drained first, then the grain runtime deactivated every shard.
            await app.WaitForShutdownAsync(stop).ConfigureAwait(false);
            logger.LogInformation("Silo {Name} stopped; closing the store", silo.Name);
            if (app.Services.GetService<ClusterMembership>() is { IsDeclaredDead: true })
            {
                await error.WriteLineAsync($"rustorium-silo {silo.Name}: the cluster declared this silo dead; it stopped serving. Restart it to rejoin.")
                    .ConfigureAwait(false);
                return SiloExitCode.DeclaredDead;
            }
            return SiloExitCode.Ok;
        }
        catch (Exception e)
        {
            await error.WriteLineAsync($"rustorium-silo failed: {e.Message}").ConfigureAwait(false);
            return SiloExitCode.Failed;
        }
        finally
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static WebApplication BuildApplication(GridSiloOptions options, IConfiguration configuration, IShardStore store,
        PostgresClusterStore? cluster, SiloAddress address, LocalSiloDetails silo, SiloRunInfo run, Action<IServiceCollection>? configureServices)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        // One configuration for everything, read and checked already (RGRID_ environment, command line, appsettings.json).
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddConfiguration(configuration);

        builder.Logging.ClearProviders();
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.TimestampFormat = "HH:mm:ss.fff ";
        });

        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(options.BindAddress, options.HttpPort));
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.ShutdownTimeout);

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(run);
        builder.Services.AddShardGrains(silo, options.ToEngineOptions());
        builder.Services.Configure<GrainCollectionOptions>(collection => collection.CollectionAge = options.GrainCollectionAge);
        // Registered after the grain runtime, so it stops before it: requests drain, then the grains deactivate.
        builder.Services.AddSingleton<GridTransportService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<GridTransportService>());
        if (cluster is not null)
        {
            // After the transport: the silo joins once it listens (with its real endpoint) and hands its shards over
            // before it stops listening.
            builder.Services.AddSingleton<IMembershipTable>(cluster);
            builder.Services.AddSingleton<IShardDirectory>(cluster);
            builder.Services.AddSingleton<IGrainDirectory>(cluster);
            string? http = options.HttpPort == 0 ? null : $"http://{options.ResolveEndpoint(options.HttpPort)}";
            builder.Services.AddSingleton(sp => new GrainPlacementDirectors(options.Cluster.GrainPlacement, sp.GetServices<IGrainPlacementDirector>()));
            builder.Services.AddClusterShards(
                () => new SiloRegistration(address, silo.Name, silo.Region, http),
                options.Cluster.ToClusterOptions(), options.Cluster.ToPlacementOptions(), PlacementDirectors.Create(options.Cluster.Placement));
        }
        builder.Services.AddSingleton<SiloStatusReader>();
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.MapGet("/health", () => Results.Text("ok"));
        app.MapGet("/status", async (SiloStatusReader reader, CancellationToken cancellationToken) =>
        {
            try
            {
                return Results.Json(await reader.ReadAsync(cancellationToken).ConfigureAwait(false));
            }
            catch (GridException e)
            {
                return Results.Problem(e.Message, statusCode: StatusCodes.Status503ServiceUnavailable, title: e.Code.ToString());
            }
        });
        return app;
    }
}

/// <summary>Where a started silo serves.</summary>
/// <param name="Grid">The advertised grid endpoint, <c>host:port</c>.</param>
/// <param name="GridListen">The address the grid transport listens on.</param>
/// <param name="Http">The HTTP base address (status, health).</param>
public sealed record SiloEndpoints(string Grid, string GridListen, Uri Http);
