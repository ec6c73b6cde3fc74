using Microsoft.Extensions.DependencyInjection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>Registers grains and configures the grain runtime (see <c>AddGrainRuntime</c>).</summary>
public sealed class GrainRuntimeBuilder
{
    private readonly GrainTypeRegistry _registry;

    internal GrainRuntimeBuilder(IServiceCollection services, GrainTypeRegistry registry)
    {
        Services = services;
        _registry = registry;
    }

    /// <summary>The service collection, for registering services grains depend on.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Registers <typeparamref name="TGrain"/> as the implementation of <typeparamref name="TGrainInterface"/>, validating both now.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the problem (see <see cref="GrainTypeRegistry.Register(Type, Type)"/>).</exception>
    public GrainRuntimeBuilder AddGrain<TGrainInterface, TGrain>()
        where TGrainInterface : IGrain
        where TGrain : Grain, TGrainInterface
    {
        _registry.Register<TGrainInterface, TGrain>();
        return this;
    }

    /// <summary>Registers <paramref name="grainClass"/> as the implementation of <paramref name="grainInterface"/>, validating both now.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the problem (see <see cref="GrainTypeRegistry.Register(Type, Type)"/>).</exception>
    public GrainRuntimeBuilder AddGrain(Type grainInterface, Type grainClass)
    {
        _registry.Register(grainInterface, grainClass);
        return this;
    }

    /// <summary>Configures idle collection (<see cref="GrainCollectionOptions"/>); validated when the runtime starts.</summary>
    public GrainRuntimeBuilder ConfigureCollection(Action<GrainCollectionOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }

    /// <summary>Configures runtime limits (<see cref="GrainRuntimeOptions"/>); validated when the runtime starts.</summary>
    public GrainRuntimeBuilder ConfigureRuntime(Action<GrainRuntimeOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }
}
