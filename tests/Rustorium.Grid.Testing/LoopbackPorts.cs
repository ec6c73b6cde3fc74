using System.Net;
using System.Net.Sockets;

namespace Rustorium.Grid.Testing;

/// <summary>
/// Loopback TCP ports for servers the tests start (silos, PostgreSQL), chosen so that two of them cannot be handed the
/// same port.
/// </summary>
/// <remarks>
/// Binding port 0 and releasing it is not enough: the kernel takes such ports from the ephemeral range, where it also
/// takes the local port of every outgoing connection, and it may hand the same port out again before the server that
/// was told about it has bound it (CI once saw a silo's HTTP port equal another silo's grid port, started 3 ms
/// before). So ports come from below the ephemeral range (<c>/proc/sys/net/ipv4/ip_local_port_range</c>), are checked
/// free by binding them, and are never handed out twice by this process.
/// </remarks>
public static class LoopbackPorts
{
    private const int LowestPort = 20000;
    private static readonly object Gate = new();
    private static readonly HashSet<int> Issued = [];

    /// <summary>A port no other server holds now and this process has not handed out before.</summary>
    public static int Take()
    {
        int ephemeralStart = EphemeralRangeStart();
        int low = LowestPort, high = Math.Max(LowestPort + 1000, ephemeralStart); // [low, high)
        lock (Gate)
        {
            for (int attempt = 0; attempt < 1000; attempt++)
            {
                int port = Random.Shared.Next(low, high);
                if (Issued.Contains(port) || !IsFree(port)) continue;
                Issued.Add(port);
                return port;
            }
        }
        throw new InvalidOperationException($"No free loopback port found in [{low}, {high}) after 1000 attempts.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralRangeStart()
    {
        try
        {
            var fields = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 1 && int.TryParse(fields[0], out int start) && start > LowestPort) return start;
        }
        catch (IOException)
        {
            // Not Linux, or not readable: fall back to the IANA dynamic range's start.
        }
        catch (UnauthorizedAccessException)
        {
        }
        return 49152;
    }
}
