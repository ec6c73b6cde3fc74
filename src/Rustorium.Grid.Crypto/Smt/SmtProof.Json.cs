using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Rustorium.Grid.Crypto.Smt;

public sealed partial class SmtProof
{
    /// <summary>circomlib's own tests use <c>SMTVerifier(10)</c>; the JSON's embedded circom input uses at least that many levels.</summary>
    public const int DefaultCircomLevels = 10;

    /// <summary>The deepest circuit circomlib can build: <c>SMTVerifier</c> reads key bits from <c>Num2Bits_strict</c> (254 bits).</summary>
    public const int MaxCircomLevels = 254;

    private static readonly JsonWriterOptions Indented = new() { Indented = true };

    /// <summary>The number of levels the circom input inside <see cref="ToJson()"/> is padded to:
    /// max(<see cref="DefaultCircomLevels"/>, depth + 1), since the circuit needs a zero last sibling.</summary>
    public int DefaultCircomLevelsFor => Math.Max(DefaultCircomLevels, Depth + 1);

    /// <summary>
    /// The input JSON for circomlib's <c>SMTVerifier(nLevels)</c> template: <c>enabled</c> = 1,
    /// <c>fnc</c> = 0 (inclusion) or 1 (non-inclusion), <c>root</c>, <c>siblings</c> zero-padded to
    /// <paramref name="nLevels"/>, <c>oldKey</c>, <c>oldValue</c>, <c>isOld0</c>, <c>key</c>, <c>value</c>,
    /// every number a decimal string. Unused inputs are 0, as circomlib's tests set them.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="nLevels"/> is outside 2..254 (the circuit's limits).</exception>
    /// <exception cref="ArgumentException">The proof has <paramref name="nLevels"/> siblings or more: the circuit
    /// requires its last sibling to be zero (<c>SMTLevIns</c>), so a proof of depth d needs nLevels ≥ d + 1.</exception>
    public string ToCircomInputJson(int nLevels)
    {
        CheckCircomLevels(nLevels);
        var buffer = new ArrayBufferWriter<byte>(256 + 80 * nLevels);
        using (var w = new Utf8JsonWriter(buffer, Indented)) WriteCircomInput(w, nLevels);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// The proof as JSON (what <c>grid smt prove</c> prints and <c>grid smt verify</c> reads): <c>version</c>,
    /// <c>root</c>, <c>key</c>, <c>exists</c>, <c>value</c>, <c>isOld0</c>, <c>oldKey</c>, <c>oldValue</c>,
    /// <c>siblings</c> (field elements as decimal strings), plus <c>circom</c> = { <c>nLevels</c>, <c>input</c> }
    /// holding <see cref="ToCircomInputJson"/> for <see cref="DefaultCircomLevelsFor"/> levels (left out for a
    /// depth-254 proof, which no circuit accepts). <c>circom</c> is derived data: <see cref="FromJson"/> ignores it.
    /// </summary>
    public string ToJson() => ToJson(DefaultCircomLevelsFor);

    /// <summary>As <see cref="ToJson()"/>, with the embedded circom input padded to <paramref name="circomLevels"/>.</summary>
    /// <exception cref="ArgumentException">As for <see cref="ToCircomInputJson"/>.</exception>
    public string ToJson(int circomLevels)
    {
        bool withCircom = Depth < MaxCircomLevels;
        if (withCircom) CheckCircomLevels(circomLevels);
        var buffer = new ArrayBufferWriter<byte>(512 + 160 * Depth);
        using (var w = new Utf8JsonWriter(buffer, Indented))
        {
            w.WriteStartObject();
            w.WriteNumber("version", FormatVersion);
            w.WriteString("root", Root.ToString());
            w.WriteString("key", Key.ToString());
            w.WriteBoolean("exists", Exists);
            w.WriteString("value", Value.ToString());
            w.WriteBoolean("isOld0", IsOld0);
            w.WriteString("oldKey", OldKey.ToString());
            w.WriteString("oldValue", OldValue.ToString());
            w.WriteStartArray("siblings");
            foreach (var s in _siblings) w.WriteStringValue(s.ToString());
            w.WriteEndArray();
            if (withCircom)
            {
                w.WriteStartObject("circom");
                w.WriteNumber("nLevels", circomLevels);
                w.WritePropertyName("input");
                WriteCircomInput(w, circomLevels);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Reads the JSON written by <see cref="ToJson()"/>. Strict: every member except <c>circom</c> is required,
    /// no other member is allowed, field elements are canonical decimal strings, and the proof must have canonical shape.</summary>
    /// <exception cref="SmtProofFormatException">The text is not such a proof.</exception>
    public static SmtProof FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new SmtProofFormatException($"SMT proof JSON is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var o = doc.RootElement;
            if (o.ValueKind != JsonValueKind.Object) throw new SmtProofFormatException("SMT proof JSON must be an object.");
            foreach (var p in o.EnumerateObject())
            {
                if (p.Name is not ("version" or "root" or "key" or "exists" or "value" or "isOld0" or "oldKey" or "oldValue" or "siblings" or "circom"))
                    throw new SmtProofFormatException($"SMT proof JSON has unknown member \"{p.Name}\".");
            }
            var version = Member(o, "version");
            if (version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out int v) || v != FormatVersion)
                throw new SmtProofFormatException($"SMT proof JSON \"version\" must be {FormatVersion}; got {version.GetRawText()}.");

            var siblingsElement = Member(o, "siblings");
            if (siblingsElement.ValueKind != JsonValueKind.Array) throw new SmtProofFormatException("SMT proof JSON \"siblings\" must be an array.");
            int depth = siblingsElement.GetArrayLength();
            if (depth > SparseMerkleTree.MaxDepth)
                throw new SmtProofFormatException($"SMT proof JSON has {depth} siblings; the maximum is {SparseMerkleTree.MaxDepth}.");
            var siblings = new Fr[depth];
            int i = 0;
            foreach (var s in siblingsElement.EnumerateArray()) siblings[i] = Field(s, $"siblings[{i++}]");

            var root = Field(Member(o, "root"), "root");
            var key = Field(Member(o, "key"), "key");
            bool exists = Bool(Member(o, "exists"), "exists");
            var value = Field(Member(o, "value"), "value");
            bool isOld0 = Bool(Member(o, "isOld0"), "isOld0");
            var oldKey = Field(Member(o, "oldKey"), "oldKey");
            var oldValue = Field(Member(o, "oldValue"), "oldValue");

            var problem = ShapeProblem(exists, value, siblings, isOld0, oldKey, oldValue);
            if (problem is not null) throw new SmtProofFormatException($"SMT proof JSON is not canonical: {problem}");
            return new SmtProof(root, key, exists, value, siblings, isOld0, oldKey, oldValue);
        }
    }

    private void WriteCircomInput(Utf8JsonWriter w, int nLevels)
    {
        w.WriteStartObject();
        w.WriteString("enabled", "1");
        w.WriteString("fnc", Exists ? "0" : "1");
        w.WriteString("root", Root.ToString());
        w.WriteStartArray("siblings");
        for (int i = 0; i < nLevels; i++) w.WriteStringValue(i < _siblings.Length ? _siblings[i].ToString() : "0");
        w.WriteEndArray();
        w.WriteString("oldKey", OldKey.ToString());
        w.WriteString("oldValue", OldValue.ToString());
        w.WriteString("isOld0", IsOld0 ? "1" : "0");
        w.WriteString("key", Key.ToString());
        w.WriteString("value", Value.ToString());
        w.WriteEndObject();
    }

    private void CheckCircomLevels(int nLevels)
    {
        if (nLevels < 2 || nLevels > MaxCircomLevels)
            throw new ArgumentOutOfRangeException(nameof(nLevels), nLevels, $"SMTVerifier supports 2 to {MaxCircomLevels} levels.");
        if (Depth >= nLevels)
            throw new ArgumentException(
                $"The proof has {Depth} siblings; SMTVerifier({nLevels}) needs its last sibling to be zero, so it takes at most {nLevels - 1}. Use nLevels ≥ {Depth + 1}.",
                nameof(nLevels));
    }

    private static JsonElement Member(JsonElement o, string name) =>
        o.TryGetProperty(name, out var e) ? e : throw new SmtProofFormatException($"SMT proof JSON lacks \"{name}\".");

    private static bool Bool(JsonElement e, string name) => e.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new SmtProofFormatException($"SMT proof JSON \"{name}\" must be true or false; got {e.GetRawText()}."),
    };

    private static Fr Field(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.String)
            throw new SmtProofFormatException($"SMT proof JSON \"{name}\" must be a decimal string; got {e.GetRawText()}.");
        var text = e.GetString()!;
        if (!Fr.TryParse(text, out var x))
            throw new SmtProofFormatException(
                $"SMT proof JSON \"{name}\" = \"{text}\" is not a canonical decimal field element (digits only, no leading zeros, below p).");
        return x;
    }
}
