using System.Diagnostics;
using System.Reflection;
using System.Text;
using Rustorium.Grid.Testing;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>
/// A real <c>rustorium-silo</c> process (<c>dotnet rustorium-silo.dll …</c>) with its output captured, stopped with
/// SIGTERM as an operator or an orchestrator would.
/// </summary>
internal sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly object _gate = new();

    private SiloProcess(Process process, int port, int httpPort)
    {
        _process = process;
        Port = port;
        HttpPort = httpPort;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public int Port { get; }
    public int HttpPort { get; }
    public HttpClient Http { get; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Everything the process wrote so far (stdout and stderr interleaved), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_gate) return _output.ToString();
        }
    }

    public static string SiloAssembly =>
        typeof(SiloProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "SiloAssembly").Value!;

    public static SiloProcess Start(string dataDirectory, params string[] extraArgs)
    {
        int port = LoopbackPorts.Take();
        int httpPort = LoopbackPorts.Take();
        return StartOn(dataDirectory, port, httpPort, extraArgs);
    }

    /// <summary>Starts the silo on the given ports (to restart one where its clients expect it).</summary>
    public static SiloProcess StartOn(string dataDirectory, int port, int httpPort, params string[] extraArgs)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])[SiloAssembly, "--port", port.ToString(), "--http-port", httpPort.ToString(), "--data-dir", dataDirectory,
                     "--name", "proc-silo", "--region", "test-region", .. extraArgs])
            start.ArgumentList.Add(arg);
        // The silo reads RGRID_* variables: do not let the test machine's leak in.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("RGRID_", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var silo = new SiloProcess(process, port, httpPort);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        if (!process.Start()) throw new InvalidOperationException("dotnet did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_gate) _output.AppendLine(line);
    }

    /// <summary>Polls GET /health until it answers "ok"; fails at the deadline or if the process exits first.</summary>
    public async Task WaitUntilHealthyAsync(TimeSpan deadline)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new Xunit.Sdk.XunitException($"The silo exited with {_process.ExitCode} before it was healthy:\n{Output}");
            try
            {
                var response = await Http.GetAsync("/health");
                if (response.IsSuccessStatusCode && await response.Content.ReadAsStringAsync() == "ok") return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            if (stopwatch.Elapsed > deadline)
                throw new Xunit.Sdk.XunitException($"The silo was not healthy within {deadline}:\n{Output}");
            // Poll interval: the process gives no other signal that Kestrel accepts connections.
            await Task.WhenAny(_process.WaitForExitAsync(), Task.Delay(100));
        }
    }

    /// <summary>Sends SIGTERM (what `kill`, systemd and Kubernetes send), as Process.Kill would send SIGKILL.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString()]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>
    /// Sends a signal by name (<c>KILL</c>, <c>STOP</c>, <c>CONT</c>, <c>TERM</c>) with <c>kill</c>: the fault tests crash,
    /// pause and resume silos with it.
    /// </summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, _process.Id.ToString()]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} {_process.Id} exited with {kill.ExitCode}");
    }

    /// <summary>The exit code, or a failure if the process is still running at the deadline.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"The silo did not exit within {deadline}:\n{Output}");
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
