namespace Rustorium.Grid;

/// <summary>
/// Marks a grain interface method as read-only: it does not change the grain's state, so the runtime may interleave it
/// with other read-only calls of the same activation.
/// </summary>
/// <remarks>
/// <para>
/// A read-only call never runs at the same time as a non-read-only call of the same activation, and calls are admitted
/// first-in first-out: a non-read-only call waiting behind running read-only calls holds back the read-only calls that
/// arrived after it, so writers are never starved by a stream of readers.
/// </para>
/// <para>
/// Interleaving happens at <c>await</c> points: an activation still runs at most one piece of grain code at a time, so a
/// read-only method may touch grain fields without locks, but must not assume that nothing else ran while it awaited.
/// </para>
/// <para>
/// Put the attribute on the grain interface method (the contract the caller sees). Putting it only on the
/// implementing class's method is rejected at registration, because it would silently have no effect.
/// </para>
/// </remarks>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class ReadOnlyAttribute : Attribute
{
}
