using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>A grain interface and the class that implements its grains in this silo.</summary>
public sealed class GrainTypeRegistration
{
    internal GrainTypeRegistration(GrainInterfaceDescription grainInterface, Type grainClass)
    {
        Interface = grainInterface;
        GrainClass = grainClass;
        var placement = grainClass.GetCustomAttribute<GrainPlacementAttribute>();
        Placement = placement?.Kind ?? GrainPlacementKind.Directory;
        PlacementDirector = placement?.Director;
    }

    /// <summary>The placement director named by <see cref="GrainPlacementAttribute.Director"/>; null for the silo's default.</summary>
    public string? PlacementDirector { get; }

    /// <summary>Where its activations live in a cluster (<see cref="GrainPlacementAttribute"/> on the class; default <see cref="GrainPlacementKind.Directory"/>).</summary>
    public GrainPlacementKind Placement { get; }

    /// <summary>The validated grain interface; its <see cref="GrainInterfaceDescription.Name"/> is the grain type name.</summary>
    public GrainInterfaceDescription Interface { get; }

    /// <summary>The implementation, a <see cref="Grain"/> subclass constructed with dependency injection.</summary>
    public Type GrainClass { get; }
}

/// <summary>
/// Maps grain interfaces (by grain type name) to the classes that implement them in this silo. Every registration is
/// validated when it is made, so a bad grain interface or class fails at start-up, not on the first call.
/// </summary>
/// <remarks>
/// One grain type per interface: the grain type name of a registration is its interface's name, so a class that
/// implements two grain interfaces is registered twice and its grains of each interface are separate activations
/// (unlike Orleans, where the grain type belongs to the class; see docs/runtime.md). Thread-safe.
/// </remarks>
public sealed class GrainTypeRegistry
{
    private static readonly (Type Attribute, string Name)[] ConcurrencyAttributes =
    [
        (typeof(ReadOnlyAttribute), "ReadOnly"),
        (typeof(AlwaysInterleaveAttribute), "AlwaysInterleave"),
    ];

    private readonly ConcurrentDictionary<string, GrainTypeRegistration> _byName = new(StringComparer.Ordinal);
    private readonly object _writeLock = new();

    /// <summary>Every registration.</summary>
    public IReadOnlyCollection<GrainTypeRegistration> Registrations => _byName.Values.ToArray();

    /// <summary>Registers <typeparamref name="TGrain"/> as the implementation of <typeparamref name="TGrainInterface"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the problem (see <see cref="Register(Type, Type)"/>).</exception>
    public void Register<TGrainInterface, TGrain>()
        where TGrainInterface : IGrain
        where TGrain : Grain, TGrainInterface
        => Register(typeof(TGrainInterface), typeof(TGrain));

    /// <summary>Registers <paramref name="grainClass"/> as the implementation of <paramref name="grainInterface"/>.</summary>
    /// <remarks>Registering the same pair again is a no-op.</remarks>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="GridException">
    /// <see cref="GridErrorCode.InvalidArgument"/> if the interface is not a valid grain interface (missing or duplicate
    /// <see cref="GrainMethodAttribute"/> ids, unsupported return types, ...), if the class is abstract, generic, not a
    /// <see cref="Grain"/>, does not implement the interface or has no public constructor, if the class puts
    /// <see cref="ReadOnlyAttribute"/> or <see cref="AlwaysInterleaveAttribute"/> on a method the interface does not mark
    /// the same way, or if the interface or its
    /// grain type name is already registered to something else.
    /// </exception>
    public void Register(Type grainInterface, Type grainClass)
    {
        ArgumentNullException.ThrowIfNull(grainInterface);
        ArgumentNullException.ThrowIfNull(grainClass);
        var description = GrainInterfaceDescription.Get(grainInterface);
        string what = $"Grain class {grainClass.FullName}";
        if (!grainClass.IsClass || grainClass.IsAbstract) throw Invalid($"{what} must be a non-abstract class.");
        if (grainClass.ContainsGenericParameters) throw Invalid($"{what} is an open generic type; register a closed type.");
        if (!typeof(Grain).IsAssignableFrom(grainClass)) throw Invalid($"{what} must derive from {typeof(Grain).FullName}.");
        if (!grainInterface.IsAssignableFrom(grainClass)) throw Invalid($"{what} does not implement {grainInterface.FullName}.");
        if (grainClass.GetConstructors().Length == 0) throw Invalid($"{what} has no public constructor; grains are constructed with dependency injection.");
        CheckConcurrencyAttributePlacement(description, grainClass, what);
        if (grainClass.GetCustomAttribute<GrainPlacementAttribute>() is { Kind: not GrainPlacementKind.Directory, Director: not null } placement)
            throw Invalid($"{what}: [GrainPlacement({placement.Kind})] names director \"{placement.Director}\", but only Directory-placed grains are placed by a director.");

        var registration = new GrainTypeRegistration(description, grainClass);
        lock (_writeLock)
        {
            if (_byName.TryGetValue(description.Name, out var existing))
            {
                if (existing.Interface.InterfaceType == grainInterface && existing.GrainClass == grainClass) return;
                throw Invalid(existing.Interface.InterfaceType == grainInterface
                    ? $"Grain interface {grainInterface.FullName} is already implemented by {existing.GrainClass.FullName}; it cannot also be implemented by {grainClass.FullName}."
                    : $"Grain type name \"{description.Name}\" of {grainInterface.FullName} is already used by {existing.Interface.InterfaceType.FullName}; give one of them a different [GrainType(name)].");
            }
            _byName[description.Name] = registration;
        }
    }

    /// <summary>The registration for grain type <paramref name="grainType"/> (a <see cref="GrainId.Type"/>), if any.</summary>
    public bool TryGet(string grainType, [NotNullWhen(true)] out GrainTypeRegistration? registration)
    {
        ArgumentNullException.ThrowIfNull(grainType);
        return _byName.TryGetValue(grainType, out registration);
    }

    private static void CheckConcurrencyAttributePlacement(GrainInterfaceDescription description, Type grainClass, string what)
    {
        foreach (Type declaring in description.Methods.Select(m => m.Method.DeclaringType!).Distinct())
        {
            InterfaceMapping map = grainClass.GetInterfaceMap(declaring);
            for (int i = 0; i < map.InterfaceMethods.Length; i++)
            {
                // On the class alone the attribute would silently do nothing: the runtime and callers read the interface.
                foreach (var (attribute, name) in ConcurrencyAttributes)
                {
                    if (map.TargetMethods[i].IsDefined(attribute, inherit: true) && !map.InterfaceMethods[i].IsDefined(attribute, inherit: false))
                    {
                        throw Invalid($"{what}: method {map.TargetMethods[i].Name} has [{name}] but {declaring.Name}.{map.InterfaceMethods[i].Name} does not; put [{name}] on the grain interface method, where callers and the runtime see it.");
                    }
                }
            }
        }
    }

    private static GridException Invalid(string message) => GridException.InvalidArgument(message);
}
