using System.Net;
using System.Net.Sockets;

namespace Rustorium.Grid.Silo;

/// <summary>
/// Start-up checks that need the machine rather than the values: are the ports free, can the data directory be
/// written. Run before anything is opened, so a silo that cannot run says why and changes nothing.
/// </summary>
internal static class SiloEnvironmentChecks
{
    /// <summary>Problems found (each naming its setting); empty if the silo can start here.</summary>
    public static IReadOnlyList<string> Check(GridSiloOptions options)
    {
        var problems = new List<string>();
        CheckPort(options.BindAddress, options.Port, "Silo:Port", "--port", problems);
        CheckPort(options.BindAddress, options.HttpPort, "Silo:HttpPort", "--http-port", problems);
        if (!options.IsCluster) CheckDataDirectory(options.ResolveDataDirectory(), problems); // a cluster member keeps no local data
        return problems;
    }

    /// <summary>Binds <paramref name="port"/> and lets it go: the only reliable way to know it is free right now.</summary>
    private static void CheckPort(IPAddress address, int port, string setting, string option, List<string> problems)
    {
        if (port == 0) return;
        try
        {
            var probe = new TcpListener(address, port);
            probe.Start();
            probe.Stop();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            problems.Add($"{setting}: port {port} on {address} is already in use (another silo?); choose a free one with {option} or 0 for any.");
        }
        catch (SocketException e)
        {
            problems.Add($"{setting}: cannot listen on {address}:{port}: {e.SocketErrorCode} ({e.Message}).");
        }
    }

    /// <summary>Creates the directory if needed and writes (then deletes) a probe file in it, as the store will.</summary>
    private static void CheckDataDirectory(string directory, List<string> problems)
    {
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"Silo:DataDirectory: cannot create {directory}: {e.Message}");
            return;
        }
        var probe = Path.Combine(directory, $".rustorium-silo-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using var stream = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            stream.WriteByte(0);
            stream.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"Silo:DataDirectory: {directory} is not writable: {e.Message}");
        }
    }
}
