using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rustorium.Grid.Crypto.Tests.CrossCheck;

/// <summary>
/// circomlibjs 0.1.7, the reference implementation, as one long-lived <c>node tests/crosscheck/reference.mjs</c>
/// process shared by every cross-check test (node start-up and wasm initialisation cost about a second, so
/// the tests batch their cases into few requests against one process).
/// </summary>
/// <remarks>
/// Start-up installs the pinned npm dependencies with <c>npm ci</c> when <c>node_modules/circomlibjs</c> is
/// missing or of another version, serialised across test processes by a lock file. Node.js 20+ and npm are
/// required: without them start-up fails with a message naming what to install; the cross-check is never
/// skipped. Every step has a deadline; a request that misses its deadline kills the node process and fails.
/// </remarks>
public sealed class CircomlibjsReference : IAsyncLifetime
{
    /// <summary>Deadline for <c>npm ci</c> (a cold install downloads about 60 packages).</summary>
    private static readonly TimeSpan InstallDeadline = TimeSpan.FromMinutes(5);

    /// <summary>Deadline for another process's install to release the lock.</summary>
    private static readonly TimeSpan LockDeadline = TimeSpan.FromMinutes(6);

    /// <summary>Deadline for node to start, initialise the wasm and answer the first request.</summary>
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(60);

    /// <summary>Default deadline for one request.</summary>
    public static readonly TimeSpan DefaultRequestDeadline = TimeSpan.FromSeconds(60);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly SemaphoreSlim _exchange = new(1, 1);
    private readonly StringBuilder _stderr = new();
    private Process? _node;
    private long _nextId;
    private string? _broken;

    /// <summary>The repository root (the directory holding Rustorium.Grid.sln).</summary>
    public string RepoRoot { get; private set; } = "";

    /// <summary>tests/crosscheck, the node project.</summary>
    public string ProjectDirectory { get; private set; } = "";

    /// <summary>Wall-clock time spent in <c>npm ci</c> by this process, or zero when it was not needed.</summary>
    public TimeSpan InstallTime { get; private set; }

    /// <summary>Wall-clock time from starting node to its first answer.</summary>
    public TimeSpan StartTime { get; private set; }

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        RepoRoot = FindRepoRoot();
        ProjectDirectory = Path.Combine(RepoRoot, "tests", "crosscheck");
        using var install = new CancellationTokenSource(LockDeadline + InstallDeadline);
        await EnsureInstalledAsync(install.Token);
        try
        {
            await StartAsync();
        }
        catch
        {
            Kill(); // a fixture whose initialisation failed may never be disposed
            throw;
        }
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_node is null) return;
        try
        {
            _node.StandardInput.Close(); // reference.mjs exits when stdin closes
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _node.WaitForExitAsync(exit.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            Kill();
        }
        finally
        {
            _node.Dispose();
            _node = null;
            _exchange.Dispose();
        }
    }

    /// <summary>Poseidon (circomlibjs <c>buildPoseidon</c>) of each list of 1..16 decimal inputs; decimal results.</summary>
    public async Task<string[]> PoseidonAsync(IReadOnlyList<string[]> cases, CancellationToken cancellationToken = default) =>
        (await RequestAsync("poseidon", cases, DefaultRequestDeadline, cancellationToken)).Deserialize<string[]>(Json)!;

    /// <summary>The PoseidonBytes mapping of each byte string, computed in JavaScript from its documented definition.</summary>
    public async Task<string[]> PoseidonBytesAsync(IReadOnlyList<byte[]> cases, CancellationToken cancellationToken = default) =>
        (await RequestAsync("bytes", cases.Select(Convert.ToHexString).ToArray(), DefaultRequestDeadline, cancellationToken))
            .Deserialize<string[]>(Json)!;

    /// <summary>Replays each operation sequence on a fresh, empty circomlibjs tree (what <c>newMemEmptyTrie()</c> returns).</summary>
    public async Task<SmtReferenceResult[]> SmtAsync(IReadOnlyList<SmtReferenceCase> cases, TimeSpan deadline, CancellationToken cancellationToken = default) =>
        (await RequestAsync("smt", cases, deadline, cancellationToken)).Deserialize<SmtReferenceResult[]>(Json)!;

    /// <summary>
    /// Sends one request line and reads its answer line, within <paramref name="deadline"/>.
    /// </summary>
    /// <exception cref="TimeoutException">The deadline passed; the node process has been killed.</exception>
    /// <exception cref="InvalidOperationException">Node answered with an error, exited, or was killed earlier.</exception>
    public async Task<JsonNode> RequestAsync(string kind, object cases, TimeSpan deadline, CancellationToken cancellationToken = default)
    {
        await _exchange.WaitAsync(cancellationToken);
        try
        {
            if (_broken is not null) throw new InvalidOperationException($"The circomlibjs reference process is unusable: {_broken}");
            long id = ++_nextId;
            string request = JsonSerializer.Serialize(new { id, kind, cases }, Json);
            string line;
            try
            {
                line = await ExchangeAsync(request).WaitAsync(deadline, cancellationToken);
            }
            catch (TimeoutException)
            {
                _broken = $"request {id} ({kind}) missed its {deadline.TotalSeconds:0} s deadline";
                Kill();
                throw new TimeoutException($"circomlibjs reference: {_broken}.{StderrTail()}");
            }
            catch (OperationCanceledException)
            {
                // The answer may still come and would be read as the next request's: start no other exchange.
                _broken = $"request {id} ({kind}) was cancelled mid-exchange";
                Kill();
                throw;
            }

            var answer = JsonNode.Parse(line) ?? throw new InvalidOperationException($"circomlibjs reference: empty answer to request {id}.");
            if (answer["id"]?.GetValue<long>() != id)
            {
                _broken = $"answer out of step: expected id {id}, got {answer["id"]?.ToJsonString() ?? "none"}";
                throw new InvalidOperationException($"circomlibjs reference: {_broken}.");
            }
            if (answer["error"] is { } error) throw new InvalidOperationException($"circomlibjs reference rejected request {id} ({kind}): {error}");
            return answer["results"] ?? throw new InvalidOperationException($"circomlibjs reference: answer {id} has no results.");
        }
        finally
        {
            _exchange.Release();
        }
    }

    private async Task<string> ExchangeAsync(string request)
    {
        var node = _node ?? throw new InvalidOperationException("The circomlibjs reference process is not running.");
        await node.StandardInput.WriteLineAsync(request);
        await node.StandardInput.FlushAsync();
        string? line = await node.StandardOutput.ReadLineAsync();
        if (line is null)
        {
            _broken ??= "node exited";
            await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            throw new InvalidOperationException($"circomlibjs reference: node exited with code {node.ExitCode}.{StderrTail()}");
        }
        return line;
    }

    private async Task StartAsync()
    {
        var start = Stopwatch.StartNew();
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = ProjectDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardInputEncoding = new UTF8Encoding(false),
        };
        info.ArgumentList.Add("reference.mjs");
        _node = StartOrExplain(info);
        _node.StandardInput.AutoFlush = false;
        _node.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) _stderr.AppendLine(e.Data);
        };
        _node.BeginErrorReadLine();

        // The first answer proves node, circomlibjs and the wasm are all there: Poseidon(1, 2), a circomlib test vector.
        const string expected = "7853200120776062878684798364095072458815029376092732009249414926327459813530";
        var results = await RequestAsync("poseidon", new[] { new[] { "1", "2" } }, StartDeadline);
        string actual = results[0]!.GetValue<string>();
        if (actual != expected)
            throw new InvalidOperationException($"circomlibjs reference: Poseidon(1, 2) = {actual}, expected {expected}: wrong circomlibjs build?");
        StartTime = start.Elapsed;
    }

    private async Task EnsureInstalledAsync(CancellationToken cancellationToken)
    {
        string pinned = PinnedCircomlibjsVersion();
        if (InstalledCircomlibjsVersion() == pinned) return;

        // One install at a time across processes: the lock is the exclusive open of a file (flock on Unix),
        // released by the OS even if the holder dies. The file itself stays (it is git-ignored).
        string lockPath = Path.Combine(ProjectDirectory, ".install.lock");
        using var held = await AcquireLockAsync(lockPath, cancellationToken);
        if (InstalledCircomlibjsVersion() == pinned) return; // another process installed it while we waited

        var start = Stopwatch.StartNew();
        var info = new ProcessStartInfo(OperatingSystem.IsWindows() ? "npm.cmd" : "npm")
        {
            WorkingDirectory = ProjectDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "ci", "--no-audit", "--no-fund" }) info.ArgumentList.Add(arg);
        using var npm = StartOrExplain(info);
        var output = new StringBuilder();
        DataReceivedEventHandler collect = (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
        };
        npm.OutputDataReceived += collect;
        npm.ErrorDataReceived += collect;
        npm.BeginOutputReadLine();
        npm.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(InstallDeadline);
        try
        {
            await npm.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            npm.Kill(entireProcessTree: true);
            throw new TimeoutException(
                $"`npm ci --no-audit --no-fund` in {ProjectDirectory} did not finish within {InstallDeadline.TotalMinutes:0} min.\n{Tail(output)}");
        }
        if (npm.ExitCode != 0 || InstalledCircomlibjsVersion() != pinned)
            throw new InvalidOperationException(
                $"`npm ci --no-audit --no-fund` in {ProjectDirectory} failed (exit code {npm.ExitCode}); run it by hand to see why.\n{Tail(output)}");
        InstallTime = start.Elapsed;
    }

    private static async Task<FileStream> AcquireLockAsync(string path, CancellationToken cancellationToken)
    {
        // A poll with a deadline: .NET offers no awaitable cross-process file lock.
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException($"Another process held {path} (an `npm ci` for the cross-check) for over {LockDeadline.TotalMinutes:0} min.");
                }
            }
        }
    }

    private static Process StartOrExplain(ProcessStartInfo info)
    {
        try
        {
            return Process.Start(info) ?? throw new InvalidOperationException($"Could not start `{info.FileName}`.");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException(
                $"The circomlibjs cross-check needs Node.js 20+ and npm on PATH, and `{info.FileName}` could not be started ({e.Message}). " +
                "Install them (Debian: `apt-get install nodejs npm`), then run `npm ci --no-audit --no-fund` in tests/crosscheck " +
                "or let the tests do it.", e);
        }
    }

    private string PinnedCircomlibjsVersion()
    {
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(ProjectDirectory, "package.json")));
        return package.RootElement.GetProperty("dependencies").GetProperty("circomlibjs").GetString()
            ?? throw new InvalidOperationException("tests/crosscheck/package.json pins no circomlibjs version.");
    }

    private string? InstalledCircomlibjsVersion()
    {
        string path = Path.Combine(ProjectDirectory, "node_modules", "circomlibjs", "package.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var package = JsonDocument.Parse(File.ReadAllText(path));
            return package.RootElement.TryGetProperty("version", out var v) ? v.GetString() : null;
        }
        catch (JsonException)
        {
            return null; // a half-written install: reinstall
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rustorium.Grid.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No Rustorium.Grid.sln above {AppContext.BaseDirectory}: cannot find tests/crosscheck.");
    }

    private void Kill()
    {
        try
        {
            if (_node is { HasExited: false }) _node.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    private string StderrTail()
    {
        lock (_stderr) return _stderr.Length == 0 ? "" : $"\nnode stderr:\n{Tail(_stderr)}";
    }

    private static string Tail(StringBuilder text, int max = 4000)
    {
        lock (text) return text.Length <= max ? text.ToString() : "…" + text.ToString(text.Length - max, max);
    }
}

/// <summary>The tests that share one <see cref="CircomlibjsReference"/> process (and so run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class CircomlibjsCollection : ICollectionFixture<CircomlibjsReference>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "circomlibjs cross-check";
}

/// <summary>One operation sent to the reference tree. <c>Op</c> is insert, update, delete or upsert.</summary>
public sealed record SmtReferenceOp(string Op, string Key, string Value);

/// <summary>An operation sequence for a fresh reference tree, and the keys to look up (smt.find) at its end.</summary>
public sealed record SmtReferenceCase(IReadOnlyList<SmtReferenceOp> Ops, IReadOnlyList<string> Prove)
{
    /// <summary>When set, each proof also carries the SMTVerifier(NLevels) input circomlib's tests build.</summary>
    public int? NLevels { get; init; }
}

/// <summary>
/// The reference tree's root after every operation (decimal), each operation's error (null, "exists" or
/// "missing"; a failed operation changes nothing) and the lookups at the end.
/// </summary>
public sealed record SmtReferenceResult(string[] Roots, string?[] Errors, SmtReferenceProof[] Proofs);

/// <summary>
/// circomlibjs <c>smt.find(key)</c> on the final tree; siblings are unpadded, top of the tree first.
/// <c>CircomInput</c> is the SMTVerifier input (all values decimal strings), null when not asked for or
/// when the siblings do not fit NLevels.
/// </summary>
public sealed record SmtReferenceProof(
    string Key, bool Found, string[] Siblings, string? FoundValue, string? NotFoundKey, string? NotFoundValue, bool IsOld0,
    JsonObject? CircomInput);
