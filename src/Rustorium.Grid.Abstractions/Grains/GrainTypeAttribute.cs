namespace Rustorium.Grid;

/// <summary>
/// Gives a grain interface a stable grain type name: the type part of every <see cref="GrainId"/> of its grains and the
/// interface name carried by calls on the wire and rows in the directory.
/// </summary>
/// <remarks>
/// Optional. Without it the name is the interface's full .NET name (namespace and name, with <c>+</c> for nesting),
/// which changes if the interface is moved or renamed; persisted grain ids then no longer match. Give every grain
/// interface that is persisted or called across processes an explicit name. Names are 1..256 characters, with no
/// <c>/</c>, whitespace or control characters, and must be unique among the registered grain interfaces.
/// </remarks>
[AttributeUsage(AttributeTargets.Interface, AllowMultiple = false, Inherited = false)]
public sealed class GrainTypeAttribute : Attribute
{
    /// <summary>Names the grain type.</summary>
    public GrainTypeAttribute(string name)
    {
        Name = name;
    }

    /// <summary>The grain type name.</summary>
    public string Name { get; }
}
