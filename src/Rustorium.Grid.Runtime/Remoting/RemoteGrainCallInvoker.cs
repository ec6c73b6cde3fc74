using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>Settings of remote grain calls (<see cref="RemoteGrainCallInvoker"/>, <see cref="GrainClient"/>).</summary>
public sealed record RemoteGrainCallOptions
{
    /// <summary>
    /// How long a call may take, end to end. It is sent to the silo as the call's deadline, where it cancels the grain
    /// method's token when it passes; the caller then gets <see cref="GridErrorCode.Timeout"/>. Positive and at most
    /// <see cref="int.MaxValue"/> ms, or <see cref="Timeout.InfiniteTimeSpan"/> for none. Default 30 s (as Orleans's
    /// response timeout).
    /// </summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The value codec; must register the same types under the same tags as the silo's. Default <see cref="GridValueCodec.Default"/>.</summary>
    public GridValueCodec Codec { get; init; } = GridValueCodec.Default;

    /// <summary>The defaults.</summary>
    public static RemoteGrainCallOptions Default { get; } = new();

    /// <summary>Checks every setting.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the setting.</exception>
    public void Validate()
    {
        if (ResponseTimeout != Timeout.InfiniteTimeSpan
            && (ResponseTimeout <= TimeSpan.Zero || ResponseTimeout.TotalMilliseconds > GridProtocol.MaxDeadlineMilliseconds))
        {
            throw GridException.InvalidArgument(
                $"RemoteGrainCallOptions.ResponseTimeout must be positive and at most {GridProtocol.MaxDeadlineMilliseconds} ms, or Timeout.InfiniteTimeSpan; got {ResponseTimeout}.");
        }
        if (Codec is null) throw GridException.InvalidArgument("RemoteGrainCallOptions.Codec must not be null.");
    }
}

/// <summary>
/// Runs grain calls on a remote silo over one <see cref="GridConnection"/>: encodes the <see cref="GrainCall"/> (see
/// docs/protocol.md, "Grain calls"), sends it with the call's deadline and cancellation, and decodes the result.
/// </summary>
/// <remarks>
/// <para>
/// Failure modes (all through the returned task): the silo's <see cref="GridException"/> with its code, message and
/// <see cref="GridException.OwnerHint"/> (a grain's non-grid exception arrives as <see cref="GridErrorCode.Internal"/>
/// carrying its type and message, never its stack trace); <see cref="GridErrorCode.Timeout"/> after
/// <see cref="RemoteGrainCallOptions.ResponseTimeout"/>; <see cref="OperationCanceledException"/> when the caller's
/// token fires (the silo is told and the grain method's token fires); <see cref="GridErrorCode.Unavailable"/> when the
/// connection is lost; <see cref="GridErrorCode.InvalidArgument"/> for an argument the wire cannot carry (nothing is
/// sent); <see cref="GridErrorCode.ProtocolViolation"/> for a response that does not decode as the declared result.
/// </para>
/// <para>Thread-safe; calls are multiplexed on the connection. The invoker does not own the connection.</para>
/// </remarks>
public sealed class RemoteGrainCallInvoker : IGrainCallInvoker
{
    private readonly GridConnection _connection;
    private readonly RemoteGrainCallOptions _options;

    /// <summary>Creates an invoker that sends every call over <paramref name="connection"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="connection"/> is null.</exception>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options.</exception>
    public RemoteGrainCallInvoker(GridConnection connection, RemoteGrainCallOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        options ??= RemoteGrainCallOptions.Default;
        options.Validate();
        _connection = connection;
        _options = options;
    }

    /// <summary>The connection calls are sent over.</summary>
    public GridConnection Connection => _connection;

    /// <inheritdoc />
    public ValueTask<object?> InvokeAsync(GrainCall call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        GrainMethodCodec method;
        Task<GridResponse> response;
        try
        {
            if (!GrainInterfaceDescription.TryGet(call.InterfaceName, out var grainInterface))
                throw GridException.InvalidArgument($"Grain interface \"{call.InterfaceName}\" is not known in this process; create references with IGrainFactory.GetGrain, which describes the interface.");
            if (!grainInterface.TryGetMethod(call.MethodId, out var description))
                throw GridException.InvalidArgument($"Grain interface \"{call.InterfaceName}\" has no method with id {call.MethodId}.");
            method = _options.Codec.GetMethodCodec(description);

            using var body = new PooledBufferWriter();
            var writer = new GridWriter(body);
            GrainCallBody.Write(ref writer, call, method);
            writer.Commit();
            // CallAsync copies the body before it returns, so the buffer goes back to the pool right away.
            response = _connection.CallAsync(body.WrittenMemory, _options.ResponseTimeout, cancellationToken);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<object?>(ex);
        }
        return ReadResponseAsync(response, method);
    }

    private static async ValueTask<object?> ReadResponseAsync(Task<GridResponse> pending, GrainMethodCodec method)
    {
        using GridResponse response = await pending.ConfigureAwait(false);
        return method.ReadResult(response.Payload.Span);
    }
}
