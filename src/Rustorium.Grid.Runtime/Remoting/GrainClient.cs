using System.Collections.Concurrent;
using System.Net;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// An <see cref="IGrainFactory"/> whose grain references call a remote silo over a <see cref="GridConnection"/>:
/// <c>await client.GetGrain&lt;IShardGrain&gt;(3).PutAsync(key, value, SyncMode.Full, ct)</c> runs on that silo.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="GetGrain{TGrainInterface}(long)"/> checks, once per interface, that every parameter and result type of
/// the interface has a wire encoding (<see cref="GridValueCodec"/>), so an interface that cannot be called remotely fails
/// when the first reference is made, naming the method and type, not on some later call. Calls fail as described on
/// <see cref="RemoteGrainCallInvoker"/>.
/// </para>
/// <para>
/// Every grain is called on this one silo: routing calls to the silo that hosts each grain (by the cluster directory or
/// the shard map) is the job of a routing invoker above this one. Thread-safe.
/// </para>
/// </remarks>
public sealed class GrainClient : IGrainFactory, IAsyncDisposable
{
    private readonly GrainFactory _factory;
    private readonly GridValueCodec _codec;
    private readonly bool _ownsConnection;
    private readonly ConcurrentDictionary<Type, bool> _checked = new();

    /// <summary>Creates a client over an open connection, which the caller keeps owning (disposing the client leaves it open).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="connection"/> is null.</exception>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options.</exception>
    public GrainClient(GridConnection connection, RemoteGrainCallOptions? options = null)
        : this(connection, options, ownsConnection: false)
    {
    }

    private GrainClient(GridConnection connection, RemoteGrainCallOptions? options, bool ownsConnection)
    {
        options ??= RemoteGrainCallOptions.Default;
        var invoker = new RemoteGrainCallInvoker(connection, options);
        Invoker = invoker;
        _factory = new GrainFactory(invoker);
        _codec = options.Codec;
        _ownsConnection = ownsConnection;
        Connection = connection;
    }

    /// <summary>Connects to the silo at <paramref name="endPoint"/> and returns a client that owns the connection (disposing the client closes it).</summary>
    /// <param name="endPoint">The silo's transport address.</param>
    /// <param name="connectionOptions">Transport settings; <see cref="GridConnectionOptions.Default"/> if null.</param>
    /// <param name="options">Call settings; <see cref="RemoteGrainCallOptions.Default"/> if null.</param>
    /// <param name="cancellationToken">Abandons the connection attempt.</param>
    /// <exception cref="GridException">As <see cref="GridConnection.ConnectAsync"/>; <see cref="GridErrorCode.InvalidArgument"/> for bad options.</exception>
    /// <exception cref="OperationCanceledException">The token fired.</exception>
    public static async Task<GrainClient> ConnectAsync(
        EndPoint endPoint, GridConnectionOptions? connectionOptions = null, RemoteGrainCallOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        (options ?? RemoteGrainCallOptions.Default).Validate();
        var connection = await GridConnection.ConnectAsync(endPoint, connectionOptions ?? GridConnectionOptions.Default, cancellationToken).ConfigureAwait(false);
        return new GrainClient(connection, options, ownsConnection: true);
    }

    /// <summary>The connection every call goes over.</summary>
    public GridConnection Connection { get; }

    /// <summary>Sends prepared <see cref="GrainCall"/>s over <see cref="Connection"/> (a silo forwarding a call it received uses it).</summary>
    public IGrainCallInvoker Invoker { get; }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> also if a method of the interface has a parameter or result type without a wire encoding.</exception>
    public TGrainInterface GetGrain<TGrainInterface>(long key) where TGrainInterface : IGrainWithIntegerKey
    {
        var grain = _factory.GetGrain<TGrainInterface>(key);
        EnsureRemotable(typeof(TGrainInterface));
        return grain;
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> also if a method of the interface has a parameter or result type without a wire encoding.</exception>
    public TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey
    {
        var grain = _factory.GetGrain<TGrainInterface>(key);
        EnsureRemotable(typeof(TGrainInterface));
        return grain;
    }

    /// <summary>Closes the connection if the client opened it (<see cref="ConnectAsync"/>); otherwise does nothing.</summary>
    public ValueTask DisposeAsync() => _ownsConnection ? Connection.DisposeAsync() : default;

    private void EnsureRemotable(Type grainInterface)
    {
        if (_checked.ContainsKey(grainInterface)) return;
        foreach (var method in GrainInterfaceDescription.Get(grainInterface).Methods) _codec.GetMethodCodec(method);
        _checked.TryAdd(grainInterface, true);
    }
}
