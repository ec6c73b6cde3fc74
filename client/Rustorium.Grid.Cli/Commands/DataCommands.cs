using System.CommandLine;
using System.Text;
using System.Text.Json;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Client;

namespace Rustorium.Grid.Cli.Commands;

/// <summary>
/// <c>grid put|get|delete|scan|status</c>: talk to a running grid through <see cref="GridClient"/>. Every read is
/// proved by the silo and verified here before it is printed.
/// </summary>
internal static partial class DataCommands
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private sealed record Common(Option<string[]> Endpoint, Option<bool> Json, Option<bool> Hex);

    private static Common AddCommon(Command command)
    {
        var endpoint = new Option<string[]>("--endpoint")
        {
            Description = "Silo endpoint(s), host:port with a numeric IP. Default 127.0.0.1:7400 (or $RGRID_ENDPOINT).",
            HelpName = "host:port",
            AllowMultipleArgumentsPerToken = true,
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per result, for scripts." };
        var hex = new Option<bool>("--hex") { Description = "Keys and values are hex on the command line and in the output (default: UTF-8 text)." };
        command.Options.Add(endpoint);
        command.Options.Add(json);
        command.Options.Add(hex);
        return new Common(endpoint, json, hex);
    }

    private static readonly (ExitCode, string)[] Codes =
    [
        (ExitCode.Ok, "done"),
        (ExitCode.Negative, "get: the key is absent (proved); a proof did not verify"),
        (ExitCode.BadInput, "bad arguments, or the grid refused them (oversized key or value, bad range)"),
        (ExitCode.Unavailable, "no silo reachable, or the call timed out"),
    ];

    public static IEnumerable<Command> Create(GridConsole console)
    {
        yield return Put(console);
        yield return Get(console);
        yield return Delete(console);
        yield return Scan(console);
        yield return Status(console);
        yield return Batch(console);
        yield return Prove(console);
        yield return Verify(console);
    }

    private static Command Put(GridConsole console)
    {
        var key = new Argument<string>("key") { Description = "The key." };
        var value = new Argument<string>("value") { Description = "The value." };
        var sync = new Option<SyncMode>("--sync") { Description = "Durability: Full (default, on disk when acknowledged), Async or None.", DefaultValueFactory = _ => SyncMode.Full };
        var proof = new Option<bool>("--proof") { Description = "Write with proof: wait for and verify the inclusion proof at the write's version." };
        var command = new GridCommand("put", "Set a key to a value.")
        {
            Examples = ["grid put user:42 Ada", "grid put --hex 00ff 0102 --proof --json"],
            ExitCodes = Codes,
        };
        command.Arguments.Add(key);
        command.Arguments.Add(value);
        command.Options.Add(sync);
        command.Options.Add(proof);
        var common = AddCommon(command);
        command.SetAction((parse, ct) => RunAsync(console, parse, common, async grid =>
        {
            bool hex = parse.GetValue(common.Hex);
            var k = Bytes(parse.GetValue(key)!, hex, "key");
            var v = Bytes(parse.GetValue(value)!, hex, "value");
            if (parse.GetValue(proof))
            {
                var r = await grid.WriteWithProofAsync(k, v, ct);
                Print(console, parse.GetValue(common.Json), $"ok: shard {r.Write.ShardId} version {r.Write.Version}, proved at root {r.Proof.Root}",
                    w => { Write(w, r.Write); w.WriteString("root", r.Proof.Root.ToString()); w.WriteBoolean("verified", true); });
            }
            else
            {
                var r = await grid.PutAsync(k, v, parse.GetValue(sync), ct);
                Print(console, parse.GetValue(common.Json), $"ok: shard {r.ShardId} version {r.Version}", w => Write(w, r));
            }
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    private static Command Get(GridConsole console)
    {
        var key = new Argument<string>("key") { Description = "The key." };
        var command = new GridCommand("get", "Print a key's value, after verifying the silo's proof.")
        {
            Details = "Exit 1 when the key is absent (the absence is proved too).",
            Examples = ["grid get user:42", "grid get --json user:42"],
            ExitCodes = Codes,
        };
        command.Arguments.Add(key);
        var common = AddCommon(command);
        command.SetAction((parse, ct) => RunAsync(console, parse, common, async grid =>
        {
            bool hex = parse.GetValue(common.Hex);
            var k = Bytes(parse.GetValue(key)!, hex, "key");
            var r = await grid.ReadAsync(k, withProof: true, ct);
            Print(console, parse.GetValue(common.Json), r.Value is null ? "(absent)" : Text(r.Value, hex), w =>
            {
                w.WriteString("key", Text(k, hex));
                if (r.Value is null) w.WriteNull("value"); else w.WriteString("value", Text(r.Value, hex));
                w.WriteNumber("version", r.Version);
                w.WriteString("region", r.Region);
                w.WriteString("root", r.Proof?.Root.ToString());
                w.WriteBoolean("verified", r.Proof is not null);
            });
            return r.Value is null ? ExitCode.Negative : ExitCode.Ok;
        }, ct));
        return command;
    }

    private static Command Delete(GridConsole console)
    {
        var key = new Argument<string>("key") { Description = "The key." };
        var sync = new Option<SyncMode>("--sync") { Description = "Durability: Full (default), Async or None.", DefaultValueFactory = _ => SyncMode.Full };
        var command = new GridCommand("delete", "Remove a key (absent keys are fine).") { Examples = ["grid delete user:42"], ExitCodes = Codes };
        command.Arguments.Add(key);
        command.Options.Add(sync);
        var common = AddCommon(command);
        command.SetAction((parse, ct) => RunAsync(console, parse, common, async grid =>
        {
            var r = await grid.DeleteAsync(Bytes(parse.GetValue(key)!, parse.GetValue(common.Hex), "key"), parse.GetValue(sync), ct);
            Print(console, parse.GetValue(common.Json), $"ok: shard {r.ShardId} version {r.Version}", w => Write(w, r));
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    private static Command Scan(GridConsole console)
    {
        var start = new Argument<string>("start") { Description = "First key (inclusive); \"\" for the beginning.", Arity = ArgumentArity.ZeroOrOne };
        var end = new Argument<string?>("end") { Description = "End key (exclusive); omit for the end of the key space.", Arity = ArgumentArity.ZeroOrOne };
        var limit = new Option<int>("--limit") { Description = "Most rows to print. Default 100.", DefaultValueFactory = _ => 100 };
        var command = new GridCommand("scan", "Print rows in key order, across shards.") { Examples = ["grid scan user: user;", "grid scan --limit 10 --json"], ExitCodes = Codes };
        command.Arguments.Add(start);
        command.Arguments.Add(end);
        command.Options.Add(limit);
        var common = AddCommon(command);
        command.SetAction((parse, ct) => RunAsync(console, parse, common, async grid =>
        {
            bool hex = parse.GetValue(common.Hex);
            int max = parse.GetValue(limit);
            if (max < 1) throw GridCommandException.BadInput($"--limit must be positive; got {max}.");
            var from = Bytes(parse.GetValue(start) ?? "", hex, "start", allowEmpty: true);
            var endText = parse.GetValue(end);
            var to = endText is null ? null : Bytes(endText, hex, "end", allowEmpty: true);
            await foreach (var kv in grid.ScanAsync(from, to, max, ct))
            {
                Print(console, parse.GetValue(common.Json), $"{Text(kv.Key, hex)}\t{Text(kv.Value, hex)}", w =>
                {
                    w.WriteString("key", Text(kv.Key, hex));
                    w.WriteString("value", Text(kv.Value, hex));
                    w.WriteNumber("version", kv.Version);
                });
            }
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    private static Command Status(GridConsole console)
    {
        var command = new GridCommand("status", "Print every shard's range, versions, root and key count.") { Examples = ["grid status", "grid status --json"], ExitCodes = Codes };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => RunAsync(console, parse, common, async grid =>
        {
            // A cluster may move, split or merge shards while the statuses are gathered: start again from a fresh map then.
            var statuses = new List<ShardStatus>();
            for (int attempt = 1; ; attempt++)
            {
                statuses.Clear();
                try
                {
                    foreach (var entry in grid.ShardMap.Shards)
                        statuses.Add(await (await grid.GetShardGrainAsync(entry.ShardId, ct)).GetStatusAsync(ct));
                    break;
                }
                catch (GridException e) when (attempt < 5 && e.Code is GridErrorCode.NotOwner or GridErrorCode.UnknownShard or GridErrorCode.Unavailable)
                {
                    await Task.Delay(100 * attempt, ct);
                    await grid.RefreshShardMapAsync(ct);
                }
            }
            foreach (var s in statuses)
            {
                Print(console, parse.GetValue(common.Json), $"shard {s.ShardId} {s.Range} version {s.Version} keys {s.KeyCount} epoch {s.Epoch} on {s.Silo} root {s.Root} (tree version {s.TreeVersion})", w =>
                {
                    w.WriteNumber("shard", s.ShardId);
                    w.WriteString("range", s.Range.ToString());
                    w.WriteNumber("version", s.Version);
                    w.WriteNumber("treeVersion", s.TreeVersion);
                    w.WriteNumber("keys", s.KeyCount);
                    w.WriteNumber("epoch", s.Epoch);
                    w.WriteString("silo", s.Silo);
                    w.WriteString("root", s.Root);
                });
            }
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    // ------------------------------------------------------------------ plumbing

    private static Task<int> RunAsync(GridConsole console, ParseResult parse, Common common, Func<GridClient, Task<ExitCode>> body, CancellationToken ct)
        => ConnectAndRunAsync(parse.GetValue(common.Endpoint), body, ct);

    /// <summary>
    /// Connects to <paramref name="endpoints"/> (default $RGRID_ENDPOINT, then 127.0.0.1:7400), runs
    /// <paramref name="body"/> and maps <see cref="GridException"/> to exit codes. Shared with <c>grid bench load</c>.
    /// </summary>
    internal static async Task<int> ConnectAndRunAsync(string[]? endpoints, Func<GridClient, Task<ExitCode>> body, CancellationToken ct,
        GridClientOptions? options = null)
    {
        if (endpoints is null || endpoints.Length == 0)
            endpoints = [Environment.GetEnvironmentVariable("RGRID_ENDPOINT") is { Length: > 0 } env ? env : "127.0.0.1:7400"];
        try
        {
            await using var grid = await GridClient.ConnectAsync(endpoints, options, ct);
            return (int)await body(grid);
        }
        catch (GridException e)
        {
            var code = e.Code switch
            {
                GridErrorCode.InvalidArgument or GridErrorCode.NotOwner or GridErrorCode.UnknownShard => ExitCode.BadInput,
                GridErrorCode.VerificationFailed => ExitCode.Negative,
                GridErrorCode.Unavailable or GridErrorCode.Timeout => ExitCode.Unavailable,
                _ => ExitCode.InternalError,
            };
            throw new GridCommandException(code, $"{e.Code}: {e.Message}", e);
        }
    }

    private static byte[] Bytes(string text, bool hex, string what, bool allowEmpty = false)
    {
        if (text.Length == 0 && !allowEmpty) throw GridCommandException.BadInput($"The {what} must not be empty.");
        if (!hex) return StrictUtf8.GetBytes(text);
        var digits = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        try
        {
            return Convert.FromHexString(digits);
        }
        catch (FormatException)
        {
            throw GridCommandException.BadInput($"The {what} '{text}' is not hex.");
        }
    }

    private static string Text(byte[] bytes, bool hex)
    {
        if (hex) return Convert.ToHexStringLower(bytes);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return "0x" + Convert.ToHexStringLower(bytes);
        }
    }

    private static void Write(Utf8JsonWriter w, WriteResult r)
    {
        w.WriteNumber("shard", r.ShardId);
        w.WriteNumber("version", r.Version);
        w.WriteNumber("timestampMicros", r.TimestampMicros);
    }

    private static void Print(GridConsole console, bool json, string text, Action<Utf8JsonWriter> properties)
    {
        if (!json)
        {
            console.Out.WriteLine(text);
            return;
        }
        console.Out.WriteLine(JsonText.Object(properties));
    }
}
