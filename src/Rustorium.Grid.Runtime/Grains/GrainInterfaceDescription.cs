using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// A validated grain interface: its grain type name, key kind and method table (wire id → method). Built once per
/// interface by <see cref="Get"/> and shared by grain references (caller side) and activations (silo side), so both
/// agree on what a method id means.
/// </summary>
public sealed class GrainInterfaceDescription
{
    private static readonly ConcurrentDictionary<Type, GrainInterfaceDescription> Cache = new();
    private static readonly ConcurrentDictionary<string, GrainInterfaceDescription> ByName = new(StringComparer.Ordinal);

    private readonly Dictionary<ushort, GrainMethodDescription> _byId;
    private readonly Dictionary<RuntimeMethodHandle, GrainMethodDescription> _byHandle;

    private GrainInterfaceDescription(Type interfaceType, string name, GrainKeyKind keyKind, List<GrainMethodDescription> methods)
    {
        InterfaceType = interfaceType;
        Name = name;
        KeyKind = keyKind;
        methods.Sort((a, b) => a.Id.CompareTo(b.Id));
        Methods = methods.AsReadOnly();
        _byId = methods.ToDictionary(m => m.Id);
        _byHandle = methods.ToDictionary(m => m.Method.MethodHandle);
    }

    /// <summary>The grain interface.</summary>
    public Type InterfaceType { get; }

    /// <summary>The grain type name: <see cref="GrainTypeAttribute"/> if present, else the interface's full name.</summary>
    public string Name { get; }

    /// <summary>How grains of this interface are keyed.</summary>
    public GrainKeyKind KeyKind { get; }

    /// <summary>Every method, inherited ones included, ordered by wire id.</summary>
    public IReadOnlyList<GrainMethodDescription> Methods { get; }

    /// <summary>The method with wire id <paramref name="id"/>, if the interface has one.</summary>
    public bool TryGetMethod(ushort id, [NotNullWhen(true)] out GrainMethodDescription? method) => _byId.TryGetValue(id, out method);

    internal GrainMethodDescription GetMethod(MethodInfo method) =>
        _byHandle.TryGetValue(method.MethodHandle, out var description)
            ? description
            : throw new InvalidOperationException($"{method.DeclaringType?.Name}.{method.Name} is not a method of grain interface {InterfaceType.FullName}.");

    /// <summary>
    /// The description of <paramref name="grainInterface"/>, validated on first use and cached.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="grainInterface"/> is null.</exception>
    /// <exception cref="GridException">
    /// <see cref="GridErrorCode.InvalidArgument"/> with a message naming the interface and member, if the type is not a
    /// valid grain interface (see <see cref="IGrain"/> for the rules).
    /// </exception>
    public static GrainInterfaceDescription Get(Type grainInterface)
    {
        ArgumentNullException.ThrowIfNull(grainInterface);
        if (Cache.TryGetValue(grainInterface, out var cached)) return cached;
        // Invalid interfaces are not cached: they throw every time, with the same message.
        var built = Build(grainInterface);
        var claimed = ByName.GetOrAdd(built.Name, built);
        if (claimed.InterfaceType != grainInterface)
        {
            throw Invalid($"Grain interfaces {claimed.InterfaceType.FullName} and {grainInterface.FullName} both have the grain type name \"{built.Name}\"; give one of them a different [GrainType(name)].");
        }
        return Cache.GetOrAdd(grainInterface, claimed);
    }

    /// <summary>
    /// The description of the grain interface named <paramref name="grainType"/>, if that interface has been described in
    /// this process (by <see cref="Get"/>, which every grain reference and registration goes through). This is how a call
    /// invoker that only has a <see cref="GrainCall"/> finds the parameter and result types of its method.
    /// </summary>
    public static bool TryGet(string grainType, [NotNullWhen(true)] out GrainInterfaceDescription? description)
    {
        ArgumentNullException.ThrowIfNull(grainType);
        return ByName.TryGetValue(grainType, out description);
    }

    private static GrainInterfaceDescription Build(Type type)
    {
        string what = $"Grain interface {type.FullName ?? type.Name}";
        if (!type.IsInterface) throw Invalid($"{type.FullName} is not an interface; grain references are created for grain interfaces only.");
        if (type.IsGenericType) throw Invalid($"{what} is generic; generic grain interfaces are not supported (their type names are not stable on the wire).");
        if (type == typeof(IGrain) || type == typeof(IGrainWithIntegerKey) || type == typeof(IGrainWithStringKey))
            throw Invalid($"{what} is a marker; declare a grain interface that extends it.");

        bool integer = typeof(IGrainWithIntegerKey).IsAssignableFrom(type);
        bool @string = typeof(IGrainWithStringKey).IsAssignableFrom(type);
        if (integer == @string)
        {
            throw Invalid(integer
                ? $"{what} extends both IGrainWithIntegerKey and IGrainWithStringKey; a grain has exactly one kind of key."
                : $"{what} must extend IGrainWithIntegerKey or IGrainWithStringKey.");
        }

        string name = type.GetCustomAttribute<GrainTypeAttribute>()?.Name ?? type.FullName!;
        if (!GrainId.IsValidTypeName(name))
            throw Invalid($"{what} has the grain type name \"{name}\", which is invalid: it must be 1..{GrainId.MaxTypeNameLength} characters with no '/', whitespace or control characters.");

        var methods = new List<GrainMethodDescription>();
        var seen = new Dictionary<ushort, MethodInfo>();
        foreach (Type declaring in new[] { type }.Concat(type.GetInterfaces()))
        {
            if (declaring == typeof(IGrain) || declaring == typeof(IGrainWithIntegerKey) || declaring == typeof(IGrainWithStringKey)) continue;
            if (declaring.IsGenericType) throw Invalid($"{what} inherits the generic interface {declaring.Name}; generic grain interfaces are not supported.");
            if (declaring.GetProperties().Length > 0 || declaring.GetEvents().Length > 0)
                throw Invalid($"{what}: {declaring.Name} declares properties or events; grain interfaces may declare methods only.");

            foreach (MethodInfo method in declaring.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                string member = $"{what}: method {declaring.Name}.{method.Name}";
                if (method.IsStatic) throw Invalid($"{member} is static; grain interfaces may declare instance methods only.");
                if (!method.IsAbstract) throw Invalid($"{member} has a default implementation; grain interface methods are always forwarded to the grain, so default implementations are not supported.");
                var attribute = method.GetCustomAttribute<GrainMethodAttribute>()
                    ?? throw Invalid($"{member} has no [GrainMethod(id)] attribute. Every grain interface method needs an explicit, stable wire id, e.g. [GrainMethod(1)]; ids are append-only (never renumbered or reused).");
                if (attribute.Id == 0) throw Invalid($"{member} has [GrainMethod(0)]; id 0 is reserved, use 1..65535.");
                if (seen.TryGetValue(attribute.Id, out var other))
                    throw Invalid($"{what}: methods {other.DeclaringType!.Name}.{other.Name} and {declaring.Name}.{method.Name} both have [GrainMethod({attribute.Id})]; ids must be unique within the interface (including inherited methods).");
                seen.Add(attribute.Id, method);
                methods.Add(GrainMethodDescription.Create(method, attribute.Id, member));
            }
        }
        return new GrainInterfaceDescription(type, name, integer ? GrainKeyKind.Integer : GrainKeyKind.String, methods);
    }

    internal static GridException Invalid(string message) => GridException.InvalidArgument(message);
}
