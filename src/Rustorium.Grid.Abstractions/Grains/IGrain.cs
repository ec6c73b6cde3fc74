namespace Rustorium.Grid;

/// <summary>
/// Marker for grain interfaces. Application code never implements it directly: a grain interface extends
/// <see cref="IGrainWithIntegerKey"/> or <see cref="IGrainWithStringKey"/>, which says how its grains are keyed.
/// </summary>
/// <remarks>
/// Every method of a grain interface (including inherited ones) must
/// <list type="bullet">
/// <item>return <see cref="Task"/>, <see cref="Task{TResult}"/>, <see cref="ValueTask"/> or <see cref="ValueTask{TResult}"/>;</item>
/// <item>carry a <see cref="GrainMethodAttribute"/> with an id unique within the interface;</item>
/// <item>take no <c>ref</c>/<c>out</c>/<c>in</c> parameters, not be generic, and take at most one <see cref="CancellationToken"/>.</item>
/// </list>
/// Properties, events and generic grain interfaces are not supported. All of this is checked when the interface is
/// registered or first used, with a message naming the offending member.
/// </remarks>
public interface IGrain
{
}

/// <summary>A grain interface whose grains are identified by a 64-bit integer key (<see cref="IGrainFactory.GetGrain{TGrainInterface}(long)"/>).</summary>
public interface IGrainWithIntegerKey : IGrain
{
}

/// <summary>A grain interface whose grains are identified by a string key (<see cref="IGrainFactory.GetGrain{TGrainInterface}(string)"/>).</summary>
public interface IGrainWithStringKey : IGrain
{
}
