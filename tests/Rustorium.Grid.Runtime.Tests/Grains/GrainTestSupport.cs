using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Tests.Grains;

/// <summary>Deadlines for every wait in the grain tests: no test waits unbounded, none sleeps to synchronise.</summary>
internal static class Bounded
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static Task Within(this Task task) => task.WaitAsync(Timeout);

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Timeout);

    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Timeout);

    public static Task<T> Within<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Timeout);

    /// <summary>Polls <paramref name="condition"/> until it holds, failing after <see cref="Timeout"/>.</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out after {Timeout.TotalSeconds} s waiting until {what}.");
            await Task.Delay(5);
        }
    }
}

/// <summary>
/// A service shared by the test grains (injected through their constructors): an ordered log of what happened, named
/// gates a grain waits on until the test opens them, and named signals a grain raises for the test to wait on.
/// </summary>
public sealed class GrainJournal
{
    private readonly ConcurrentQueue<string> _entries = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _signals = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new();
    private readonly ConcurrentDictionary<string, bool> _flags = new();

    public void Add(string entry) => _entries.Enqueue(entry);

    public string[] Entries => [.. _entries];

    public int CountOf(string entry) => _entries.Count(e => e == entry);

    public int IndexOf(string entry) => Array.IndexOf(Entries, entry);

    /// <summary>Makes <see cref="PassGate"/> for <paramref name="name"/> wait until <see cref="Open"/>.</summary>
    public void Close(string name) => _gates[name] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Open(string name)
    {
        if (_gates.TryGetValue(name, out var gate)) gate.TrySetResult();
    }

    public Task PassGate(string name) => _gates.TryGetValue(name, out var gate) ? gate.Task : Task.CompletedTask;

    public void Raise(string name) => Signal(name).TrySetResult();

    public Task WaitFor(string name) => Signal(name).Task.Within();

    public void SetFlag(string name, bool value) => _flags[name] = value;

    public bool Flag(string name) => _flags.TryGetValue(name, out bool value) && value;

    private TaskCompletionSource Signal(string name) =>
        _signals.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}

/// <summary>An in-process silo: the grain runtime on a real service provider, its hosted service started.</summary>
internal sealed class TestSilo : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly IHostedService[] _hosted;

    private TestSilo(ServiceProvider provider, IHostedService[] hosted)
    {
        _provider = provider;
        _hosted = hosted;
        Factory = provider.GetRequiredService<IGrainFactory>();
        Directory = provider.GetRequiredService<ActivationDirectory>();
        Journal = provider.GetRequiredService<GrainJournal>();
    }

    public IGrainFactory Factory { get; }

    public ActivationDirectory Directory { get; }

    public GrainJournal Journal { get; }

    public static async Task<TestSilo> StartAsync(Action<GrainRuntimeBuilder>? configure = null, Action<IServiceCollection>? configureServices = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<GrainJournal>();
        configureServices?.Invoke(services);
        services.AddGrainRuntime(grains =>
        {
            grains.AddGrain<ILifecycleGrain, LifecycleGrain>()
                .AddGrain<INamedGrain, NamedGrain>()
                .AddGrain<ITurnGrain, TurnGrain>()
                .AddGrain<IFailingGrain, FailingGrain>()
                .AddGrain<ITimerGrain, TimerGrain>();
            configure?.Invoke(grains);
        });
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
        var hosted = provider.GetServices<IHostedService>().ToArray();
        foreach (var service in hosted) await service.StartAsync(CancellationToken.None).Within();
        return new TestSilo(provider, hosted);
    }

    public async ValueTask DisposeAsync()
    {
        using var deadline = new CancellationTokenSource(Bounded.Timeout);
        foreach (var service in _hosted.Reverse())
        {
            try
            {
                await service.StopAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                // A test left a turn hanging on purpose or by failure; do not hang the run on it.
            }
        }
        await _provider.DisposeAsync();
    }
}
