using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Rustorium.Grid.Cli.Bench;

/// <summary>
/// Progress of a long benchmark phase, on stderr: a live Spectre.Console bar when stderr is a terminal, plain
/// periodic lines otherwise (logs and CI keep a readable record, and nothing redraws into a file).
/// </summary>
internal static class BenchProgress
{
    /// <summary>Least time between two plain progress lines.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Runs <paramref name="work"/>, which reports how many of <paramref name="total"/> units are done through the
    /// callback it is given (call it as often as convenient: output is throttled here).
    /// </summary>
    public static async Task<T> RunAsync<T>(GridConsole console, string label, long total, Func<Action<long>, T> work)
    {
        if (console.ErrorIsTerminal)
        {
            var terminal = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(console.Error),
                Interactive = InteractionSupport.Yes,
            });
            return await terminal.Progress()
                .AutoClear(false)
                .Columns(
                    new TaskDescriptionColumn(),
                    new ProgressBarColumn(),
                    new PercentageColumn(),
                    new ElapsedTimeColumn(),
                    new RemainingTimeColumn())
                .StartAsync(ctx =>
                {
                    var task = ctx.AddTask(label, autoStart: true, maxValue: Math.Max(1, total));
                    var result = work(done => task.Value = done);
                    task.Value = task.MaxValue;
                    return Task.FromResult(result);
                }).ConfigureAwait(false);
        }

        var clock = Stopwatch.StartNew();
        var lastLine = TimeSpan.Zero;
        var value = work(done =>
        {
            if (clock.Elapsed - lastLine < PlainInterval) return;
            lastLine = clock.Elapsed;
            console.Error.WriteLine(Line(label, done, total, clock.Elapsed));
        });
        console.Error.WriteLine(Line(label, total, total, clock.Elapsed));
        return value;
    }

    private static string Line(string label, long done, long total, TimeSpan elapsed) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{label}: {done:N0}/{total:N0} ({(total == 0 ? 100 : 100.0 * done / total):F0}%), {elapsed.TotalSeconds:F1} s");
}
