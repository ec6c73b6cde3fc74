using Rustorium.Grid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Rustorium.Grid.Runtime.Grains;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the grain runtime to a service collection.</summary>
public static class GrainRuntimeServiceCollectionExtensions
{
    /// <summary>
    /// Adds the grain runtime: the <see cref="GrainTypeRegistry"/>, the <see cref="ActivationDirectory"/>, a local
    /// <see cref="IGrainCallInvoker"/>, the <see cref="IGrainFactory"/>, and a hosted service that collects idle
    /// activations while the host runs and deactivates every grain when it stops. Safe to call more than once (the
    /// registrations accumulate). Services registered before this call (for example another
    /// <see cref="IGrainCallInvoker"/>) are kept.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Registers grains and sets options.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if a grain registration is invalid (thrown here, at registration).</exception>
    public static IServiceCollection AddGrainRuntime(this IServiceCollection services, Action<GrainRuntimeBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var registry = services.FirstOrDefault(d => d.ServiceType == typeof(GrainTypeRegistry))?.ImplementationInstance as GrainTypeRegistry;
        if (registry is null)
        {
            registry = new GrainTypeRegistry();
            services.AddSingleton(registry);
        }

        services.AddLogging();
        services.AddOptions();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new ActivationDirectory(
            sp.GetRequiredService<GrainTypeRegistry>(),
            sp,
            sp.GetRequiredService<IOptions<GrainCollectionOptions>>().Value,
            sp.GetRequiredService<IOptions<GrainRuntimeOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ActivationDirectory>>()));
        services.TryAddSingleton(sp => new LocalGrainCallInvoker(sp.GetRequiredService<ActivationDirectory>()));
        services.TryAddSingleton<IGrainCallInvoker>(sp => sp.GetRequiredService<LocalGrainCallInvoker>());
        services.TryAddSingleton<IGrainFactory>(sp => new GrainFactory(sp.GetRequiredService<IGrainCallInvoker>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, GrainRuntimeService>());

        configure?.Invoke(new GrainRuntimeBuilder(services, registry));
        return services;
    }
}
