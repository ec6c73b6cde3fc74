using System.Text.Json;
using System.Text.Json.Nodes;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Tests;

public sealed class SmtProveVerifyCommandTests : IDisposable
{
    private readonly TempFiles _files = new();
    private readonly IReadOnlyList<(string Op, Fr Key, Fr Value)> _changes = SmtReplayCommandTests.MixedChanges();
    private readonly SparseMerkleTree _tree;
    private readonly string _log;

    public SmtProveVerifyCommandTests()
    {
        _tree = SmtReplayCommandTests.Drive(_changes);
        _log = _files.Write("changes.jsonl", SmtReplayCommandTests.ToLog(_changes));
    }

    public void Dispose() => _files.Dispose();

    /// <summary>A present key with a deep leaf (3 shares its low 8 bits with 259, 515, ...).</summary>
    private static readonly Fr DeepKey = Fr.FromUInt64(3);

    private async Task<string> ProveAsync(Fr key, params string[] options)
    {
        var result = await Cli.RunAsync(["smt", "prove", _log, key.ToString(), .. options]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Empty(result.Err);
        return result.Out;
    }

    [Fact]
    public async Task Prove_prints_the_library_json_of_the_replayed_tree()
    {
        var json = await ProveAsync(DeepKey);

        var expected = _tree.Prove(DeepKey);
        Assert.Equal(expected.ToJson(), json.TrimEnd());
        Assert.True(expected.Exists);
        var circom = JsonNode.Parse(json)!["circom"]!;
        Assert.Equal(expected.DefaultCircomLevelsFor, (int)circom["nLevels"]!);
        Assert.Equal("0", (string)circom["input"]!["fnc"]!);
    }

    [Fact]
    public async Task Inclusion_proof_round_trips_through_verify()
    {
        var proof = _files.Write("proof.json", await ProveAsync(DeepKey));

        var result = await Cli.RunAsync("smt", "verify", proof);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith($"valid: inclusion of key {DeepKey}", result.Out);
        Assert.Contains($"at root {_tree.Root}", result.Out);
    }

    [Fact]
    public async Task Non_inclusion_proofs_round_trip_through_verify()
    {
        // An absent key whose path ends in another leaf, and one whose path ends in an empty branch.
        var absentKeys = Enumerable.Range(1, 200).Select(i => Fr.FromUInt64((ulong)i * 7919)).Where(k => !_tree.Contains(k)).ToList();
        var endsInLeaf = absentKeys.First(k => !_tree.Prove(k).IsOld0);
        var endsInEmpty = absentKeys.First(k => _tree.Prove(k).IsOld0);

        foreach (var key in new[] { endsInLeaf, endsInEmpty })
        {
            var result = await Cli.RunWithStdinAsync(await ProveAsync(key), "smt", "verify", "-");

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Equal($"valid: non-inclusion of key {key} at root {_tree.Root}", result.OutLines.Single());
        }
    }

    [Fact]
    public async Task Binary_proof_is_the_canonical_encoding_and_verifies()
    {
        var hex = (await ProveAsync(DeepKey, "--binary")).Trim();

        Assert.Equal(_tree.Prove(DeepKey).Encode(), Convert.FromHexString(hex));
        var result = await Cli.RunAsync("smt", "verify", _files.Write("proof.hex", hex + "\n"));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("valid: inclusion", result.Out);
    }

    [Fact]
    public async Task Levels_sets_the_circom_input_size()
    {
        var json = await ProveAsync(DeepKey, "--levels", "40");

        var circom = JsonNode.Parse(json)!["circom"]!;
        Assert.Equal(40, (int)circom["nLevels"]!);
        Assert.Equal(40, circom["input"]!["siblings"]!.AsArray().Count);
        Assert.Equal(0, (await Cli.RunAsync("smt", "verify", _files.Write("proof.json", json))).ExitCode);
    }

    [Theory]
    [InlineData("1", "--levels must be an integer from 2 to 254")]
    [InlineData("255", "--levels must be an integer from 2 to 254")]
    [InlineData("x", "--levels must be an integer from 2 to 254")]
    [InlineData("3", "too small")]
    public async Task Bad_levels_are_usage_errors(string levels, string fragment)
    {
        Assert.True(_tree.Prove(DeepKey).Depth >= 3);

        var result = await Cli.RunAsync("smt", "prove", _log, DeepKey.ToString(), "--levels", levels);

        Assert.Equal((int)ExitCode.BadInput, result.ExitCode);
        Assert.Contains(fragment, result.Err);
    }

    [Fact]
    public async Task Prove_rejects_a_non_canonical_key_and_a_bad_log()
    {
        var badKey = await Cli.RunAsync("smt", "prove", _log, "007");
        var badLog = await Cli.RunAsync("smt", "prove", _files.Write("bad.jsonl", "{\"op\":\"delete\",\"key\":\"1\"}\n"), "1");
        var missing = await Cli.RunAsync("smt", "prove", _files.PathOf("missing.jsonl"), "1");

        Assert.Equal((int)ExitCode.BadInput, badKey.ExitCode);
        Assert.Contains("key: '007' has leading zeros", badKey.Err);
        Assert.Equal((int)ExitCode.BadInput, badLog.ExitCode);
        Assert.Contains("line 1", badLog.Err);
        Assert.Equal((int)ExitCode.IoError, missing.ExitCode);
    }

    public static TheoryData<string> Tampering => new()
    {
        "value", "root", "key", "sibling", "exists", "circomRoot", "circomSibling",
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task A_tampered_proof_exits_1(string what)
    {
        var proof = JsonNode.Parse(await ProveAsync(DeepKey))!.AsObject();
        var bump = (JsonNode? n) => (JsonNode)(Fr.Parse((string)n!) + Fr.One).ToString();
        switch (what)
        {
            case "value": proof["value"] = bump(proof["value"]); break;
            case "root": proof["root"] = bump(proof["root"]); break;
            case "key": proof["key"] = bump(proof["key"]); break;
            case "sibling": proof["siblings"]![0] = bump(proof["siblings"]![0]); break;
            case "exists":
                proof["exists"] = false;
                proof["value"] = "0";
                proof["oldKey"] = proof["key"]!.DeepClone();
                proof["oldValue"] = _tree.Prove(DeepKey).Value.ToString();
                break;
            case "circomRoot": proof["circom"]!["input"]!["root"] = bump(proof["circom"]!["input"]!["root"]); break;
            case "circomSibling":
                var siblings = proof["circom"]!["input"]!["siblings"]!.AsArray();
                siblings[siblings.Count - 1] = "1";
                break;
        }

        var result = await Cli.RunAsync("smt", "verify", _files.Write("tampered.json", proof.ToJsonString()));

        Assert.True(result.ExitCode == (int)ExitCode.Negative, result.ToString());
        Assert.StartsWith("invalid: ", result.Out);
    }

    [Fact]
    public async Task A_proof_for_another_root_than_root_exits_1()
    {
        var proof = _files.Write("proof.json", await ProveAsync(DeepKey));

        var same = await Cli.RunAsync("smt", "verify", proof, "--root", _tree.Root.ToString());
        var other = await Cli.RunAsync("smt", "verify", proof, "--root", "12345");
        var bad = await Cli.RunAsync("smt", "verify", proof, "--root", "0x12");

        Assert.Equal(0, same.ExitCode);
        Assert.Equal((int)ExitCode.Negative, other.ExitCode);
        Assert.Contains("not the expected 12345", other.Out);
        Assert.Equal((int)ExitCode.BadInput, bad.ExitCode);
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "", "empty file" },
        { "   \n", "empty file" },
        { "{", "not a valid proof" },
        { "[1,2]", "not a proof" },
        { "hello", "not a proof" },
        { "0x0", "not a proof" },
        { "00", "not a valid proof encoding" },
        { "{\"version\":1}", "not a valid proof" },
        { "truncate", "not a valid proof" },
        { "extraMember", "unknown member" },
        { "nonCanonical", "leading zeros" },
        { "circomNotObject", "\"circom\" must be" },
        { "hexTruncated", "not a valid proof encoding" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task A_malformed_proof_exits_2(string content, string fragment)
    {
        var json = await ProveAsync(DeepKey);
        var node = JsonNode.Parse(json)!.AsObject();
        content = content switch
        {
            "truncate" => json[..(json.Length / 2)],
            "extraMember" => Set(node, "comment", "hi"),
            "nonCanonical" => Set(node, "value", "0" + (string)node["value"]!),
            "circomNotObject" => Set(node, "circom", 5),
            "hexTruncated" => (await ProveAsync(DeepKey, "--binary")).Trim()[..40],
            _ => content,
        };

        var result = await Cli.RunAsync("smt", "verify", _files.Write("proof.json", content));

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains(fragment, result.Err);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task A_missing_proof_file_is_an_io_error()
    {
        var result = await Cli.RunAsync("smt", "verify", _files.PathOf("nope.json"));

        Assert.Equal((int)ExitCode.IoError, result.ExitCode);
    }

    private static string Set(JsonObject node, string name, JsonNode value)
    {
        node[name] = value;
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
