using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Serialization;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// The silo side of remote grain calls: an <see cref="IGridRequestHandler"/> for <see cref="GridServer"/> that decodes a
/// grain call (docs/protocol.md, "Grain calls"), runs it through <see cref="ActivationDirectory.InvokeAsync"/> (the very
/// path local calls take: the same validation, queueing, turns, reentrancy check and cancellation) and encodes the result.
/// </summary>
/// <remarks>
/// Errors, each answered as an Error frame for the call (the connection stays open):
/// <list type="bullet">
/// <item>a body that does not decode (unknown kind, truncated, wrong tags, trailing bytes): <see cref="GridErrorCode.ProtocolViolation"/>;</item>
/// <item>a grain type not hosted here: <see cref="GridErrorCode.UnknownShard"/>; another interface, key kind or an unknown method id:
/// <see cref="GridErrorCode.InvalidArgument"/> (the same errors and messages as a local call);</item>
/// <item>a <see cref="GridException"/> from the grain or the runtime: its code, message and owner hint;</item>
/// <item>the call's deadline passing or its caller cancelling: the grain method's token fires; the caller gets
/// <see cref="GridErrorCode.Timeout"/> or nothing (it has gone);</item>
/// <item>any other exception: <see cref="GridErrorCode.Internal"/> with the exception's type and message (never its stack
/// trace, which goes to the log).</item>
/// </list>
/// </remarks>
public sealed class GrainCallRequestHandler : IGridRequestHandler
{
    private readonly ActivationDirectory _directory;
    private readonly IGrainCallInvoker? _invoker;
    private readonly GridValueCodec _codec;
    private readonly ILogger _logger;

    /// <summary>Creates the handler over the silo's activations.</summary>
    /// <param name="directory">Runs the calls.</param>
    /// <param name="codec">Must register the same types under the same tags as the clients'; default <see cref="GridValueCodec.Default"/>.</param>
    /// <param name="logger">Where grain failures are logged with their stack traces; none by default.</param>
    /// <exception cref="ArgumentNullException"><paramref name="directory"/> is null.</exception>
    /// <param name="invoker">Runs the decoded calls; the directory itself by default (a cluster member passes its router).</param>
    public GrainCallRequestHandler(ActivationDirectory directory, GridValueCodec? codec = null, ILogger<GrainCallRequestHandler>? logger = null,
        IGrainCallInvoker? invoker = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        _directory = directory;
        _invoker = invoker;
        _codec = codec ?? GridValueCodec.Default;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <inheritdoc />
    public ValueTask HandleAsync(ReadOnlyMemory<byte> payload, GridRequestContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        GrainCall call;
        GrainMethodCodec method;
        ValueTask<object?> running;
        try
        {
            (call, method) = Decode(payload.Span);
            running = _invoker is null ? _directory.InvokeAsync(call, cancellationToken) : _invoker.InvokeAsync(call, cancellationToken);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException(ex);
        }

        if (running.IsCompletedSuccessfully)
        {
            try
            {
                WriteResult(context, call, method, running.Result);
                return default;
            }
            catch (Exception ex)
            {
                return ValueTask.FromException(ex);
            }
        }
        return CompleteAsync(running, context, call, method, cancellationToken);
    }

    private async ValueTask CompleteAsync(ValueTask<object?> running, GridRequestContext context, GrainCall call, GrainMethodCodec method, CancellationToken cancellationToken)
    {
        object? result;
        try
        {
            result = await running.ConfigureAwait(false);
        }
        catch (GridException)
        {
            throw; // code, message and owner hint go on the wire as they are
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw; // the transport answers: Timeout for a deadline, nothing for a caller that cancelled or left
        }
        catch (OperationCanceledException ex)
        {
            throw new GridException(GridErrorCode.Cancelled, $"Grain {call.Target} {method.Method} was cancelled: {ex.Message}");
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Remote call {Call} from {Peer} failed in the grain", call, context.Peer.Name);
            throw new GridException(GridErrorCode.Internal, $"Grain {call.Target} {method.Method} failed with {ex.GetType().Name}: {ex.Message}");
        }
        WriteResult(context, call, method, result);
    }

    private (GrainCall Call, GrainMethodCodec Method) Decode(ReadOnlySpan<byte> payload)
    {
        var reader = new GridReader(payload);
        var (target, interfaceName, methodId) = GrainCallBody.ReadHeader(ref reader);
        var unresolved = _directory.ResolveMethod(target, interfaceName, methodId, out _, out var description);
        if (unresolved is not null) throw unresolved;
        GrainMethodCodec method = _codec.GetMethodCodec(description!);
        object?[] arguments = method.ReadArguments(ref reader);
        GrainId[] chain = GrainCallBody.ReadCallChainToEnd(ref reader);
        return (new GrainCall(target, interfaceName, methodId, arguments, chain), method);
    }

    private void WriteResult(GridRequestContext context, GrainCall call, GrainMethodCodec method, object? result)
    {
        if (method.Method.ResultType is null) return;
        try
        {
            var writer = new GridWriter(context.Response);
            method.WriteResult(ref writer, result);
            writer.Commit();
        }
        catch (GridException ex)
        {
            // The grain returned something the wire cannot carry: a bug on this side, not the caller's.
            _logger.LogError(ex, "The result of remote call {Call} could not be encoded", call);
            throw new GridException(GridErrorCode.Internal, $"The result of grain {call.Target} {method.Method} could not be encoded: {ex.Message}");
        }
    }
}
