using System.Text;
using System.Text.Json;
using Rustorium.Grid.Crypto;

namespace Rustorium.Grid.Cli.Smt;

/// <summary>What one change-log line asks of the tree.</summary>
internal enum ChangeOperation
{
    Insert = 1,
    Update = 2,
    Delete = 3,
}

/// <summary>
/// One line of a change log, the JSON-lines format of <c>grid smt replay</c>:
/// <c>{"op":"insert|update|delete","key":"&lt;decimal&gt;","value":"&lt;decimal&gt;"}</c>, with "value" present for
/// insert and update and absent for delete. Numbers are JSON strings holding canonical decimal field elements
/// (see <see cref="Fr.Parse"/>); no other property is allowed, so a misspelt name is an error, not a silent default.
/// </summary>
internal readonly record struct ChangeLogLine(ChangeOperation Operation, Fr Key, Fr Value)
{
    private static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 2 };

    /// <summary>Whether the line holds only whitespace (such lines are skipped).</summary>
    public static bool IsBlank(ReadOnlySpan<byte> line) => line.Trim(" \t\r\n"u8).IsEmpty;

    /// <summary>Parses one non-blank line.</summary>
    /// <param name="error">Why the line is invalid (without the line number), when false is returned.</param>
    public static bool TryParse(ReadOnlySpan<byte> line, out ChangeLogLine change, out string error)
    {
        change = default;
        try
        {
            return TryParseObject(line, out change, out error);
        }
        catch (JsonException e)
        {
            error = "malformed JSON: " + WithoutPosition(e.Message);
            return false;
        }
    }

    private static bool TryParseObject(ReadOnlySpan<byte> line, out ChangeLogLine change, out string error)
    {
        change = default;
        var reader = new Utf8JsonReader(line, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            error = """expected a JSON object such as {"op":"insert","key":"1","value":"2"}.""";
            return false;
        }

        ChangeOperation? op = null;
        Fr key = default, value = default;
        bool hasKey = false, hasValue = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("op"u8))
            {
                if (op is not null) { error = "\"op\" appears twice."; return false; }
                if (!ReadString(ref reader, "op", out var text, out error)) return false;
                op = text switch
                {
                    "insert" => ChangeOperation.Insert,
                    "update" => ChangeOperation.Update,
                    "delete" => ChangeOperation.Delete,
                    _ => null,
                };
                if (op is null) { error = $"unknown op \"{text}\"; expected insert, update or delete."; return false; }
            }
            else if (reader.ValueTextEquals("key"u8))
            {
                if (hasKey) { error = "\"key\" appears twice."; return false; }
                if (!ReadElement(ref reader, "key", out key, out error)) return false;
                hasKey = true;
            }
            else if (reader.ValueTextEquals("value"u8))
            {
                if (hasValue) { error = "\"value\" appears twice."; return false; }
                if (!ReadElement(ref reader, "value", out value, out error)) return false;
                hasValue = true;
            }
            else
            {
                error = $"unexpected property \"{reader.GetString()}\"; a line has only \"op\", \"key\" and \"value\".";
                return false;
            }
        }
        // The loop left the reader on the object's end; anything after it makes Read throw ("invalid after a single JSON value").
        while (reader.Read()) { }

        if (op is null) { error = "missing \"op\" (insert, update or delete)."; return false; }
        if (!hasKey) { error = $"missing \"key\" for {Name(op.Value)}."; return false; }
        if (op == ChangeOperation.Delete && hasValue) { error = "delete takes no \"value\"."; return false; }
        if (op != ChangeOperation.Delete && !hasValue) { error = $"missing \"value\" for {Name(op.Value)}."; return false; }

        change = new ChangeLogLine(op.Value, key, value);
        error = "";
        return true;
    }

    public static string Name(ChangeOperation op) => op switch
    {
        ChangeOperation.Insert => "insert",
        ChangeOperation.Update => "update",
        ChangeOperation.Delete => "delete",
        _ => op.ToString(),
    };

    private static bool ReadString(ref Utf8JsonReader reader, string property, out string text, out string error)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.String)
        {
            text = "";
            error = $"\"{property}\" must be a JSON string.";
            return false;
        }
        text = reader.GetString()!;
        error = "";
        return true;
    }

    private static bool ReadElement(ref Utf8JsonReader reader, string property, out Fr element, out string error)
    {
        element = default;
        reader.Read();
        if (reader.TokenType != JsonTokenType.String)
        {
            error = $"\"{property}\" must be a JSON string holding a canonical decimal number, e.g. \"{property}\":\"42\".";
            return false;
        }

        // Fast path: an unescaped string is parsed straight from the line's bytes (non-ASCII bytes become '?', which
        // fails and falls through to the slow path for the exact message).
        if (!reader.ValueIsEscaped && !reader.HasValueSequence && reader.ValueSpan.Length <= 80)
        {
            var utf8 = reader.ValueSpan;
            Span<char> chars = stackalloc char[utf8.Length];
            int n = Encoding.ASCII.GetChars(utf8, chars);
            if (Fr.TryParse(chars[..n], out element))
            {
                error = "";
                return true;
            }
        }

        try
        {
            element = Fr.Parse(reader.GetString()!);
            error = "";
            return true;
        }
        catch (FieldFormatException e)
        {
            error = $"\"{property}\": {e.Message}";
            return false;
        }
    }

    private static string WithoutPosition(string message)
    {
        // Utf8JsonReader messages end with " LineNumber: 0 | BytePositionInLine: 7."; the CLI reports lines itself.
        int at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (at < 0) return message;
        int column = message.IndexOf("BytePositionInLine: ", at, StringComparison.Ordinal);
        var head = message[..at];
        if (column < 0) return head;
        var position = message[(column + "BytePositionInLine: ".Length)..].TrimEnd('.');
        return long.TryParse(position, out var p) ? $"{head} (column {p + 1})" : head;
    }
}
