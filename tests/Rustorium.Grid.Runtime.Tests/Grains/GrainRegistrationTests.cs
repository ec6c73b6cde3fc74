using Microsoft.Extensions.DependencyInjection;
using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

public interface IMissingIdGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Fine();

    Task Unmarked();
}

public interface IDuplicateIdGrain : IGrainWithIntegerKey
{
    [GrainMethod(3)] Task First();

    [GrainMethod(3)] Task Second();
}

public interface IBaseGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Inherited();
}

public interface IDerivedClashGrain : IBaseGrain
{
    [GrainMethod(1)] Task Own();
}

public interface IDerivedGrain : IBaseGrain
{
    [GrainMethod(2)] Task<int> Own();
}

public interface IIntReturnGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] int Count();
}

public interface IVoidReturnGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] void Fire();
}

public interface IZeroIdGrain : IGrainWithIntegerKey
{
    [GrainMethod(0)] Task Zero();
}

public interface IRefParameterGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Bump(ref int value);
}

public interface IUnkeyedGrain : IGrain
{
    [GrainMethod(1)] Task Ping();
}

public interface IPropertyGrain : IGrainWithIntegerKey
{
    int Value { get; }
}

[GrainType("bad/name")]
public interface IBadNameGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Ping();
}

[GrainType("test-clash")]
public interface IClashFirstGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Ping();
}

[GrainType("test-clash")]
public interface IClashSecondGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task Ping();
}

public interface IReadOnlyMismatchGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task<int> Get();
}

public sealed class ReadOnlyMismatchGrain : Grain, IReadOnlyMismatchGrain
{
    [ReadOnly]
    public Task<int> Get() => Task.FromResult(1);
}

public sealed class NotAGrain : IReadOnlyMismatchGrain
{
    public Task<int> Get() => Task.FromResult(1);
}

public sealed class DerivedGrain : Grain, IDerivedGrain
{
    public Task Inherited() => Task.CompletedTask;

    public Task<int> Own() => Task.FromResult(GrainId.IntegerKey > 0 ? 2 : 0);
}

public sealed class OtherLifecycleGrain : Grain, ILifecycleGrain
{
    public Task<Guid> GetActivationId() => Task.FromResult(Guid.Empty);

    public Task Deactivate() => Task.CompletedTask;

    public ValueTask<string> GetIdSeenByConstructor() => new("");
}

public sealed class GrainRegistrationTests
{
    private static GridException Refused(Type grainInterface)
    {
        var fromDescription = Assert.Throws<GridException>(() => GrainInterfaceDescription.Get(grainInterface));
        Assert.Equal(GridErrorCode.InvalidArgument, fromDescription.Code);
        Assert.Contains(grainInterface.Name, fromDescription.Message);
        return fromDescription;
    }

    [Fact]
    public void AMethodWithoutAnIdIsRefused()
    {
        var error = Refused(typeof(IMissingIdGrain));
        Assert.Contains("Unmarked", error.Message);
        Assert.Contains("[GrainMethod(id)]", error.Message);
        Assert.Contains("append-only", error.Message);

        // The same check guards references and registration.
        var factory = new GrainFactory(new NoInvoker());
        Assert.Throws<GridException>(() => factory.GetGrain<IMissingIdGrain>(1));
        Assert.Throws<GridException>(() => new GrainTypeRegistry().Register(typeof(IMissingIdGrain), typeof(DerivedGrain)));
    }

    [Fact]
    public void DuplicateIdsAreRefused()
    {
        var error = Refused(typeof(IDuplicateIdGrain));
        Assert.Contains("First", error.Message);
        Assert.Contains("Second", error.Message);
        Assert.Contains("[GrainMethod(3)]", error.Message);

        var inherited = Refused(typeof(IDerivedClashGrain));
        Assert.Contains("IBaseGrain.Inherited", inherited.Message);
        Assert.Contains("IDerivedClashGrain.Own", inherited.Message);
    }

    [Fact]
    public void UnsupportedReturnTypesAreRefused()
    {
        var error = Refused(typeof(IIntReturnGrain));
        Assert.Contains("Count", error.Message);
        Assert.Contains("returns Int32", error.Message);
        Assert.Contains("Task, Task<T>, ValueTask or ValueTask<T>", error.Message);

        Assert.Contains("returns void", Refused(typeof(IVoidReturnGrain)).Message);
    }

    [Fact]
    public void OtherInvalidInterfacesAreRefusedWithTheReason()
    {
        Assert.Contains("reserved", Refused(typeof(IZeroIdGrain)).Message);
        Assert.Contains("ref/out/in", Refused(typeof(IRefParameterGrain)).Message);
        Assert.Contains("must extend IGrainWithIntegerKey or IGrainWithStringKey", Refused(typeof(IUnkeyedGrain)).Message);
        Assert.Contains("properties or events", Refused(typeof(IPropertyGrain)).Message);
        Assert.Contains("\"bad/name\"", Refused(typeof(IBadNameGrain)).Message);
    }

    [Fact]
    public void GrainTypeNamesAreUniqueAndFindDescriptionsByName()
    {
        var first = GrainInterfaceDescription.Get(typeof(IClashFirstGrain));
        var clash = Assert.Throws<GridException>(() => GrainInterfaceDescription.Get(typeof(IClashSecondGrain)));
        Assert.Contains("IClashFirstGrain", clash.Message);
        Assert.Contains("\"test-clash\"", clash.Message);

        Assert.True(GrainInterfaceDescription.TryGet("test-clash", out var found));
        Assert.Same(first, found);
        Assert.True(first.TryGetMethod(1, out var ping));
        Assert.Equal(nameof(IClashFirstGrain.Ping), ping.Method.Name);
        Assert.False(first.TryGetMethod(2, out _));
    }

    [Fact]
    public void BadImplementationsAreRefused()
    {
        var registry = new GrainTypeRegistry();

        var notAGrain = Assert.Throws<GridException>(() => registry.Register(typeof(IReadOnlyMismatchGrain), typeof(NotAGrain)));
        Assert.Contains("must derive from", notAGrain.Message);

        var readOnly = Assert.Throws<GridException>(() => registry.Register<IReadOnlyMismatchGrain, ReadOnlyMismatchGrain>());
        Assert.Contains("put [ReadOnly] on the grain interface method", readOnly.Message);

        registry.Register<ILifecycleGrain, LifecycleGrain>();
        registry.Register<ILifecycleGrain, LifecycleGrain>(); // the same pair again is fine
        var twice = Assert.Throws<GridException>(() => registry.Register<ILifecycleGrain, OtherLifecycleGrain>());
        Assert.Contains("already implemented by", twice.Message);
    }

    [Fact]
    public void RegistrationErrorsSurfaceWhenGrainsAreAdded()
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<GridException>(() => services.AddGrainRuntime(grains => grains.AddGrain(typeof(IDuplicateIdGrain), typeof(DerivedGrain))));
        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
    }

    [Fact]
    public async Task InheritedMethodsAreCallable()
    {
        await using var silo = await TestSilo.StartAsync(grains => grains.AddGrain<IDerivedGrain, DerivedGrain>());
        var grain = silo.Factory.GetGrain<IDerivedGrain>(3);

        await grain.Inherited().Within();
        Assert.Equal(2, await grain.Own().Within());
        var description = GrainInterfaceDescription.Get(typeof(IDerivedGrain));
        Assert.Equal([(ushort)1, (ushort)2], description.Methods.Select(m => m.Id));
    }

    [Fact]
    public async Task CallsToUnregisteredGrainTypesFailWithUnknownShard()
    {
        await using var silo = await TestSilo.StartAsync();
        var unregistered = silo.Factory.GetGrain<IDerivedGrain>(1);

        var error = await Assert.ThrowsAsync<GridException>(() => unregistered.Own().Within());
        Assert.Equal(GridErrorCode.UnknownShard, error.Code);
        Assert.Contains(typeof(IDerivedGrain).FullName!, error.Message);
    }

    [Fact]
    public void OptionsAreValidatedAtStartUp()
    {
        static GridException Start(Action<GrainRuntimeBuilder> configure)
        {
            var services = new ServiceCollection();
            services.AddGrainRuntime(configure);
            using var provider = services.BuildServiceProvider();
            return Assert.Throws<GridException>(() => provider.GetRequiredService<ActivationDirectory>());
        }

        Assert.Contains("CollectionAge", Start(g => g.ConfigureCollection(o => o.CollectionAge = TimeSpan.Zero)).Message);
        Assert.Contains("CollectionQuantum", Start(g => g.ConfigureCollection(o => o.CollectionQuantum = TimeSpan.FromDays(2))).Message);
        Assert.Contains("MaxQueuedCallsPerActivation", Start(g => g.ConfigureRuntime(o => o.MaxQueuedCallsPerActivation = 0)).Message);

        var defaults = new GrainCollectionOptions();
        Assert.Equal(TimeSpan.FromMinutes(15), defaults.CollectionAge);
        defaults.CollectionAge = Timeout.InfiniteTimeSpan;
        defaults.Validate();
    }

    private sealed class NoInvoker : IGrainCallInvoker
    {
        public ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
