using System.Text.Json;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Cli.Smt;

/// <summary>
/// A proof file as <c>grid smt verify</c> reads it: the JSON of <see cref="SmtProof.ToJson()"/> (with its optional
/// embedded circom input) or the hex of <see cref="SmtProof.Encode"/>.
/// </summary>
internal sealed class ProofDocument
{
    private readonly JsonElement? _circom;

    private ProofDocument(SmtProof proof, JsonElement? circom)
    {
        Proof = proof;
        _circom = circom;
    }

    public SmtProof Proof { get; }

    /// <summary>Parses a proof file's text.</summary>
    /// <exception cref="GridCommandException"><see cref="ExitCode.BadInput"/>: not a proof in either form.</exception>
    public static ProofDocument Parse(string text, string name)
    {
        var trimmed = text.AsSpan().Trim();
        if (trimmed.IsEmpty) throw GridCommandException.BadInput($"{name}: empty file; expected proof JSON or hex.");
        return trimmed[0] == '{' ? ParseJson(text, name) : ParseHex(trimmed, name);
    }

    /// <summary>
    /// Why the embedded circom input (JSON only) does not match <see cref="Proof"/>, or null if it matches or is absent.
    /// FromJson ignores it as derived data; verify checks it because provers feed it to the circuit.
    /// </summary>
    public string? CircomInputProblem()
    {
        if (_circom is not { } circom) return null;
        int levels = circom.GetProperty("nLevels").GetInt32();
        string expected;
        try
        {
            expected = Proof.ToCircomInputJson(levels);
        }
        catch (ArgumentException)
        {
            return $"circom.nLevels = {levels} cannot hold this proof of depth {Proof.Depth} (it needs {Proof.Depth + 1} to {SmtProof.MaxCircomLevels}).";
        }
        using var expectedDocument = JsonDocument.Parse(expected);
        return JsonElement.DeepEquals(circom.GetProperty("input"), expectedDocument.RootElement)
            ? null
            : "the proof verifies, but its circom.input does not match it (it is for another key, value, root or path).";
    }

    private static ProofDocument ParseJson(string text, string name)
    {
        SmtProof proof;
        try
        {
            proof = SmtProof.FromJson(text);
        }
        catch (SmtProofFormatException e)
        {
            throw GridCommandException.BadInput($"{name}: not a valid proof: {e.Message}", e);
        }

        // FromJson accepted the document, so it parses; only "circom" is left to check for shape.
        using var document = JsonDocument.Parse(text);
        if (!document.RootElement.TryGetProperty("circom", out var circom)) return new ProofDocument(proof, null);
        if (circom.ValueKind != JsonValueKind.Object
            || !circom.TryGetProperty("nLevels", out var levels) || levels.ValueKind != JsonValueKind.Number || !levels.TryGetInt32(out _)
            || !circom.TryGetProperty("input", out var input) || input.ValueKind != JsonValueKind.Object)
        {
            throw GridCommandException.BadInput($"{name}: not a valid proof: \"circom\" must be {{\"nLevels\": <integer>, \"input\": {{...}}}}.");
        }
        return new ProofDocument(proof, circom.Clone());
    }

    private static ProofDocument ParseHex(ReadOnlySpan<char> hex, string name)
    {
        if (hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) hex = hex[2..];
        byte[] bytes;
        try
        {
            bytes = Convert.FromHexString(hex);
        }
        catch (FormatException e)
        {
            throw GridCommandException.BadInput($"{name}: not a proof: expected the JSON of `grid smt prove` or the hex of `grid smt prove --binary`.", e);
        }
        try
        {
            return new ProofDocument(SmtProof.Decode(bytes), null);
        }
        catch (SmtProofFormatException e)
        {
            throw GridCommandException.BadInput($"{name}: not a valid proof encoding: {e.Message}", e);
        }
    }
}
