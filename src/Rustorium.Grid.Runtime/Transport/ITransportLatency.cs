namespace Rustorium.Grid.Runtime.Transport;

/// <summary>
/// Simulated one-way network delay between named peers, applied by the transport to every frame it sends
/// (there is no netem on the machines the grid is tested on). Used to emulate inter-region latency on one host.
/// </summary>
/// <remarks>
/// Called once per frame sent, from any thread: implementations must be thread-safe and cheap (a table
/// lookup). Frames stay in order: a frame is never sent before one queued earlier on the same connection,
/// even if the delay shrinks. Frames sent before the peer's name is known (a client's Hello) are not delayed.
/// </remarks>
public interface ITransportLatency
{
    /// <summary>The delay to add before a frame from <paramref name="localName"/> reaches the wire towards <paramref name="remoteName"/>; <see cref="TimeSpan.Zero"/> for none.</summary>
    /// <param name="localName">This side's name (the silo's or client's configured name).</param>
    /// <param name="remoteName">The peer's name from its Hello/HelloAck.</param>
    TimeSpan GetOneWayDelay(string localName, string remoteName);
}

/// <summary>The same one-way delay towards every peer.</summary>
/// <param name="Delay">Delay added to every frame sent; must not be negative.</param>
public sealed record FixedTransportLatency(TimeSpan Delay) : ITransportLatency
{
    /// <inheritdoc />
    public TimeSpan GetOneWayDelay(string localName, string remoteName) => Delay;
}
