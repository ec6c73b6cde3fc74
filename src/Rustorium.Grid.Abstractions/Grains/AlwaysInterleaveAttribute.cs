namespace Rustorium.Grid;

/// <summary>
/// Marks a grain interface method as always interleaving: it is admitted at once, whatever else the activation is
/// running (reads, writes, other interleaving calls), like Orleans's <c>[AlwaysInterleave]</c>.
/// </summary>
/// <remarks>
/// For grains whose state is guarded by their own concurrency control, such as a shard whose writes must reach its
/// group commit together (with exclusive turns each write would wait for the previous one's commit, so no group would
/// ever hold more than one write). Grain code still runs one piece at a time on the activation's scheduler; the
/// method must not assume nothing else ran while it awaited. Put it on the interface method, as with
/// <see cref="ReadOnlyAttribute"/>.
/// </remarks>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class AlwaysInterleaveAttribute : Attribute
{
}
