using System.CommandLine;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Cli.Smt;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Commands;

/// <summary><c>grid smt</c>: replay change logs into a sparse Merkle tree, prove keys, verify proofs, all offline.</summary>
internal static class SmtCommand
{
    private const string ChangeLogFormat = """
        The change log is JSON lines, one change per line, applied in order to an empty tree:
          {"op":"insert","key":"<decimal>","value":"<decimal>"}   add a key that is not in the tree
          {"op":"update","key":"<decimal>","value":"<decimal>"}   change the value of a key in the tree
          {"op":"delete","key":"<decimal>"}                       remove a key in the tree (no "value")
        Keys and values are BN254 field elements written as JSON strings in canonical decimal (digits only, no
        leading zeros, below p). Blank lines are skipped; no other property is allowed. "-" reads stdin.
        The file is streamed, so it may hold millions of lines.
        """;

    public static Command Create(GridConsole console)
    {
        var smt = new GridCommand("smt", "Sparse Merkle trees (iden3 / circomlib, Poseidon over BN254): replay change logs, prove keys, verify proofs.")
        {
            Details = """
                The tree is circomlibjs' SMT: after the same changes it has the same root, and its proofs verify with
                circomlib's SMTVerifier circuit. Everything here runs offline on files; no silo is involved.
                """,
            Examples =
            [
                "grid smt replay changes.jsonl",
                "grid smt prove changes.jsonl 42 > proof.json",
                "grid smt verify proof.json",
            ],
        };
        smt.Subcommands.Add(CreateReplay(console));
        smt.Subcommands.Add(CreateProve(console));
        smt.Subcommands.Add(CreateVerify(console));
        return smt;
    }

    private static Argument<string> ChangeLogArgument() => new("file")
    {
        Description = "The change log (JSON lines, see below); \"-\" reads stdin.",
    };

    private static Command CreateReplay(GridConsole console)
    {
        var file = ChangeLogArgument();
        var command = new GridCommand("replay", "Apply a change log to an empty tree and print the root, in decimal, after each change.")
        {
            Details = ChangeLogFormat + "\n" + """

                Output: one line per change (blank lines print nothing), the root after that change. On a bad line
                (malformed JSON, a number that is not canonical or not below p, an unknown op, a missing or extra
                "value", an insert of a key already in the tree, an update or delete of a key not in it) replay stops
                with a message naming the line on stderr; the roots of the lines before it are already printed.
                """,
            Examples =
            [
                "printf '%s\\n' '{\"op\":\"insert\",\"key\":\"1\",\"value\":\"10\"}' '{\"op\":\"delete\",\"key\":\"1\"}' | grid smt replay -",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "every line applied"),
                (ExitCode.BadInput, "a bad line (the message names it); earlier roots are printed"),
                (ExitCode.IoError, "the file cannot be read"),
            ],
        };
        command.Arguments.Add(file);
        command.SetAction((parse, ct) =>
        {
            var output = console.Out;
            ChangeLogReplay.Apply(console, parse.GetValue(file)!, new SparseMerkleTree(), tree => output.WriteLine(tree.Root.ToString()), ct);
            return Task.FromResult((int)ExitCode.Ok);
        });
        return command;
    }

    private static Command CreateProve(GridConsole console)
    {
        var file = ChangeLogArgument();
        var key = new Argument<string>("key") { Description = "The key to prove, in canonical decimal (present: inclusion; absent: non-inclusion)." };
        var levels = new Option<int?>("--levels")
        {
            Description =
                $"nLevels of the SMTVerifier circuit the embedded circom input is for (2..{SmtProof.MaxCircomLevels}, at least the proof's " +
                $"depth + 1). Default: max({SmtProof.DefaultCircomLevels}, depth + 1).",
            HelpName = "N",
        }.InRange(2, SmtProof.MaxCircomLevels);
        var binary = new Option<bool>("--binary") { Description = "Print the compact binary encoding (SmtProof.Encode) in hex instead of JSON." };

        var command = new GridCommand("prove", "Replay a change log, then print a proof of inclusion or non-inclusion of a key.")
        {
            Details = ChangeLogFormat + "\n" + """

                Output (JSON, the input of `grid smt verify`): version, root, key, exists (true = inclusion), value,
                isOld0 and oldKey/oldValue (non-inclusion: the path ends in an empty branch, or in that other leaf),
                siblings (root level first, trailing zeros trimmed), and circom = {nLevels, input}: the input JSON of
                circomlib's SMTVerifier(nLevels), ready for snarkjs (`jq .circom.input proof.json > input.json`).
                With --binary: one line of lower-case hex, the canonical encoding (see docs/proofs.md).
                """,
            Examples =
            [
                "grid smt prove changes.jsonl 42 > proof.json",
                "grid smt prove changes.jsonl 42 --levels 20 | jq .circom.input > input.json",
                "grid smt prove changes.jsonl 42 --binary",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "the proof was printed"),
                (ExitCode.BadInput, "a bad change-log line, a non-canonical key, or --levels too small for the proof"),
                (ExitCode.IoError, "the file cannot be read"),
            ],
        };
        command.Arguments.Add(file);
        command.Arguments.Add(key);
        command.Options.Add(levels);
        command.Options.Add(binary);
        command.SetAction((parse, ct) =>
        {
            var target = ParseField("key", parse.GetValue(key)!);
            var tree = new SparseMerkleTree();
            ChangeLogReplay.Apply(console, parse.GetValue(file)!, tree, applied: null, ct);
            var proof = tree.Prove(target);

            if (parse.GetValue(binary))
            {
                console.Out.WriteLine(Convert.ToHexStringLower(proof.Encode()));
                return Task.FromResult((int)ExitCode.Ok);
            }

            int circomLevels = parse.GetValue(levels) ?? proof.DefaultCircomLevelsFor;
            if (circomLevels <= proof.Depth && proof.Depth < SmtProof.MaxCircomLevels)
            {
                throw GridCommandException.BadInput(
                    $"--levels {circomLevels} is too small: this proof has depth {proof.Depth}, and SMTVerifier needs " +
                    $"nLevels >= depth + 1 = {proof.Depth + 1} (its last sibling must be zero).");
            }
            console.Out.WriteLine(proof.ToJson(circomLevels));
            return Task.FromResult((int)ExitCode.Ok);
        });
        return command;
    }

    private static Command CreateVerify(GridConsole console)
    {
        var file = new Argument<string>("proof")
        {
            Description = "The proof: the JSON of `grid smt prove`, or the hex of `grid smt prove --binary`; \"-\" reads stdin.",
        };
        var root = new Option<string>("--root")
        {
            Description = "Also require the proof to be about this root (decimal): the root you trust, e.g. from a silo.",
            HelpName = "decimal",
        };
        var command = new GridCommand("verify", "Check a sparse Merkle tree proof (inclusion or non-inclusion).")
        {
            Details = """
                Recomputes the root from the key, the value (or the old leaf / empty branch) and the siblings, as
                circomlib's SMTVerifier does. A proof only shows something about the root it names: pass --root with
                a root obtained independently. The embedded circom input, when present, must match the proof.
                Prints "valid: inclusion of key K (value V) at root R" or "valid: non-inclusion of key K at root R"
                on stdout, or "invalid: <reason>".
                """,
            Examples =
            [
                "grid smt verify proof.json",
                "grid smt prove changes.jsonl 42 --binary | grid smt verify - --root 1234...",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "the proof verifies"),
                (ExitCode.Negative, "the proof is well-formed but does not verify (or names another root than --root)"),
                (ExitCode.BadInput, "the file is not a proof (malformed JSON or hex, non-canonical numbers), or a bad --root"),
                (ExitCode.IoError, "the file cannot be read"),
            ],
        };
        command.Arguments.Add(file);
        command.Options.Add(root);
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            var expectedRoot = parse.GetValue(root) is { } r ? ParseField("--root", r) : (Fr?)null;
            var text = await InputFiles.ReadAllTextAsync(console, path, ct).ConfigureAwait(false);
            var document = ProofDocument.Parse(text, InputFiles.DisplayName(path));

            string? problem = document.Proof.Verify() ? document.CircomInputProblem() : "the proof does not verify: its path does not hash to its root.";
            if (problem is null && expectedRoot is { } expected && expected != document.Proof.Root)
            {
                problem = $"the proof is about root {document.Proof.Root}, not the expected {expected}.";
            }
            if (problem is not null)
            {
                await console.Out.WriteLineAsync("invalid: " + problem).ConfigureAwait(false);
                return (int)ExitCode.Negative;
            }

            var p = document.Proof;
            await console.Out.WriteLineAsync(p.Exists
                ? $"valid: inclusion of key {p.Key} (value {p.Value}) at root {p.Root}"
                : $"valid: non-inclusion of key {p.Key} at root {p.Root}").ConfigureAwait(false);
            return (int)ExitCode.Ok;
        });
        return command;
    }

    private static Fr ParseField(string what, string text)
    {
        try
        {
            return Fr.Parse(text);
        }
        catch (FieldFormatException e)
        {
            throw GridCommandException.BadInput($"{what}: {e.Message}", e);
        }
    }
}
