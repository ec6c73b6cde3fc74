using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Rustorium.Grid.Cli;

/// <summary>
/// Numeric options with a range: parsing and the range check happen in one custom parser, so a bad value (not a
/// number, zero, negative, too large) is a parse error with one clear message and ends with <see cref="ExitCode.BadInput"/>.
/// </summary>
internal static class OptionValidation
{
    /// <summary>Accepts integers from <paramref name="min"/> to <paramref name="max"/>; '_' may group digits (1_000_000).</summary>
    public static Option<int> InRange(this Option<int> option, int min, int max = int.MaxValue)
    {
        option.CustomParser = result => TryParseInt(result, option.Name, min, max, out int value) ? value : default;
        return option;
    }

    /// <summary>As <see cref="InRange(Option{int}, int, int)"/> for an option without a default (null when absent).</summary>
    public static Option<int?> InRange(this Option<int?> option, int min, int max = int.MaxValue)
    {
        option.CustomParser = result => TryParseInt(result, option.Name, min, max, out int value) ? value : null;
        return option;
    }

    /// <summary>Accepts finite numbers greater than zero (fractions allowed).</summary>
    public static Option<double> Positive(this Option<double> option)
    {
        option.CustomParser = result =>
        {
            var token = LastToken(result);
            if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) && value > 0)
            {
                return value;
            }
            result.AddError($"{option.Name} must be a positive number; got '{token}'.");
            return default;
        };
        return option;
    }

    private static bool TryParseInt(ArgumentResult result, string name, int min, int max, out int value)
    {
        var token = LastToken(result);
        bool parsed = int.TryParse(token.Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
        if (parsed && value >= min && value <= max) return true;

        var range = max != int.MaxValue ? $"an integer from {min} to {max}"
            : min == 1 ? "a positive integer"
            : $"an integer of at least {min}";
        result.AddError($"{name} must be {range}; got '{token}'.");
        return false;
    }

    // The option's value is its last occurrence (`--leaves 5 --leaves 6` means 6), as for every other option.
    private static string LastToken(ArgumentResult result) => result.Tokens.Count == 0 ? "" : result.Tokens[^1].Value;
}
