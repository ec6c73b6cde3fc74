using System.Reflection;

namespace Rustorium.Grid.Runtime.Grains;

/// <summary>The shape of a grain method's result.</summary>
public enum GrainMethodReturnKind : byte
{
    /// <summary><see cref="Task"/>: no result.</summary>
    Task = 1,

    /// <summary><see cref="Task{TResult}"/>.</summary>
    TaskOfT = 2,

    /// <summary><see cref="ValueTask"/>: no result.</summary>
    ValueTask = 3,

    /// <summary><see cref="ValueTask{TResult}"/>.</summary>
    ValueTaskOfT = 4,
}

/// <summary>One validated grain interface method: its wire id, concurrency, parameters and result shape.</summary>
public sealed class GrainMethodDescription
{
    private GrainMethodDescription(
        MethodInfo method, ushort id, bool isReadOnly, bool isAlwaysInterleave, GrainMethodReturnKind returnKind, Type? resultType,
        Type[] parameterTypes, int cancellationTokenIndex,
        Func<object, ValueTask<object?>> awaitGrainResult, Func<ValueTask<object?>, object> toCallerResult)
    {
        Method = method;
        Id = id;
        IsReadOnly = isReadOnly;
        IsAlwaysInterleave = isAlwaysInterleave;
        ReturnKind = returnKind;
        ResultType = resultType;
        ParameterTypes = parameterTypes;
        CancellationTokenIndex = cancellationTokenIndex;
        AwaitGrainResult = awaitGrainResult;
        ToCallerResult = toCallerResult;
    }

    /// <summary>The interface method.</summary>
    public MethodInfo Method { get; }

    /// <summary>The method's wire id (<see cref="GrainMethodAttribute"/>).</summary>
    public ushort Id { get; }

    /// <summary>True if the method carries <see cref="ReadOnlyAttribute"/> and may interleave with other read-only calls.</summary>
    public bool IsReadOnly { get; }

    /// <summary>
    /// True if the method carries <see cref="AlwaysInterleaveAttribute"/>: its calls are admitted at once, whatever the
    /// activation is running, and never wait in the activation's queue. Never true together with <see cref="IsReadOnly"/>.
    /// </summary>
    public bool IsAlwaysInterleave { get; }

    /// <summary>The shape of the result.</summary>
    public GrainMethodReturnKind ReturnKind { get; }

    /// <summary>The result type for <see cref="GrainMethodReturnKind.TaskOfT"/>/<see cref="GrainMethodReturnKind.ValueTaskOfT"/>; null otherwise.</summary>
    public Type? ResultType { get; }

    /// <summary>The declared parameter types, in order (a <see cref="CancellationToken"/> included).</summary>
    public IReadOnlyList<Type> ParameterTypes { get; }

    /// <summary>
    /// Index of the <see cref="CancellationToken"/> parameter, or -1. That argument never travels in
    /// <see cref="GrainCall.Arguments"/> (its slot is null): the caller's token is passed to
    /// <see cref="IGrainCallInvoker.InvokeAsync"/> and the silo hands the grain a token of its own that follows it.
    /// </summary>
    public int CancellationTokenIndex { get; }

    /// <summary>Silo side: awaits the task object a grain method returned and boxes its result (null for no result).</summary>
    internal Func<object, ValueTask<object?>> AwaitGrainResult { get; }

    /// <summary>Caller side: turns the invoker's boxed result into the object the interface method returns.</summary>
    internal Func<ValueTask<object?>, object> ToCallerResult { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Method.DeclaringType?.Name}.{Method.Name} [{Id}]";

    internal static GrainMethodDescription Create(MethodInfo method, ushort id, string member)
    {
        if (method.IsGenericMethodDefinition) throw GrainInterfaceDescription.Invalid($"{member} is generic; generic grain methods are not supported.");

        Type returnType = method.ReturnType;
        GrainMethodReturnKind kind;
        Type? resultType = null;
        if (returnType == typeof(Task)) kind = GrainMethodReturnKind.Task;
        else if (returnType == typeof(ValueTask)) kind = GrainMethodReturnKind.ValueTask;
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(Task<>)) { kind = GrainMethodReturnKind.TaskOfT; resultType = returnType.GetGenericArguments()[0]; }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(ValueTask<>)) { kind = GrainMethodReturnKind.ValueTaskOfT; resultType = returnType.GetGenericArguments()[0]; }
        else
        {
            throw GrainInterfaceDescription.Invalid(
                $"{member} returns {Describe(returnType)}; grain methods must return Task, Task<T>, ValueTask or ValueTask<T> because every call is asynchronous (it may queue behind other calls or cross the network).");
        }

        ParameterInfo[] parameters = method.GetParameters();
        int tokenIndex = -1;
        var types = new Type[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            Type p = parameters[i].ParameterType;
            if (p.IsByRef) throw GrainInterfaceDescription.Invalid($"{member}: parameter '{parameters[i].Name}' is ref/out/in; grain method arguments are passed by value (they may cross the network).");
            if (p.IsPointer || p.IsByRefLike) throw GrainInterfaceDescription.Invalid($"{member}: parameter '{parameters[i].Name}' of type {p.Name} cannot be passed to a grain.");
            if (p == typeof(CancellationToken))
            {
                if (tokenIndex >= 0) throw GrainInterfaceDescription.Invalid($"{member} takes more than one CancellationToken; at most one is allowed.");
                tokenIndex = i;
            }
            types[i] = p;
        }

        bool isReadOnly = method.IsDefined(typeof(ReadOnlyAttribute), inherit: false);
        bool isAlwaysInterleave = method.IsDefined(typeof(AlwaysInterleaveAttribute), inherit: false);
        if (isReadOnly && isAlwaysInterleave)
        {
            throw GrainInterfaceDescription.Invalid(
                $"{member} has both [ReadOnly] and [AlwaysInterleave]; choose one. [AlwaysInterleave] already admits the call alongside anything, and [ReadOnly] would promise callers of other read-only methods that it never overlaps a writer.");
        }
        var (awaitGrain, toCaller) = kind switch
        {
            GrainMethodReturnKind.Task => (ResultAdapters.AwaitTask, ResultAdapters.ToTask),
            GrainMethodReturnKind.ValueTask => (ResultAdapters.AwaitValueTask, ResultAdapters.ToValueTask),
            GrainMethodReturnKind.TaskOfT => (Bind<Func<object, ValueTask<object?>>>(nameof(ResultAdapters.AwaitTaskOf), resultType!), Bind<Func<ValueTask<object?>, object>>(nameof(ResultAdapters.ToTaskOf), resultType!)),
            _ => (Bind<Func<object, ValueTask<object?>>>(nameof(ResultAdapters.AwaitValueTaskOf), resultType!), Bind<Func<ValueTask<object?>, object>>(nameof(ResultAdapters.ToValueTaskOf), resultType!)),
        };
        return new GrainMethodDescription(method, id, isReadOnly, isAlwaysInterleave, kind, resultType, types, tokenIndex, awaitGrain, toCaller);
    }

    private static string Describe(Type t) => t == typeof(void) ? "void" : t.Name;

    private static TDelegate Bind<TDelegate>(string name, Type resultType) where TDelegate : Delegate =>
        typeof(ResultAdapters).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(resultType)
            .CreateDelegate<TDelegate>();

    /// <summary>
    /// The four result shapes, bridged to and from the boxed <c>ValueTask&lt;object?&gt;</c> that crosses the call
    /// boundary. Bound once per method (reflection at description time, plain delegate calls per call).
    /// </summary>
    private static class ResultAdapters
    {
        internal static readonly Func<object, ValueTask<object?>> AwaitTask = async t => { await ((Task)t).ConfigureAwait(false); return null; };
        internal static readonly Func<object, ValueTask<object?>> AwaitValueTask = async t => { await ((ValueTask)t).ConfigureAwait(false); return null; };
        internal static readonly Func<ValueTask<object?>, object> ToTask = r => r.IsCompletedSuccessfully ? Task.CompletedTask : r.AsTask();
        internal static readonly Func<ValueTask<object?>, object> ToValueTask = r => r.IsCompletedSuccessfully ? default(ValueTask) : new ValueTask(r.AsTask());

        internal static async ValueTask<object?> AwaitTaskOf<T>(object t) => await ((Task<T>)t).ConfigureAwait(false);

        internal static async ValueTask<object?> AwaitValueTaskOf<T>(object t) => await ((ValueTask<T>)t).ConfigureAwait(false);

        internal static object ToTaskOf<T>(ValueTask<object?> r) => r.IsCompletedSuccessfully ? Task.FromResult((T)r.Result!) : Convert<T>(r);

        internal static object ToValueTaskOf<T>(ValueTask<object?> r) => r.IsCompletedSuccessfully ? new ValueTask<T>((T)r.Result!) : new ValueTask<T>(Convert<T>(r));

        private static async Task<T> Convert<T>(ValueTask<object?> r) => (T)(await r.ConfigureAwait(false))!;
    }
}
