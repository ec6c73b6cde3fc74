namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// What the code running right now is part of: the activation whose turn it is and the call chain (outermost first,
/// ending with this activation). Flows with the async execution context, so grain references created or used inside a
/// turn stamp outgoing calls with the chain, which is how cycles are detected.
/// </summary>
internal sealed class GrainCallContext
{
    private static readonly AsyncLocal<GrainCallContext?> CurrentContext = new();

    public GrainCallContext(GrainActivation activation, GrainId[] chain)
    {
        Activation = activation;
        Chain = chain;
    }

    public GrainActivation Activation { get; }

    public GrainId[] Chain { get; }

    public static GrainCallContext? Current
    {
        get => CurrentContext.Value;
        set => CurrentContext.Value = value;
    }

    /// <summary><paramref name="chain"/> followed by <paramref name="self"/>.</summary>
    public static GrainId[] Extend(IReadOnlyList<GrainId> chain, GrainId self)
    {
        var result = new GrainId[chain.Count + 1];
        for (int i = 0; i < chain.Count; i++) result[i] = chain[i];
        result[^1] = self;
        return result;
    }
}

/// <summary>Grain call helpers for grain code.</summary>
public static class GrainCallChain
{
    /// <summary>
    /// Until disposed, grain calls made on this thread start a new call chain instead of extending the current one. For a
    /// call that is not part of the current request's logic and never calls back into it — e.g. a silo asking another
    /// silo's control grain to open a shard it just handed over (both control grains have the same id, so the extended
    /// chain would look reentrant). The chain is captured when the call is made, so the scope only needs to cover that.
    /// </summary>
    public static IDisposable StartNew() => new Scope(GrainCallContext.Current);

    private sealed class Scope : IDisposable
    {
        private readonly GrainCallContext? _saved;

        public Scope(GrainCallContext? saved)
        {
            _saved = saved;
            GrainCallContext.Current = null;
        }

        public void Dispose() => GrainCallContext.Current = _saved;
    }
}
