using Microsoft.Extensions.DependencyInjection;
using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Silo;
using Rustorium.Grid.Storage;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>
/// The silo's grain side in-process, without transport or HTTP: a real SQLite store in a directory, the grain runtime
/// with the shard grains, and a grain factory whose calls go through the runtime (validation, turns, activation).
/// </summary>
internal sealed class LocalShardSilo : IAsyncDisposable
{
    public const string Endpoint = "127.0.0.1:7400";
    private static readonly TimeSpan ShutdownDeadline = TimeSpan.FromSeconds(60);

    private LocalShardSilo(SqliteShardStore store, ServiceProvider services, IReadOnlyList<ShardState> shards)
    {
        Store = store;
        Services = services;
        Shards = shards;
    }

    public SqliteShardStore Store { get; }
    public ServiceProvider Services { get; }
    public IReadOnlyList<ShardState> Shards { get; }
    public IGrainFactory Grains => Services.GetRequiredService<IGrainFactory>();
    public ActiveShards Active => Services.GetRequiredService<ActiveShards>();
    public ActivationDirectory Directory => Services.GetRequiredService<ActivationDirectory>();

    public static async Task<LocalShardSilo> StartAsync(string dataDirectory, int shards = 8, ShardEngineOptions? options = null)
    {
        var store = await SqliteShardStore.OpenAsync(new SqliteShardStoreOptions { DataDirectory = dataDirectory }, default);
        try
        {
            var states = await store.InitializeAsync(InitialShardLayout.SplitOnFirstByte(shards), default);
            var services = new ServiceCollection()
                .AddLogging()
                .AddSingleton<IShardStore>(store)
                .AddShardGrains(new LocalSiloDetails("test-silo", "local", Endpoint), options)
                .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
            return new LocalShardSilo(store, services, states);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    /// <summary>The shard whose range holds <paramref name="key"/>.</summary>
    public long ShardOf(byte[] key) => Shards.Single(s => s.Range.Contains(key)).ShardId;

    public IShardGrain Shard(byte[] key) => Grains.GetGrain<IShardGrain>(ShardOf(key));

    /// <summary>Deactivates every grain (each engine commits and folds what is queued), as a silo's shutdown does.</summary>
    public async Task DeactivateAllAsync()
    {
        using var deadline = new CancellationTokenSource(ShutdownDeadline);
        await Directory.DeactivateAllAsync(deadline.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await DeactivateAllAsync();
        }
        finally
        {
            await Services.DisposeAsync();
            await Store.DisposeAsync();
        }
    }
}

/// <summary>A directory under the temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "rgrid-silo-")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public override string ToString() => Path;

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
