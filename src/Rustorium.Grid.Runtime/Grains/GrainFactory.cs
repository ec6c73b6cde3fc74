using System.Reflection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>
/// Creates grain references: <see cref="DispatchProxy"/> objects implementing the grain interface that forward every
/// call, as a <see cref="GrainCall"/>, to an <see cref="IGrainCallInvoker"/>.
/// </summary>
public sealed class GrainFactory : IGrainFactory
{
    private readonly IGrainCallInvoker _invoker;

    /// <summary>Creates a factory whose references send their calls to <paramref name="invoker"/>.</summary>
    public GrainFactory(IGrainCallInvoker invoker)
    {
        ArgumentNullException.ThrowIfNull(invoker);
        _invoker = invoker;
    }

    /// <inheritdoc />
    public TGrainInterface GetGrain<TGrainInterface>(long key) where TGrainInterface : IGrainWithIntegerKey
    {
        var description = GrainInterfaceDescription.Get(typeof(TGrainInterface));
        return GrainReference.Create<TGrainInterface>(GrainId.Create(description.Name, key), description, _invoker);
    }

    /// <inheritdoc />
    public TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(key);
        var description = GrainInterfaceDescription.Get(typeof(TGrainInterface));
        return GrainReference.Create<TGrainInterface>(GrainId.Create(description.Name, key), description, _invoker);
    }
}

/// <summary>
/// The base of every grain reference proxy (<see cref="DispatchProxy"/> derives the generated type from it). Two
/// references to the same grain through the same interface are equal.
/// </summary>
internal class GrainReference : DispatchProxy
{
    private GrainId _grainId;
    private GrainInterfaceDescription _interface = null!;
    private IGrainCallInvoker _invoker = null!;

    /// <summary>The grain this reference calls.</summary>
    public GrainId GrainId => _grainId;

    internal static TGrainInterface Create<TGrainInterface>(GrainId grainId, GrainInterfaceDescription description, IGrainCallInvoker invoker)
    {
        TGrainInterface proxy = DispatchProxy.Create<TGrainInterface, GrainReference>();
        var reference = (GrainReference)(object)proxy!;
        reference._grainId = grainId;
        reference._interface = description;
        reference._invoker = invoker;
        return proxy;
    }

    /// <inheritdoc />
    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        GrainMethodDescription method = _interface.GetMethod(targetMethod);
        ValueTask<object?> result;
        try
        {
            int count = args?.Length ?? 0;
            object?[] arguments = count == 0 ? [] : new object?[count];
            for (int i = 0; i < count; i++) arguments[i] = args![i];
            CancellationToken cancellationToken = default;
            if (method.CancellationTokenIndex >= 0)
            {
                // A token is a local object: it travels beside the call, not inside it.
                cancellationToken = (CancellationToken)arguments[method.CancellationTokenIndex]!;
                arguments[method.CancellationTokenIndex] = null;
            }
            var call = new GrainCall(_grainId, _interface.Name, method.Id, arguments, GrainCallContext.Current?.Chain);
            result = _invoker.InvokeAsync(call, cancellationToken);
        }
        catch (Exception ex)
        {
            // Grain methods are asynchronous: failures always arrive through the returned task.
            result = ValueTask.FromException<object?>(ex);
        }
        return method.ToCallerResult(result);
    }

    /// <inheritdoc />
    public override bool Equals(object? obj) =>
        obj is GrainReference other && other._grainId == _grainId && other._interface == _interface;

    /// <inheritdoc />
    public override int GetHashCode() => _grainId.GetHashCode();

    /// <inheritdoc />
    public override string ToString() => $"GrainReference({_grainId})";
}

/// <summary>Grain helpers.</summary>
public static class GrainExtensions
{
    /// <summary>The id of the grain behind a grain reference or a grain instance.</summary>
    /// <exception cref="ArgumentException"><paramref name="grain"/> is neither a grain reference nor a grain created by the runtime.</exception>
    public static GrainId GetGrainId(this IGrain grain) => grain switch
    {
        null => throw new ArgumentNullException(nameof(grain)),
        GrainReference reference => reference.GrainId,
        Grain instance => instance.GrainId,
        _ => throw new ArgumentException($"{grain.GetType().Name} is neither a grain reference nor a grain.", nameof(grain)),
    };
}
