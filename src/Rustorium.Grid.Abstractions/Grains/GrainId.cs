using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Rustorium.Grid;

/// <summary>How a grain is keyed. Wire and persisted values are explicit and append-only.</summary>
public enum GrainKeyKind : byte
{
    /// <summary>A 64-bit signed integer key (<see cref="IGrainWithIntegerKey"/>).</summary>
    Integer = 1,

    /// <summary>A string key, compared ordinally (<see cref="IGrainWithStringKey"/>).</summary>
    String = 2,
}

/// <summary>
/// The identity of a grain: its grain type name and its key. Two ids are equal when type, key kind and key are equal
/// (ordinal string comparison). The string form (<see cref="ToString"/>) is stable and round-trips through
/// <see cref="Parse"/>: <c>{type}/i/{integer}</c> or <c>{type}/s/{string}</c>, e.g. <c>shard/i/42</c>,
/// <c>region/s/eu-west</c>.
/// </summary>
/// <remarks>
/// Grain type names never contain <c>/</c>, so the first <c>/</c> ends the type and everything after <c>s/</c> is the
/// string key verbatim (it may itself contain <c>/</c>). <c>default(GrainId)</c> is the "no grain" value
/// (<see cref="IsDefault"/>); it is never the id of a grain.
/// </remarks>
public readonly struct GrainId : IEquatable<GrainId>
{
    /// <summary>Longest grain type name, in characters.</summary>
    public const int MaxTypeNameLength = 256;

    private readonly string? _type;
    private readonly string? _stringKey;
    private readonly long _integerKey;

    private GrainId(string type, GrainKeyKind kind, long integerKey, string? stringKey)
    {
        _type = type;
        KeyKind = kind;
        _integerKey = integerKey;
        _stringKey = stringKey;
    }

    /// <summary>The id of the grain of <paramref name="type"/> with integer <paramref name="key"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if <paramref name="type"/> is not a valid grain type name.</exception>
    public static GrainId Create(string type, long key)
    {
        ValidateTypeName(type);
        return new GrainId(type, GrainKeyKind.Integer, key, null);
    }

    /// <summary>The id of the grain of <paramref name="type"/> with string <paramref name="key"/> (empty allowed).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if <paramref name="type"/> is not a valid grain type name.</exception>
    public static GrainId Create(string type, string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ValidateTypeName(type);
        return new GrainId(type, GrainKeyKind.String, 0, key);
    }

    /// <summary>The grain type name (see <see cref="GrainTypeAttribute"/>); empty for <c>default</c>.</summary>
    public string Type => _type ?? string.Empty;

    /// <summary>How the grain is keyed; 0 (no defined value) for <c>default</c>.</summary>
    public GrainKeyKind KeyKind { get; }

    /// <summary>True for <c>default(GrainId)</c>, which identifies no grain.</summary>
    public bool IsDefault => _type is null;

    /// <summary>The integer key.</summary>
    /// <exception cref="InvalidOperationException">The grain is not integer-keyed.</exception>
    public long IntegerKey => KeyKind == GrainKeyKind.Integer
        ? _integerKey
        : throw new InvalidOperationException($"Grain {this} is not keyed by an integer.");

    /// <summary>The string key.</summary>
    /// <exception cref="InvalidOperationException">The grain is not string-keyed.</exception>
    public string StringKey => KeyKind == GrainKeyKind.String
        ? _stringKey!
        : throw new InvalidOperationException($"Grain {this} is not keyed by a string.");

    /// <summary>True if <paramref name="name"/> is a valid grain type name: 1..256 characters, no <c>/</c>, whitespace or control characters.</summary>
    public static bool IsValidTypeName([NotNullWhen(true)] string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxTypeNameLength) return false;
        foreach (char c in name)
        {
            if (c == '/' || char.IsWhiteSpace(c) || char.IsControl(c)) return false;
        }
        return true;
    }

    /// <summary>Throws unless <paramref name="name"/> is a valid grain type name (see <see cref="IsValidTypeName"/>).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> naming the problem.</exception>
    public static void ValidateTypeName(string? name)
    {
        if (!IsValidTypeName(name))
        {
            throw GridException.InvalidArgument(
                $"Grain type name \"{name}\" is invalid: it must be 1..{MaxTypeNameLength} characters with no '/', whitespace or control characters.");
        }
    }

    /// <summary>The stable string form: <c>{type}/i/{integer}</c> or <c>{type}/s/{string}</c>; <c>"(none)"</c> for <c>default</c>.</summary>
    public override string ToString() => KeyKind switch
    {
        GrainKeyKind.Integer => string.Create(CultureInfo.InvariantCulture, $"{_type}/i/{_integerKey}"),
        GrainKeyKind.String => $"{_type}/s/{_stringKey}",
        _ => "(none)",
    };

    /// <summary>Parses the string form written by <see cref="ToString"/>.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if <paramref name="text"/> is not a grain id.</exception>
    public static GrainId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var id)
            ? id
            : throw GridException.InvalidArgument($"\"{text}\" is not a grain id; expected {{type}}/i/{{integer}} or {{type}}/s/{{string}}.");
    }

    /// <summary>Parses the string form written by <see cref="ToString"/>; false if <paramref name="text"/> is not a grain id.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out GrainId id)
    {
        id = default;
        if (text is null) return false;
        int slash = text.IndexOf('/');
        if (slash <= 0 || text.Length < slash + 3 || text[slash + 2] != '/') return false;
        string type = text[..slash];
        if (!IsValidTypeName(type)) return false;
        ReadOnlySpan<char> key = text.AsSpan(slash + 3);
        switch (text[slash + 1])
        {
            case 'i':
                // Strict: exactly what ToString writes (optional '-', digits, no spaces, no '+', no leading zeros).
                if (!long.TryParse(key, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value)) return false;
                if (!key.SequenceEqual(value.ToString(CultureInfo.InvariantCulture))) return false;
                id = new GrainId(type, GrainKeyKind.Integer, value, null);
                return true;
            case 's':
                id = new GrainId(type, GrainKeyKind.String, 0, key.ToString());
                return true;
            default:
                return false;
        }
    }

    /// <inheritdoc />
    public bool Equals(GrainId other) =>
        KeyKind == other.KeyKind
        && string.Equals(_type, other._type, StringComparison.Ordinal)
        && _integerKey == other._integerKey
        && string.Equals(_stringKey, other._stringKey, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is GrainId other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(
        _type is null ? 0 : StringComparer.Ordinal.GetHashCode(_type),
        KeyKind,
        _integerKey,
        _stringKey is null ? 0 : StringComparer.Ordinal.GetHashCode(_stringKey));

    /// <summary>Value equality.</summary>
    public static bool operator ==(GrainId left, GrainId right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(GrainId left, GrainId right) => !left.Equals(right);
}
