namespace Rustorium.Grid;

/// <summary>
/// The explicit, stable wire id of a grain interface method. Required on every method of a grain interface.
/// </summary>
/// <remarks>
/// <para>
/// A call travels between client and silo as (grain id, interface, method id, arguments): the id, not the method's
/// name or signature, says which method to run. Ids therefore follow the same rule as every wire value in the grid:
/// <b>explicit and append-only</b>. A new method takes a new id; a removed method's id is retired and never reused;
/// renaming a method or reordering the interface never changes an id. Changing the parameters of a method changes its
/// contract: give the new shape a new id and keep (or retire) the old one.
/// </para>
/// <para>
/// Ids must be unique across the grain interface including the interfaces it inherits, and must not be 0 (reserved
/// as "no method" on the wire). Both rules are checked when the interface is registered or first used.
/// </para>
/// </remarks>
/// <example><code>
/// public interface ICounterGrain : IGrainWithIntegerKey
/// {
///     [GrainMethod(1)] Task&lt;long&gt; Add(long delta, CancellationToken cancellationToken);
///     [GrainMethod(2), ReadOnly] ValueTask&lt;long&gt; Get();
/// }
/// </code></example>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class GrainMethodAttribute : Attribute
{
    /// <summary>Gives the method its wire id (1..65535).</summary>
    public GrainMethodAttribute(ushort id)
    {
        Id = id;
    }

    /// <summary>The method's wire id.</summary>
    public ushort Id { get; }
}
