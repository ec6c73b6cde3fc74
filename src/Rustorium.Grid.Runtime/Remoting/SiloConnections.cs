using System.Collections.Concurrent;
using System.Net;
using Rustorium.Grid.Runtime.Transport;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// Connections from this process to other silos, one multiplexed <see cref="GrainClient"/> per endpoint, opened on first
/// use and dropped when it fails (the next call reconnects). Silo-to-silo grain calls go through it.
/// </summary>
public sealed class SiloConnections : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<GrainClient>>> _clients = new(StringComparer.Ordinal);
    private readonly GridConnectionOptions _connectionOptions;
    private readonly RemoteGrainCallOptions _callOptions;

    /// <summary>Creates an empty pool.</summary>
    public SiloConnections(GridConnectionOptions? connectionOptions = null, RemoteGrainCallOptions? callOptions = null)
    {
        _connectionOptions = connectionOptions ?? GridConnectionOptions.Default;
        _callOptions = callOptions ?? RemoteGrainCallOptions.Default;
    }

    /// <summary>A client for the silo at <paramref name="endpoint"/> (<c>host:port</c>).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if it cannot be reached; <see cref="GridErrorCode.InvalidArgument"/> for a malformed endpoint.</exception>
    public async Task<GrainClient> GetAsync(string endpoint, CancellationToken cancellationToken)
    {
        var target = Parse(endpoint);
        var lazy = _clients.GetOrAdd(endpoint, _ => new Lazy<Task<GrainClient>>(
            () => GrainClient.ConnectAsync(target, _connectionOptions, _callOptions, CancellationToken.None)));
        try
        {
            var client = await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (!client.Connection.IsConnected)
            {
                Forget(endpoint, lazy);
                return await GetAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
            return client;
        }
        catch (Exception e) when (e is GridException or System.Net.Sockets.SocketException or IOException)
        {
            Forget(endpoint, lazy);
            throw e as GridException ?? new GridException(GridErrorCode.Unavailable, $"Cannot reach silo {endpoint}: {e.Message}", e);
        }
    }

    private void Forget(string endpoint, Lazy<Task<GrainClient>> lazy)
    {
        if (_clients.TryRemove(KeyValuePair.Create(endpoint, lazy)) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            _ = lazy.Value.Result.DisposeAsync().AsTask();
    }

    /// <summary>Parses <c>host:port</c> (an IPv6 host in brackets); a host name is resolved when connecting.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>.</exception>
    public static EndPoint Parse(string endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), out int port) || port is <= 0 or > 65535)
            throw GridException.InvalidArgument($"An endpoint is host:port; got '{endpoint}'.");
        var host = endpoint[..colon].Trim('[', ']');
        return IPAddress.TryParse(host, out var address) ? new IPEndPoint(address, port) : new DnsEndPoint(host, port);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var lazy in _clients.Values)
        {
            if (!lazy.IsValueCreated) continue;
            try
            {
                await (await lazy.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is GridException or System.Net.Sockets.SocketException or IOException)
            {
            }
        }
        _clients.Clear();
    }
}
