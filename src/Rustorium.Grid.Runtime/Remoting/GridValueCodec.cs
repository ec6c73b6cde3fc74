using System.Collections.Concurrent;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// The explicit value encoding of grain call arguments and results (docs/protocol.md, "Grain calls"): every value is a
/// <see cref="GridValueTag"/> followed by a body whose layout is fixed by the tag. Decoding is driven by the
/// <em>declared</em> type (a grain method's parameter or result type), so a value is accepted only if its tag is the
/// declared type's (or <see cref="GridValueTag.Null"/> where null is allowed).
/// </summary>
/// <remarks>
/// <para>
/// Supported types: <see cref="bool"/>, <see cref="int"/>, <see cref="long"/>, <see cref="ulong"/>, <see cref="string"/>,
/// <c>byte[]</c>, every enum (by underlying value; <see cref="SyncMode"/>, <see cref="BatchOperationKind"/>,
/// <see cref="GridErrorCode"/>, ...), <c>T?</c> of a supported value type, <c>T[]</c> and <c>IReadOnlyList&lt;T&gt;</c> of
/// a supported <c>T</c>, and the contract records <see cref="KeyRange"/>, <see cref="BatchOperation"/>,
/// <see cref="WriteResult"/>, <see cref="ProvenWriteResult"/>, <see cref="ReadResult"/>, <see cref="KeyValue"/>,
/// <see cref="ScanPage"/>, <see cref="ShardProof"/>, <see cref="ShardStatus"/>, <see cref="ShardMap"/>,
/// <see cref="ShardMapEntry"/> and <see cref="OwnerHint"/>. More record types are added with <see cref="Register{T}"/>.
/// </para>
/// <para>
/// Failure modes: encoding a value the wire cannot carry (unsupported type, above a limit, a lone surrogate, a required
/// field null) throws <see cref="GridException"/> with <see cref="GridErrorCode.InvalidArgument"/>; decoding anything but
/// exactly what the declared type allows (another tag, truncation, trailing garbage, a value outside its enum, a record its
/// own constructor refuses) throws <see cref="GridErrorCode.ProtocolViolation"/>, never another exception.
/// </para>
/// <para>Thread-safe. Registration may happen at any time, but both ends of a connection must register the same codecs
/// under the same tags, before the first call that needs them.</para>
/// </remarks>
public sealed class GridValueCodec
{
    /// <summary>Longest <c>byte[]</c> value: 64 MiB (the largest value <see cref="GridLimits"/> allows).</summary>
    public const int MaxBytesLength = 64 * 1024 * 1024;

    /// <summary>Longest key field of a contract record (range bounds, batch and scan keys): 64 KiB, the largest key <see cref="GridLimits"/> allows.</summary>
    public const int MaxKeyLength = 64 * 1024;

    /// <summary>Longest string value, in UTF-8 bytes: 16 MiB.</summary>
    public const int MaxStringBytes = 16 * 1024 * 1024;

    /// <summary>Most elements of an array or list: 16,777,216.</summary>
    public const int MaxCollectionCount = 16 * 1024 * 1024;

    private readonly ConcurrentDictionary<Type, ValueCodec?> _codecs = new();
    private readonly ConcurrentDictionary<Type, ValueCodec> _registered = new();
    private readonly ConcurrentDictionary<uint, Type> _tags = new();
    private readonly ConcurrentDictionary<GrainMethodDescription, GrainMethodCodec> _methods = new();
    private readonly object _registerLock = new();

    /// <summary>A codec with the built-in types only.</summary>
    public GridValueCodec()
    {
        AddBuiltIn<bool>(GridValueTag.Bool, new BoolValueCodec());
        AddBuiltIn<int>(GridValueTag.Int32, new Int32ValueCodec());
        AddBuiltIn<long>(GridValueTag.Int64, new Int64ValueCodec());
        AddBuiltIn<ulong>(GridValueTag.UInt64, new UInt64ValueCodec());
        AddBuiltIn<string>(GridValueTag.String, new StringValueCodec());
        AddBuiltIn<byte[]>(GridValueTag.Bytes, new BytesValueCodec());
        foreach (var codec in ContractCodecs.All) codec.AddTo(this);
    }

    /// <summary>
    /// The process-wide codec used by <see cref="RemoteGrainCallInvoker"/>, <see cref="GrainCallRequestHandler"/> and
    /// <see cref="GrainClient"/> unless they are given another. Register application records here at start-up.
    /// </summary>
    public static GridValueCodec Default { get; } = new();

    /// <summary>
    /// Makes <typeparamref name="T"/> encodable: as a parameter or result, as an element of arrays and lists, and as
    /// <c>T?</c> if it is a struct.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="codec"/> is null.</exception>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the tag is below
    /// <see cref="GridValueTag.FirstApplicationTag"/> or already taken, or <typeparamref name="T"/> already has a codec
    /// (built in or registered), or is an enum, array, list or nullable type (those are built in).</exception>
    public void Register<T>(GridTypeCodec<T> codec)
    {
        ArgumentNullException.ThrowIfNull(codec);
        if (codec.Tag < (uint)GridValueTag.FirstApplicationTag)
            throw GridException.InvalidArgument($"Tag {codec.Tag} of the codec for {ValueCodecs.Describe(typeof(T))} is reserved for built-in types; use {(uint)GridValueTag.FirstApplicationTag} or above.");
        Type type = typeof(T);
        if (type.IsEnum || type.IsArray || Nullable.GetUnderlyingType(type) is not null || IsReadOnlyList(type) || type == typeof(object))
            throw GridException.InvalidArgument($"{ValueCodecs.Describe(type)} cannot be registered: enums, arrays, lists and nullable types are encoded by the built-in rules.");
        Add(type, codec.Tag, new RegisteredValueCodec<T>(codec, this));
    }

    /// <summary>True if values of <paramref name="type"/> can be encoded (see the class remarks for the supported types).</summary>
    public bool IsSupported(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return GetCodec(type) is not null;
    }

    /// <summary>Writes <paramref name="value"/> as a value of the declared type <typeparamref name="T"/>: tag, then body.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if <typeparamref name="T"/> is not supported or the value cannot be encoded.</exception>
    public void Write<T>(ref GridWriter writer, T value) => CodecFor<T>().Write(ref writer, value);

    /// <summary>Reads a value of the declared type <typeparamref name="T"/> (null if the wire says Null and <typeparamref name="T"/> allows it).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> for anything else than a valid <typeparamref name="T"/>;
    /// <see cref="GridErrorCode.InvalidArgument"/> if <typeparamref name="T"/> is not supported.</exception>
    public T Read<T>(ref GridReader reader) => CodecFor<T>().Read(ref reader);

    /// <summary>Like <see cref="Read{T}"/>, but refuses Null: for a record field that must be present.</summary>
    /// <param name="reader">The input.</param>
    /// <param name="field">Names the field in the error message, e.g. <c>"ShardProof.Range"</c>.</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> if the value is Null or invalid.</exception>
    public T ReadRequired<T>(ref GridReader reader, string field) where T : class
    {
        long at = reader.Position;
        return CodecFor<T>().Read(ref reader)
            ?? throw GridWireFormat.ProtocolViolation($"{field} at offset {at} is null; it is required.");
    }

    /// <summary>Writes a boxed value of the declared type <paramref name="declaredType"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the type is not supported or the value is not of it.</exception>
    public void WriteValue(ref GridWriter writer, Type declaredType, object? value) => CodecFor(declaredType).WriteBoxed(ref writer, value);

    /// <summary>Reads a value of the declared type <paramref name="declaredType"/>, boxed.</summary>
    /// <exception cref="GridException">As <see cref="Read{T}"/>.</exception>
    public object? ReadValue(ref GridReader reader, Type declaredType) => CodecFor(declaredType).ReadBoxed(ref reader);

    /// <summary>The codec plan of a grain method: parameter and result codecs, built once and cached.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming every parameter or result type without a codec.</exception>
    internal GrainMethodCodec GetMethodCodec(GrainMethodDescription method)
    {
        if (_methods.TryGetValue(method, out var cached)) return cached;
        var built = GrainMethodCodec.Create(method, this); // not cached when it throws: a codec may be registered later
        return _methods.GetOrAdd(method, built);
    }

    /// <summary>The codec of <paramref name="type"/>, or null if it has none.</summary>
    internal ValueCodec? GetCodec(Type type)
    {
        if (_codecs.TryGetValue(type, out var codec)) return codec;
        codec = Build(type);
        // Only successes are cached: an unsupported type may become supported by a later registration.
        return codec is null ? null : _codecs.GetOrAdd(type, codec);
    }

    internal ValueCodec CodecFor(Type type) =>
        GetCodec(type) ?? throw GridException.InvalidArgument(
            $"{ValueCodecs.Describe(type)} has no wire encoding. Supported: bool, int, long, ulong, string, byte[], enums, nullable, arrays and IReadOnlyList<T> of those, the grid's contract records, and types registered with GridValueCodec.Register.");

    private ValueCodec<T> CodecFor<T>() => (ValueCodec<T>)CodecFor(typeof(T));

    internal void AddBuiltIn<T>(GridValueTag tag, ValueCodec codec) => Add(typeof(T), (uint)tag, codec);

    internal void AddBuiltIn<T>(GridTypeCodec<T> codec) => Add(typeof(T), codec.Tag, new RegisteredValueCodec<T>(codec, this));

    private void Add(Type type, uint tag, ValueCodec codec)
    {
        lock (_registerLock)
        {
            if (_registered.ContainsKey(type))
                throw GridException.InvalidArgument($"{ValueCodecs.Describe(type)} already has a codec.");
            if (_tags.TryGetValue(tag, out var owner))
                throw GridException.InvalidArgument($"Tag {tag} is already used by {ValueCodecs.Describe(owner)}; tags are unique per type.");
            _tags[tag] = type;
            _registered[type] = codec;
        }
    }

    private ValueCodec? Build(Type type)
    {
        if (_registered.TryGetValue(type, out var registered)) return registered;
        if (type.IsEnum) return Create(typeof(EnumValueCodec<>), type);
        if (Nullable.GetUnderlyingType(type) is { } underlying)
            return GetCodec(underlying) is { } inner ? Create(typeof(NullableValueCodec<>), underlying, inner) : null;
        if (type.IsSZArray)
        {
            Type element = type.GetElementType()!;
            return GetCodec(element) is { } inner ? Create(typeof(ArrayValueCodec<>), element, inner) : null;
        }
        if (IsReadOnlyList(type))
        {
            Type element = type.GetGenericArguments()[0];
            return GetCodec(element) is { } inner ? Create(typeof(ReadOnlyListValueCodec<>), element, inner) : null;
        }
        return null;
    }

    private static bool IsReadOnlyList(Type type) => type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>);

    private static ValueCodec Create(Type generic, Type argument, params object[] constructorArguments) =>
        (ValueCodec)Activator.CreateInstance(generic.MakeGenericType(argument), constructorArguments)!;
}

/// <summary>The codecs of one grain method's parameters (the <see cref="CancellationToken"/> never travels) and result.</summary>
internal sealed class GrainMethodCodec
{
    private readonly ValueCodec?[] _parameters; // null in the token's slot
    private readonly ValueCodec? _result;       // null for Task/ValueTask

    private GrainMethodCodec(GrainMethodDescription method, ValueCodec?[] parameters, ValueCodec? result)
    {
        Method = method;
        _parameters = parameters;
        _result = result;
        WireArgumentCount = parameters.Length - (method.CancellationTokenIndex >= 0 ? 1 : 0);
    }

    public GrainMethodDescription Method { get; }

    /// <summary>Arguments on the wire: the parameters other than the <see cref="CancellationToken"/>.</summary>
    public int WireArgumentCount { get; }

    public static GrainMethodCodec Create(GrainMethodDescription method, GridValueCodec codec)
    {
        var parameters = new ValueCodec?[method.ParameterTypes.Count];
        var missing = new List<string>();
        for (int i = 0; i < parameters.Length; i++)
        {
            if (i == method.CancellationTokenIndex) continue;
            parameters[i] = codec.GetCodec(method.ParameterTypes[i]);
            if (parameters[i] is null) missing.Add($"parameter {i} ({ValueCodecs.Describe(method.ParameterTypes[i])})");
        }
        ValueCodec? result = null;
        if (method.ResultType is { } resultType)
        {
            result = codec.GetCodec(resultType);
            if (result is null) missing.Add($"the result ({ValueCodecs.Describe(resultType)})");
        }
        if (missing.Count > 0)
        {
            throw GridException.InvalidArgument(
                $"Grain method {method} cannot be called remotely: {string.Join(", ", missing)} has no wire encoding. Register a GridTypeCodec for the type with GridValueCodec.Register, on the client and the silo.");
        }
        return new GrainMethodCodec(method, parameters, result);
    }

    /// <summary>Count, then every argument but the token's slot.</summary>
    public void WriteArguments(ref GridWriter writer, IReadOnlyList<object?> arguments)
    {
        if (arguments.Count != _parameters.Length)
            throw GridException.InvalidArgument($"{Method} takes {_parameters.Length} arguments; the call carries {arguments.Count}.");
        writer.WriteVarUInt32((uint)WireArgumentCount);
        for (int i = 0; i < _parameters.Length; i++) _parameters[i]?.WriteBoxed(ref writer, arguments[i]);
    }

    /// <summary>Reads what <see cref="WriteArguments"/> wrote; the token's slot is null.</summary>
    public object?[] ReadArguments(ref GridReader reader)
    {
        long at = reader.Position;
        uint count = reader.ReadVarUInt32();
        if (count != (uint)WireArgumentCount)
            throw GridWireFormat.ProtocolViolation($"{Method} takes {WireArgumentCount} arguments on the wire; the call at offset {at} carries {count}.");
        var arguments = _parameters.Length == 0 ? [] : new object?[_parameters.Length];
        for (int i = 0; i < _parameters.Length; i++) arguments[i] = _parameters[i]?.ReadBoxed(ref reader);
        return arguments;
    }

    /// <summary>The result as a value; nothing for a method without one.</summary>
    public void WriteResult(ref GridWriter writer, object? result) => _result?.WriteBoxed(ref writer, result);

    /// <summary>Reads a whole response body: exactly one value of the result type, or nothing for a method without one.</summary>
    public object? ReadResult(ReadOnlySpan<byte> body)
    {
        if (_result is null)
        {
            if (!body.IsEmpty)
                throw GridWireFormat.ProtocolViolation($"{Method} has no result, but the response carries {body.Length} byte(s).");
            return null;
        }
        var reader = new GridReader(body);
        object? value = _result.ReadBoxed(ref reader);
        reader.ExpectEnd();
        return value;
    }
}
