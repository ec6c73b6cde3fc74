using Microsoft.Extensions.DependencyInjection.Extensions;
using Rustorium.Grid;
using Rustorium.Grid.Grains.Hosting;
using Rustorium.Grid.Grains.Shards;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the shard grains to a silo's services.</summary>
public static class ShardGrainServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ShardGrain"/> (for <see cref="IShardGrain"/>) and <see cref="ClusterGrain"/> (for
    /// <see cref="IClusterGrain"/>) with the grain runtime (adding the runtime if needed), the engine options every
    /// shard opens with, the silo's details, and <see cref="ActiveShards"/>.
    /// </summary>
    /// <param name="services">The silo's services. They must also hold the silo's <see cref="Rustorium.Grid.Storage.IShardStore"/>
    /// (registered by the host, which opens, initialises and finally disposes it).</param>
    /// <param name="silo">This silo's name, region and advertised endpoint.</param>
    /// <param name="options">The engine options of every shard; default <see cref="ShardEngineOptions"/>'s defaults.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options (checked here, at start-up).</exception>
    public static IServiceCollection AddShardGrains(this IServiceCollection services, LocalSiloDetails silo, ShardEngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(silo);
        options ??= new ShardEngineOptions();
        options.Validate();
        services.AddSingleton(silo);
        services.AddSingleton(options);
        services.TryAddSingleton<ActiveShards>();
        services.TryAddSingleton(_ => new TreeFoldBatcher());
        // The single-silo rules; AddClusterShards replaces both with the directory's.
        services.TryAddSingleton<IShardActivation, StoreClaimActivation>();
        services.TryAddSingleton<IShardMapSource, StoreShardMapSource>();
        services.AddGrainRuntime(grains => grains
            .AddGrain<IShardGrain, ShardGrain>()
            .AddGrain<IClusterGrain, ClusterGrain>());
        return services;
    }
}
