using System.Text.Json;

namespace Rustorium.Grid.Cli.Bench;

/// <summary>
/// What the shard stores of some silos committed, summed over them: the <c>store</c> object of each silo's
/// <c>GET /status</c> (docs/storage.md "Statistics"), and the CPU time of their processes (<c>process.cpuSeconds</c>,
/// docs/silo.md; null if a silo's status has none). The difference of two readings is what a run made them do.
/// </summary>
internal sealed record StoreTotals(int Silos, long DataCommits, long RowsWritten, long TreeCommits, long NodesWritten, long NodesDeleted,
    long Transactions, double DataCommitSeconds, double TreeCommitSeconds, double SyncSeconds, double? CpuSeconds = 0)
{
    /// <summary>This reading minus an earlier one of the same silos.</summary>
    public StoreTotals Minus(StoreTotals before) => new(Silos,
        DataCommits - before.DataCommits, RowsWritten - before.RowsWritten, TreeCommits - before.TreeCommits,
        NodesWritten - before.NodesWritten, NodesDeleted - before.NodesDeleted, Transactions - before.Transactions,
        DataCommitSeconds - before.DataCommitSeconds, TreeCommitSeconds - before.TreeCommitSeconds, SyncSeconds - before.SyncSeconds,
        CpuSeconds - before.CpuSeconds);

    /// <summary>Tree node rows stored and deleted per row written (null without rows).</summary>
    public double? NodeRowsPerRow => RowsWritten == 0 ? null : (double)(NodesWritten + NodesDeleted) / RowsWritten;

    /// <summary>Rows written per store transaction (null without transactions).</summary>
    public double? RowsPerTransaction => Transactions == 0 ? null : (double)RowsWritten / Transactions;
}

/// <summary>Reads <see cref="StoreTotals"/> from silos' status URLs (<c>grid bench load --status</c>).</summary>
internal sealed class StoreStatusProbe(IReadOnlyList<Uri> urls) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>
    /// Parses <c>--status</c> values: absolute http or https URLs. Returns the problem in words, or null.
    /// </summary>
    public static string? Problem(IEnumerable<string> values, out List<Uri> urls)
    {
        urls = [];
        foreach (var value in values)
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                return $"--status must be a silo's status URL such as http://127.0.0.1:7480/status; got '{value}'.";
            urls.Add(url);
        }
        return null;
    }

    /// <summary>Reads every URL now and sums their <c>store</c> objects.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.Unavailable"/> if a URL cannot be read;
    /// <see cref="GridErrorCode.InvalidArgument"/> if its answer has no <c>store</c> object.</exception>
    public async Task<StoreTotals> ReadAsync(CancellationToken ct)
    {
        var total = new StoreTotals(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        foreach (var url in urls)
        {
            string body;
            try
            {
                body = await _http.GetStringAsync(url, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                throw new GridException(GridErrorCode.Unavailable, $"Cannot read {url}: {e.Message}", e);
            }
            try
            {
                using var json = JsonDocument.Parse(body);
                if (!json.RootElement.TryGetProperty("store", out var s) || s.ValueKind != JsonValueKind.Object)
                    throw GridException.InvalidArgument($"{url} answered without a 'store' object: is it a silo's /status (of this build or later)?");
                total = new StoreTotals(total.Silos + 1,
                    total.DataCommits + s.GetProperty("dataCommits").GetInt64(), total.RowsWritten + s.GetProperty("rowsWritten").GetInt64(),
                    total.TreeCommits + s.GetProperty("treeCommits").GetInt64(), total.NodesWritten + s.GetProperty("nodesWritten").GetInt64(),
                    total.NodesDeleted + s.GetProperty("nodesDeleted").GetInt64(), total.Transactions + s.GetProperty("transactions").GetInt64(),
                    total.DataCommitSeconds + s.GetProperty("dataCommitSeconds").GetDouble(),
                    total.TreeCommitSeconds + s.GetProperty("treeCommitSeconds").GetDouble(), total.SyncSeconds + s.GetProperty("syncSeconds").GetDouble(),
                    total.CpuSeconds + CpuSecondsOf(json.RootElement));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw GridException.InvalidArgument($"{url} answered something that is not a silo's status: {e.Message}");
            }
        }
        return total;
    }

    /// <summary>The status's <c>process.cpuSeconds</c>, or null from a silo too old to report it.</summary>
    private static double? CpuSecondsOf(JsonElement status) =>
        status.TryGetProperty("process", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("cpuSeconds", out var cpu)
            ? cpu.GetDouble()
            : null;

    public void Dispose() => _http.Dispose();
}
