using System.CommandLine;
using System.Text;
using System.Text.Json;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Commands;

/// <summary><c>grid batch|prove|verify</c>: atomic batches from a file, and shard proofs to keep and check offline.</summary>
internal static partial class DataCommands
{
    private static Command Batch(GridConsole console)
    {
        var file = new Argument<string>("file") { Description = "JSON lines of operations; \"-\" reads stdin." };
        var sync = new Option<SyncMode>("--sync") { Description = "Durability: Full (default), Async or None.", DefaultValueFactory = _ => SyncMode.Full };
        var command = new GridCommand("batch", "Apply a file of puts and deletes atomically (all or nothing).")
        {
            Details = """
                One operation per line: {"op":"put","key":"k","value":"v"} or {"op":"delete","key":"k"}; blank lines
                are skipped. Keys and values are UTF-8 text, or hex with --hex. Every key must belong to one shard (a
                batch is atomic within a shard). The whole file is checked before anything is sent: a bad line ends
                with exit 2 and its line number, and nothing is written.
                """,
            Examples = ["grid batch ops.jsonl", "printf '{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\"}\\n' | grid batch - --json"],
            ExitCodes =
            [
                (ExitCode.Ok, "applied"),
                (ExitCode.BadInput, "a bad line (with its number), an empty file, or keys spanning shards"),
                (ExitCode.IoError, "the file cannot be read"),
                (ExitCode.Unavailable, "no silo reachable, or the call timed out"),
            ],
        };
        command.Arguments.Add(file);
        command.Options.Add(sync);
        var common = AddCommon(command);
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            var text = await InputFiles.ReadAllTextAsync(console, path, ct).ConfigureAwait(false);
            var operations = ParseBatch(text, InputFiles.DisplayName(path), parse.GetValue(common.Hex));
            return await RunAsync(console, parse, common, async grid =>
            {
                var r = await grid.BatchAsync(operations, parse.GetValue(sync), ct).ConfigureAwait(false);
                Print(console, parse.GetValue(common.Json), $"ok: {operations.Count} operation(s), shard {r.ShardId} version {r.Version}", w =>
                {
                    Write(w, r);
                    w.WriteNumber("operations", operations.Count);
                });
                return ExitCode.Ok;
            }, ct).ConfigureAwait(false);
        });
        return command;
    }

    internal static List<BatchOperation> ParseBatch(string text, string name, bool hex)
    {
        var operations = new List<BatchOperation>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (i == 0) line = line.TrimStart('\uFEFF');
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                operations.Add(ParseOperation(line, hex));
            }
            catch (Exception e) when (e is JsonException or GridCommandException or InvalidOperationException)
            {
                throw GridCommandException.BadInput($"{name}:{i + 1}: {e.Message}", e);
            }
        }
        if (operations.Count == 0) throw GridCommandException.BadInput($"{name}: no operations.");
        if (operations.Count > GridLimits.Default.MaxBatchOperations)
            throw GridCommandException.BadInput($"{name}: {operations.Count} operations; a batch holds at most {GridLimits.Default.MaxBatchOperations:N0}.");
        return operations;
    }

    private static BatchOperation ParseOperation(string line, bool hex)
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw GridCommandException.BadInput("expected a JSON object {\"op\": ..., \"key\": ...}.");
        string? op = null, key = null, value = null;
        bool hasValue = false;
        foreach (var property in root.EnumerateObject())
        {
            switch (property.Name)
            {
                case "op": op = StringMember(property); break;
                case "key": key = StringMember(property); break;
                case "value": value = StringMember(property); hasValue = true; break;
                default: throw GridCommandException.BadInput($"unknown member \"{property.Name}\" (expected op, key, value).");
            }
        }
        if (key is null) throw GridCommandException.BadInput("missing \"key\".");
        var k = Bytes(key, hex, "key");
        return op switch
        {
            "put" when value is not null => BatchOperation.Put(k, Bytes(value, hex, "value", allowEmpty: true)),
            "put" => throw GridCommandException.BadInput("a put needs a \"value\"."),
            "delete" when hasValue => throw GridCommandException.BadInput("a delete takes no \"value\"."),
            "delete" => BatchOperation.Delete(k),
            null => throw GridCommandException.BadInput("missing \"op\" (put or delete)."),
            _ => throw GridCommandException.BadInput($"unknown op \"{op}\" (expected put or delete)."),
        };
    }

    private static string StringMember(JsonProperty property) =>
        property.Value.ValueKind == JsonValueKind.String
            ? property.Value.GetString()!
            : throw GridCommandException.BadInput($"\"{property.Name}\" must be a string.");

    private static Command Prove(GridConsole console)
    {
        var key = new Argument<string>("key") { Description = "The key." };
        var command = new GridCommand("prove", "Print the silo's proof for a key (its value, or its absence) as JSON, to keep or check offline.")
        {
            Details = """
                The proof is verified before it is printed. JSON: shard, rangeStart and rangeEnd (hex; rangeEnd null
                for the end of the key space), version, root (decimal), key and value (hex; value null when absent),
                and proof (the sparse Merkle proof, as `grid smt prove` prints it). `grid verify` checks it offline.
                """,
            Examples = ["grid prove user:42 > proof.json", "grid prove --hex 00ff"],
            ExitCodes = Codes,
        };
        command.Arguments.Add(key);
        var common = AddCommon(command);
        command.SetAction((parse, ct) => RunAsync(console, parse, common, async grid =>
        {
            var k = Bytes(parse.GetValue(key)!, parse.GetValue(common.Hex), "key");
            var r = await grid.ReadAsync(k, withProof: true, ct).ConfigureAwait(false);
            var p = r.Proof ?? throw new GridException(GridErrorCode.VerificationFailed, "The silo answered without a proof.");
            console.Out.WriteLine(ProofJson(p, k, r.Value));
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    internal static string ProofJson(ShardProof p, byte[] key, byte[]? value) => JsonText.Object(w =>
        {
            w.WriteNumber("shard", p.ShardId);
            w.WriteString("rangeStart", Convert.ToHexStringLower(p.Range.Start));
            if (p.Range.IsUnbounded) w.WriteNull("rangeEnd"); else w.WriteString("rangeEnd", Convert.ToHexStringLower(p.Range.End));
            w.WriteNumber("version", p.Version);
            w.WriteString("root", p.Root.ToString());
            w.WriteString("key", Convert.ToHexStringLower(key));
            if (value is null) w.WriteNull("value"); else w.WriteString("value", Convert.ToHexStringLower(value));
            w.WritePropertyName("proof");
            using var proof = JsonDocument.Parse(p.Proof.ToJson());
            proof.RootElement.WriteTo(w);
        }, indented: true);

    private static Command Verify(GridConsole console)
    {
        var file = new Argument<string>("proof") { Description = "The JSON of `grid prove`; \"-\" reads stdin." };
        var key = new Option<string>("--key") { Description = "The key the answer is about (default: the document's key).", HelpName = "K" };
        var value = new Option<string>("--value") { Description = "The value claimed for the key (default: the document's value).", HelpName = "V" };
        var absent = new Option<bool>("--absent") { Description = "Claim the key is absent." };
        var root = new Option<string>("--root") { Description = "Also require this shard root (decimal): the root you trust, obtained independently.", HelpName = "decimal" };
        var hex = new Option<bool>("--hex") { Description = "--key and --value are hex (default: UTF-8 text)." };
        var command = new GridCommand("verify", "Check offline that a `grid prove` document shows an answer: a key holding a value, or absent.")
        {
            Details = """
                Checks, with no grid: the key is inside the shard's range, the proof is about that key, it shows exactly
                the claimed value (or absence), its path hashes to its root, and the document's root is that root.
                The claim is the document's key and value unless --key, --value or --absent say otherwise. A proof only
                shows something about the root it names: pass --root with a root obtained independently.
                Prints "valid: ..." or "invalid: <reason>" on stdout.
                """,
            Examples = ["grid verify proof.json", "grid verify proof.json --key user:42 --value Ada", "grid verify proof.json --key user:7 --absent"],
            ExitCodes =
            [
                (ExitCode.Ok, "the proof shows that answer"),
                (ExitCode.Negative, "the proof is well-formed but does not show that answer (or names another root than --root)"),
                (ExitCode.BadInput, "the file is not a `grid prove` document, or bad options"),
                (ExitCode.IoError, "the file cannot be read"),
            ],
        };
        command.Arguments.Add(file);
        foreach (var option in new Option[] { key, value, absent, root, hex }) command.Options.Add(option);
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            bool isHex = parse.GetValue(hex);
            if (parse.GetValue(absent) && parse.GetValue(value) is not null) throw GridCommandException.BadInput("--absent and --value contradict each other.");
            Fr? expectedRoot = null;
            if (parse.GetValue(root) is { } rootText)
            {
                if (!Fr.TryParse(rootText, out var fr)) throw GridCommandException.BadInput($"--root: '{rootText}' is not a canonical decimal field element.");
                expectedRoot = fr;
            }
            var text = await InputFiles.ReadAllTextAsync(console, path, ct).ConfigureAwait(false);
            var doc = ParseProofDocument(text, InputFiles.DisplayName(path));

            var k = parse.GetValue(key) is { } kt ? Bytes(kt, isHex, "key") : doc.Key;
            var v = parse.GetValue(absent) ? null : parse.GetValue(value) is { } vt ? Bytes(vt, isHex, "value", allowEmpty: true) : doc.Value;

            string? problem = doc.Proof.Explain(k, v);
            if (problem is null && doc.Root != doc.Proof.Root) problem = $"the document names root {doc.Root}, but its proof is about root {doc.Proof.Root}";
            if (problem is null && expectedRoot is { } expected && expected != doc.Proof.Root) problem = $"the proof is about root {doc.Proof.Root}, not the expected {expected}";
            if (problem is not null)
            {
                await console.Out.WriteLineAsync($"invalid: {problem}.").ConfigureAwait(false);
                return (int)ExitCode.Negative;
            }
            var p = doc.Proof;
            await console.Out.WriteLineAsync(v is null
                ? $"valid: key {Convert.ToHexStringLower(k)} is absent from shard {p.ShardId} at version {p.Version} (root {p.Root})"
                : $"valid: key {Convert.ToHexStringLower(k)} holds value {Convert.ToHexStringLower(v)} in shard {p.ShardId} at version {p.Version} (root {p.Root})").ConfigureAwait(false);
            return (int)ExitCode.Ok;
        });
        return command;
    }

    private sealed record ShardProofDocument(ShardProof Proof, Fr Root, byte[] Key, byte[]? Value);

    private static ShardProofDocument ParseProofDocument(string text, string name)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            var r = document.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FormatException("expected a JSON object.");
            long shard = Member(r, "shard", JsonValueKind.Number).GetInt64();
            var start = HexMember(r, "rangeStart")!;
            var end = HexMember(r, "rangeEnd", nullable: true);
            long version = Member(r, "version", JsonValueKind.Number).GetInt64();
            var rootText = Member(r, "root", JsonValueKind.String).GetString()!;
            if (!Fr.TryParse(rootText, out var root)) throw new FormatException($"\"root\" '{rootText}' is not a canonical decimal field element.");
            var key = HexMember(r, "key")!;
            var value = HexMember(r, "value", nullable: true);
            var smt = SmtProof.FromJson(Member(r, "proof", JsonValueKind.Object).GetRawText());
            if (end is not null && KeyRange.Compare(start, end) >= 0) throw new FormatException("\"rangeStart\" is not before \"rangeEnd\".");
            return new ShardProofDocument(new ShardProof(shard, new KeyRange(start, end), version, smt), root, key, value);
        }
        catch (Exception e) when (e is JsonException or FormatException or SmtProofFormatException or InvalidOperationException or ArgumentException)
        {
            throw GridCommandException.BadInput($"{name}: not a `grid prove` document: {e.Message}", e);
        }
    }

    private static JsonElement Member(JsonElement r, string name, JsonValueKind kind)
    {
        if (!r.TryGetProperty(name, out var m)) throw new FormatException($"missing \"{name}\".");
        if (m.ValueKind != kind) throw new FormatException($"\"{name}\" must be a JSON {kind.ToString().ToLowerInvariant()}.");
        return m;
    }

    private static byte[]? HexMember(JsonElement r, string name, bool nullable = false)
    {
        if (!r.TryGetProperty(name, out var m)) throw new FormatException($"missing \"{name}\".");
        if (m.ValueKind == JsonValueKind.Null && nullable) return null;
        if (m.ValueKind != JsonValueKind.String) throw new FormatException($"\"{name}\" must be a hex string{(nullable ? " or null" : "")}.");
        return Convert.FromHexString(m.GetString()!);
    }
}
