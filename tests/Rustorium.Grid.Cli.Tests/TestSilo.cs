using System.Diagnostics;
using System.Reflection;
using System.Text;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Cli.Tests;

/// <summary>
/// A real silo process on free ports with a temporary data directory, for the commands that talk to a grid
/// (the minimal start / health / stop of tests/Rustorium.Grid.Silo.Tests/SiloProcess.cs).
/// </summary>
internal sealed class TestSilo : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _dataDirectory;

    private TestSilo(Process process, int port, int httpPort, string dataDirectory)
    {
        _process = process;
        Port = port;
        HttpPort = httpPort;
        _dataDirectory = dataDirectory;
    }

    public int Port { get; }

    public int HttpPort { get; }

    public string StatusUrl => $"http://127.0.0.1:{HttpPort}/status";

    public string Endpoint => $"127.0.0.1:{Port}";

    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    private static string SiloAssembly =>
        typeof(TestSilo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "SiloAssembly").Value!;

    /// <summary>Starts a silo and waits until GET /health says "ok".</summary>
    /// <param name="extraArgs">More silo options, e.g. <c>--store postgres --postgres CONN</c> for a cluster member.</param>
    public static async Task<TestSilo> StartAsync(params string[] extraArgs)
    {
        int port = LoopbackPorts.Take();
        int httpPort = LoopbackPorts.Take();
        var data = Directory.CreateTempSubdirectory("grid-cli-silo-").FullName;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])[SiloAssembly, "--port", port.ToString(), "--http-port", httpPort.ToString(), "--data-dir", data, .. extraArgs])
            start.ArgumentList.Add(arg);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("RGRID_", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);

        var process = new Process { StartInfo = start };
        var silo = new TestSilo(process, port, httpPort, data);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        if (!process.Start()) throw new InvalidOperationException("dotnet did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await silo.DisposeAsync();
                throw new Xunit.Sdk.XunitException($"The silo exited with {process.ExitCode} before it was healthy:\n{silo.Output}");
            }
            try
            {
                var response = await http.GetAsync("/health");
                if (response.IsSuccessStatusCode && await response.Content.ReadAsStringAsync() == "ok") return silo;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                await silo.DisposeAsync();
                throw new Xunit.Sdk.XunitException($"The silo was not healthy within 60 s:\n{silo.Output}");
            }
            await Task.Delay(100);
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
