namespace Rustorium.Grid.Grains.Hosting;

/// <summary>
/// Who this silo is, as grains report it: its name, its region and the grid endpoint clients reach it on (the
/// address the shard map hands out). One instance per silo, registered by <c>AddShardGrains</c>.
/// </summary>
public sealed class LocalSiloDetails
{
    private string _endpoint;

    /// <summary>Describes the local silo.</summary>
    /// <param name="name">The silo's name (logs, status, the transport handshake).</param>
    /// <param name="region">The region it runs in.</param>
    /// <param name="endpoint">Its advertised grid endpoint, <c>host:port</c>; may be refined once the transport listens (port 0).</param>
    /// <exception cref="ArgumentException">A value is null or blank.</exception>
    public LocalSiloDetails(string name, string region, string endpoint)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(region);
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        Name = name;
        Region = region;
        _endpoint = endpoint;
    }

    /// <summary>The silo's name.</summary>
    public string Name { get; }

    /// <summary>The region the silo runs in.</summary>
    public string Region { get; }

    /// <summary>
    /// The grid endpoint (<c>host:port</c>) the shard map and shard statuses point at. The host sets it again once the
    /// transport is listening, when the port was chosen by the operating system (port 0); before that it is the
    /// configured address.
    /// </summary>
    public string Endpoint
    {
        get => Volatile.Read(ref _endpoint);
        set
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(value);
            Volatile.Write(ref _endpoint, value);
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Region}) at {Endpoint}";
}
