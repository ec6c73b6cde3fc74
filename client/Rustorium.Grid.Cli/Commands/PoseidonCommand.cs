using System.CommandLine;
using System.Text;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Cli.Commands;

/// <summary><c>grid poseidon</c>: circomlib's Poseidon of field elements, or of bytes through <see cref="PoseidonBytes"/>.</summary>
internal static class PoseidonCommand
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static Command Create(GridConsole console)
    {
        var inputs = new Argument<string[]>("decimal")
        {
            Description = $"{PoseidonHash.MinInputs} to {PoseidonHash.MaxInputs} BN254 field elements in canonical decimal.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var bytes = new Option<string>("--bytes")
        {
            Description = "Hash these bytes instead, given in hex (optionally 0x-prefixed; \"\" is the empty string).",
            HelpName = "hex",
        };
        var text = new Option<string>("--text")
        {
            Description = "Hash the UTF-8 encoding of this text instead.",
            HelpName = "utf8",
        };

        var command = new GridCommand("poseidon", "Print the Poseidon hash (circomlib, BN254) of field elements or of bytes, in decimal.")
        {
            Details = $"""
                With decimal inputs: circomlib's poseidon([x1, ..., xn]) for n = {PoseidonHash.MinInputs}..{PoseidonHash.MaxInputs}, the same
                value as circomlibjs' poseidon and the Poseidon(n) circom template. Each input must be canonical:
                digits only, no sign, no leading zeros, below the field modulus
                p = 21888242871839275222246405745257275088548364400416034343698204186575808495617.

                With --bytes or --text: the grid's bytes-to-field mapping (PoseidonBytes), which is how keys and
                values become field elements: Poseidon(length, chunk0, ...) over 31-byte big-endian chunks,
                chained 15 chunks at a time. Use it to reproduce the tree key of a byte string.
                """,
            Examples =
            [
                "grid poseidon 1 2        # prints 7853200120776062878684798364095072458815029376092732009249414926327459813530",
                "grid poseidon --text user:42",
                "grid poseidon --bytes 0x00ff10",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "the hash was printed"),
                (ExitCode.BadInput, "wrong number of inputs, a non-canonical number, bad hex, or inputs mixed with --bytes/--text"),
            ],
        };
        command.Arguments.Add(inputs);
        command.Options.Add(bytes);
        command.Options.Add(text);

        command.SetAction(parse =>
        {
            var decimals = parse.GetValue(inputs) ?? [];
            var hex = parse.GetValue(bytes);
            var utf8 = parse.GetValue(text);
            Fr hash = Hash(decimals, hex, utf8);
            console.Out.WriteLine(hash.ToString());
            return (int)ExitCode.Ok;
        });
        return command;
    }

    private static Fr Hash(string[] decimals, string? hex, string? text)
    {
        int modes = (decimals.Length > 0 ? 1 : 0) + (hex is not null ? 1 : 0) + (text is not null ? 1 : 0);
        if (modes > 1) throw GridCommandException.BadInput("give either decimal inputs, --bytes or --text, not several of them.");
        if (hex is not null) return PoseidonBytes.Hash(ParseHex(hex));
        if (text is not null) return PoseidonBytes.Hash(EncodeUtf8(text));

        if (decimals.Length < PoseidonHash.MinInputs || decimals.Length > PoseidonHash.MaxInputs)
        {
            throw GridCommandException.BadInput(
                $"Poseidon takes {PoseidonHash.MinInputs} to {PoseidonHash.MaxInputs} inputs; got {decimals.Length}. " +
                "Use --bytes or --text to hash longer data.");
        }
        var elements = new Fr[decimals.Length];
        for (int i = 0; i < decimals.Length; i++)
        {
            try
            {
                elements[i] = Fr.Parse(decimals[i]);
            }
            catch (FieldFormatException e)
            {
                throw GridCommandException.BadInput($"input {i + 1}: {e.Message}", e);
            }
        }
        return PoseidonHash.Hash(elements);
    }

    private static byte[] ParseHex(string hex)
    {
        var digits = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex[2..] : hex;
        try
        {
            return Convert.FromHexString(digits);
        }
        catch (FormatException e)
        {
            throw GridCommandException.BadInput(
                $"--bytes: '{hex}' is not hex (an even number of digits 0-9, a-f, optionally prefixed by 0x).", e);
        }
    }

    private static byte[] EncodeUtf8(string text)
    {
        try
        {
            return StrictUtf8.GetBytes(text);
        }
        catch (EncoderFallbackException e)
        {
            throw GridCommandException.BadInput("--text: the text is not valid Unicode (it holds a lone surrogate).", e);
        }
    }
}
