namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// One call to a grain, as it crosses the boundary between a grain reference and whatever runs it: the target grain,
/// the interface and method wire id (never a <see cref="System.Reflection.MethodInfo"/>), the arguments and the call
/// chain. Everything in it is plain data, so a remote invoker can encode it with the transport's codec.
/// </summary>
public sealed class GrainCall
{
    private static readonly GrainId[] EmptyChain = [];

    /// <summary>Describes a call.</summary>
    /// <param name="target">The grain to call.</param>
    /// <param name="interfaceName">The grain interface whose method table <paramref name="methodId"/> indexes (its <see cref="GrainInterfaceDescription.Name"/>).</param>
    /// <param name="methodId">The method's wire id (<see cref="GrainMethodAttribute"/>).</param>
    /// <param name="arguments">The arguments in declaration order; the <see cref="CancellationToken"/> slot, if any, is null.</param>
    /// <param name="callChain">The grains whose turns are waiting on this call, outermost first (empty for a call from outside any grain).</param>
    /// <exception cref="ArgumentNullException"><paramref name="interfaceName"/> or <paramref name="arguments"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="target"/> is <c>default</c>.</exception>
    public GrainCall(GrainId target, string interfaceName, ushort methodId, IReadOnlyList<object?> arguments, IReadOnlyList<GrainId>? callChain = null)
    {
        ArgumentNullException.ThrowIfNull(interfaceName);
        ArgumentNullException.ThrowIfNull(arguments);
        if (target.IsDefault) throw new ArgumentException("A call needs a target grain.", nameof(target));
        Target = target;
        InterfaceName = interfaceName;
        MethodId = methodId;
        Arguments = arguments;
        CallChain = callChain ?? EmptyChain;
    }

    /// <summary>The grain to call.</summary>
    public GrainId Target { get; }

    /// <summary>
    /// The grain interface whose method table <see cref="MethodId"/> indexes. Today every grain type has one interface, so
    /// this equals <see cref="GrainId.Type"/> of <see cref="Target"/>; it is carried separately so a grain type can expose
    /// several interfaces later without a wire change.
    /// </summary>
    public string InterfaceName { get; }

    /// <summary>The method's wire id.</summary>
    public ushort MethodId { get; }

    /// <summary>The arguments in declaration order; the <see cref="CancellationToken"/> slot, if any, is null.</summary>
    public IReadOnlyList<object?> Arguments { get; }

    /// <summary>
    /// The grains whose turns are (transitively) waiting for this call, outermost first. A call whose target is in its
    /// own chain would wait for itself; the runtime refuses it with <see cref="GrainReentrancyException"/>.
    /// </summary>
    public IReadOnlyList<GrainId> CallChain { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Target} {InterfaceName}#{MethodId}";
}

/// <summary>
/// Runs grain calls. Grain references forward every call here; the local invoker queues it on the activation in this
/// process, a remote invoker sends it to the silo that hosts the grain. Grain code never sees which.
/// </summary>
public interface IGrainCallInvoker
{
    /// <summary>Runs <paramref name="call"/> and returns the method's result, boxed (null for <c>Task</c>/<c>ValueTask</c> methods).</summary>
    /// <param name="call">The call.</param>
    /// <param name="cancellationToken">
    /// The caller's token (taken from the method's <see cref="CancellationToken"/> parameter, if it has one). A call
    /// cancelled before its turn starts never runs and completes as cancelled; once it runs, the grain method sees a token
    /// that is cancelled with this one and decides itself.
    /// </param>
    /// <returns>The result, or the exception the grain method threw, unchanged.</returns>
    ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken);
}
