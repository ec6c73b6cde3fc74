using Microsoft.Extensions.DependencyInjection.Extensions;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Grains.Cluster;
using Rustorium.Grid.Grains.Shards;
using Rustorium.Grid.Runtime.Cluster;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Turns a silo with shard grains into a cluster member.</summary>
public static class ClusterShardServiceCollectionExtensions
{
    /// <summary>
    /// Adds membership (<see cref="MembershipAgent"/>), the directory's ownership rule for shard grains
    /// (<see cref="ClusterShardActivation"/>, replacing the single-silo rule), the cluster's shard map, placement and
    /// rebalancing (<see cref="ShardOwnershipService"/>) and the silo control grain. Call after <c>AddShardGrains</c> and
    /// after the transport's hosted service is registered: the hosted services added here then start after the silo listens
    /// (it joins with its real endpoint) and stop before it stops listening (it hands its shards over while it can still
    /// redirect callers).
    /// </summary>
    /// <param name="services">The silo's services; they must hold an <see cref="IMembershipTable"/> and an <see cref="IShardDirectory"/>.</param>
    /// <param name="registration">This silo's registration, evaluated when it joins (once it listens).</param>
    /// <param name="cluster">Membership settings.</param>
    /// <param name="placement">Placement settings.</param>
    /// <param name="director">The placement director.</param>
    public static IServiceCollection AddClusterShards(this IServiceCollection services, Func<SiloRegistration> registration, ClusterOptions cluster,
        ShardPlacementOptions placement, IPlacementDirector director)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(registration);
        services.AddSingleton(cluster);
        services.AddSingleton(placement);
        services.AddSingleton(director);
        services.TryAddSingleton(sp => new SiloLoadMeter(sp.GetRequiredService<ActiveShards>(), sp.GetRequiredService<ActivationDirectory>()));
        services.AddSingleton(sp =>
        {
            var membership = new ClusterMembership(registration, sp.GetRequiredService<ClusterOptions>());
            membership.SetLoadSource(sp.GetRequiredService<SiloLoadMeter>().Sample); // reported with each heartbeat
            return membership;
        });
        services.TryAddSingleton<SiloConnections>();
        services.AddSingleton<ClusterShardActivation>();
        services.Replace(ServiceDescriptor.Singleton<IShardActivation>(sp => sp.GetRequiredService<ClusterShardActivation>()));
        services.Replace(ServiceDescriptor.Singleton<IShardMapSource, ClusterShardMapSource>());
        services.AddGrainRuntime(grains => grains.AddGrain<ISiloControlGrain, SiloControlGrain>());
        // Directory-placed grains (every grain type not marked Local): one activation in the cluster, found through the
        // grain directory, when the silo has one.
        // Their placement: the built-in directors and any IGrainPlacementDirector the host registered; prefer-local unless the
        // host registered its own GrainPlacementDirectors first (the silo does, from Silo:Cluster:GrainPlacement).
        services.TryAddSingleton(sp => new GrainPlacementDirectors(custom: sp.GetServices<IGrainPlacementDirector>()));
        services.TryAddSingleton(sp => new ClusterGrainRouter(sp.GetRequiredService<ActivationDirectory>(), sp.GetRequiredService<GrainTypeRegistry>(),
            sp.GetRequiredService<IGrainDirectory>(), sp.GetRequiredService<ClusterMembership>(), sp.GetRequiredService<SiloConnections>(),
            sp.GetService<ILogger<ClusterGrainRouter>>(), sp.GetRequiredService<GrainPlacementDirectors>()));
        services.Replace(ServiceDescriptor.Singleton<IGrainCallInvoker>(sp => sp.GetService<IGrainDirectory>() is null
            ? sp.GetRequiredService<LocalGrainCallInvoker>()
            : sp.GetRequiredService<ClusterGrainRouter>()));
        services.Replace(ServiceDescriptor.Singleton<IGrainActivationGate>(sp => sp.GetService<IGrainDirectory>() is null
            ? null!
            : sp.GetRequiredService<ClusterGrainRouter>()));
        services.AddSingleton<MembershipAgent>();
        services.AddHostedService(sp => sp.GetRequiredService<MembershipAgent>());
        services.AddSingleton<ShardOwnershipService>();
        services.AddHostedService(sp => sp.GetRequiredService<ShardOwnershipService>());
        return services;
    }
}
