using System.Text;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Tests;

public sealed class SmtReplayCommandTests
{
    private const string Insert1 = """{"op":"insert","key":"1","value":"10"}""";

    /// <summary>A mixed log: inserts (some sharing long path prefixes), updates, deletes that collapse branches.</summary>
    internal static IReadOnlyList<(string Op, Fr Key, Fr Value)> MixedChanges()
    {
        var changes = new List<(string, Fr, Fr)>();
        var random = new Random(7);
        var keys = new List<Fr>();
        for (int i = 0; i < 24; i++)
        {
            // Keys 0..7 collide in their low bits with 256, 512, ... so some leaves sit deep.
            var key = i < 8 ? Fr.FromUInt64((ulong)i * 256 + 3) : Fr.FromUInt64((ulong)random.NextInt64(1, long.MaxValue));
            keys.Add(key);
            changes.Add(("insert", key, Fr.FromUInt64((ulong)i + 100)));
        }
        for (int i = 0; i < keys.Count; i += 3) changes.Add(("update", keys[i], Fr.FromUInt64((ulong)i + 9_000)));
        for (int i = 0; i < keys.Count; i += 2) changes.Add(("delete", keys[i], Fr.Zero));
        changes.Add(("insert", keys[0], Fr.FromUInt64(5)));
        return changes;
    }

    internal static string ToLog(IEnumerable<(string Op, Fr Key, Fr Value)> changes, string newline = "\n") =>
        string.Concat(changes.Select(c => (c.Op == "delete"
            ? $$"""{"op":"delete","key":"{{c.Key}}"}"""
            : $$"""{"op":"{{c.Op}}","key":"{{c.Key}}","value":"{{c.Value}}"}""") + newline));

    internal static SparseMerkleTree Drive(IEnumerable<(string Op, Fr Key, Fr Value)> changes, List<Fr>? roots = null)
    {
        var tree = new SparseMerkleTree();
        foreach (var (op, key, value) in changes)
        {
            switch (op)
            {
                case "insert": tree.Insert(key, value); break;
                case "update": tree.Update(key, value); break;
                case "delete": tree.Delete(key); break;
            }
            roots?.Add(tree.Root);
        }
        return tree;
    }

    [Fact]
    public async Task Prints_the_same_root_sequence_as_the_tree_driven_directly()
    {
        var changes = MixedChanges();
        var expected = new List<Fr>();
        Drive(changes, expected);
        using var files = new TempFiles();
        var path = files.Write("changes.jsonl", ToLog(changes));

        var result = await Cli.RunAsync("smt", "replay", path);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(expected.Select(r => r.ToString()), result.OutLines);
        Assert.Empty(result.Err);
    }

    [Fact]
    public async Task Reads_stdin_and_tolerates_blank_lines_crlf_a_bom_and_no_final_newline()
    {
        var changes = MixedChanges().Take(6).ToList();
        var expected = new List<Fr>();
        Drive(changes, expected);
        var log = "\uFEFF" + "\r\n  \r\n" + ToLog(changes, "\r\n\r\n").TrimEnd('\r', '\n');

        var result = await Cli.RunWithStdinAsync(log, "smt", "replay", "-");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(expected.Select(r => r.ToString()), result.OutLines);
    }

    [Fact]
    public async Task An_empty_file_prints_nothing()
    {
        using var files = new TempFiles();

        var result = await Cli.RunAsync("smt", "replay", files.Write("empty.jsonl", ""));

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task A_long_log_streams_through_the_line_buffer()
    {
        // Lines padded with spaces so the log is several times the reader's 64 KiB buffer.
        var changes = Enumerable.Range(1, 300).Select(i => ("insert", Fr.FromUInt64((ulong)i), Fr.FromUInt64((ulong)i))).ToList();
        var expected = new List<Fr>();
        Drive(changes, expected);
        var log = ToLog(changes, new string(' ', 1000) + "\n");
        Assert.True(log.Length > 4 * 65536);
        using var files = new TempFiles();

        var result = await Cli.RunAsync("smt", "replay", files.Write("long.jsonl", log));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(expected.Select(r => r.ToString()), result.OutLines);
    }

    public static TheoryData<string, string> BadLines => new()
    {
        { """{"op":"insert","key":"1","value":"10" """, "malformed JSON" },
        { """not json""", "malformed JSON" },
        { """{"op":"insert","key":"2","value":"20"} trailing""", "malformed JSON" },
        { """["insert","2","20"]""", "expected a JSON object" },
        { """{"op":"insert","key":"02","value":"20"}""", "leading zeros" },
        { """{"op":"insert","key":"2","value":"-20"}""", "not a decimal number" },
        { """{"op":"insert","key":" 2","value":"20"}""", "not a decimal number" },
        { """{"op":"insert","key":"","value":"20"}""", "Empty number" },
        { """{"op":"insert","key":"21888242871839275222246405745257275088548364400416034343698204186575808495617","value":"1"}""", "not below" },
        { """{"op":"insert","key":"2","value":"99999999999999999999999999999999999999999999999999999999999999999999999999999999"}""", "more digits" },
        { """{"op":"insert","key":2,"value":"20"}""", "must be a JSON string" },
        { """{"op":"upsert","key":"2","value":"20"}""", "unknown op \"upsert\"" },
        { """{"op":"INSERT","key":"2","value":"20"}""", "unknown op" },
        { """{"op":1,"key":"2","value":"20"}""", "\"op\" must be a JSON string" },
        { """{"key":"2","value":"20"}""", "missing \"op\"" },
        { """{"op":"insert","value":"20"}""", "missing \"key\"" },
        { """{"op":"insert","key":"2"}""", "missing \"value\" for insert" },
        { """{"op":"update","key":"1"}""", "missing \"value\" for update" },
        { """{"op":"delete","key":"1","value":"10"}""", "delete takes no \"value\"" },
        { """{"op":"insert","key":"2","value":"20","note":"x"}""", "unexpected property \"note\"" },
        { """{"op":"insert","key":"2","key":"3","value":"20"}""", "\"key\" appears twice" },
        { """{"op":"insert","key":"1","value":"11"}""", "already in the tree" },
        { """{"op":"update","key":"2","value":"20"}""", "update of key 2, which is not in the tree" },
        { """{"op":"delete","key":"2"}""", "delete of key 2, which is not in the tree" },
    };

    [Theory]
    [MemberData(nameof(BadLines))]
    public async Task A_bad_line_exits_2_naming_the_line_after_printing_earlier_roots(string badLine, string fragment)
    {
        using var files = new TempFiles();
        // Line 1 is valid, line 2 blank (still counted), line 3 bad, line 4 never reached.
        var path = files.Write("bad.jsonl", $"{Insert1}\n\n{badLine}\n{Insert1}\n");
        var firstRoot = Drive([("insert", Fr.FromUInt64(1), Fr.FromUInt64(10))]).Root;

        var result = await Cli.RunAsync("smt", "replay", path);

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("line 3", result.Err);
        Assert.Contains(fragment, result.Err);
        Assert.Equal([firstRoot.ToString()], result.OutLines);
    }

    [Fact]
    public async Task A_bad_line_on_stdin_is_named_too()
    {
        var result = await Cli.RunWithStdinAsync($"{Insert1}\n{Insert1}\n", "smt", "replay", "-");

        Assert.Equal((int)ExitCode.BadInput, result.ExitCode);
        Assert.Contains("stdin line 2", result.Err);
        Assert.Single(result.OutLines);
    }

    [Fact]
    public async Task Invalid_utf8_is_a_bad_line_not_a_crash()
    {
        using var files = new TempFiles();
        var bytes = Encoding.UTF8.GetBytes(Insert1 + "\n").Concat(new byte[] { 0x7B, 0xFF, 0xFE, 0x7D, 0x0A }).ToArray();

        var result = await Cli.RunAsync("smt", "replay", files.Write("binary.jsonl", bytes));

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains("line 2", result.Err);
    }

    [Fact]
    public async Task A_missing_file_is_an_io_error()
    {
        using var files = new TempFiles();

        var result = await Cli.RunAsync("smt", "replay", files.PathOf("missing.jsonl"));

        Assert.Equal((int)ExitCode.IoError, result.ExitCode);
        Assert.Contains("no such file", result.Err);
    }

    [Fact]
    public async Task A_missing_argument_is_a_usage_error()
    {
        var result = await Cli.RunAsync("smt", "replay");

        Assert.Equal((int)ExitCode.BadInput, result.ExitCode);
        Assert.Contains("grid smt replay --help", result.Err);
    }
}
