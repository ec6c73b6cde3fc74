namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// A grain called itself, directly or through other grains (A → B → A), while the calling turn was still running.
/// </summary>
/// <remarks>
/// Turns are not reentrant: the calling turn holds its activation until the call returns, and the call cannot start
/// until the calling turn ends, so the call would wait for itself forever. The runtime sees the target in the call's
/// <see cref="GrainCall.CallChain"/> and fails the call at once instead. This holds for read-only calls too: a read-only
/// call to oneself could be queued behind a waiting writer, which waits for the caller. Restructure the grain (call a
/// private method directly, or schedule the work with a timer). Code <see cref="GridErrorCode.Internal"/>: it is a bug in
/// grain code, never the client's fault.
/// </remarks>
public sealed class GrainReentrancyException : GridException
{
    /// <summary>Creates the error for a call to <paramref name="target"/> along <paramref name="callChain"/>.</summary>
    public GrainReentrancyException(GrainId target, IReadOnlyList<GrainId> callChain)
        : base(GridErrorCode.Internal,
            $"Reentrant grain call refused: {target} is already waiting on this call chain ({string.Join(" -> ", callChain)} -> {target}). " +
            "Grain turns are not reentrant, so the call would wait for itself forever; call the method directly or schedule the work with a timer.")
    {
        Target = target;
        CallChain = callChain;
    }

    /// <summary>The grain that was called.</summary>
    public GrainId Target { get; }

    /// <summary>The call chain the call arrived with, outermost first.</summary>
    public IReadOnlyList<GrainId> CallChain { get; }
}
