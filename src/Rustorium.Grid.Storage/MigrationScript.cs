using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace Rustorium.Grid.Storage;

/// <summary>One embedded schema migration script: its version (from its <c>NNNN_</c> prefix), name, text and SHA-256.</summary>
/// <param name="Version">1, 2, 3, … without gaps.</param>
/// <param name="Name">The file name without <c>.sql</c>, e.g. <c>0001_initial</c>.</param>
/// <param name="Sql">The script, line endings normalised to <c>\n</c>.</param>
/// <param name="Checksum">SHA-256 (hex) of <paramref name="Sql"/>, recorded when applied, so an edited script is noticed.</param>
public sealed record MigrationScript(int Version, string Name, string Sql, string Checksum)
{
    /// <summary>
    /// The scripts embedded in this assembly under <paramref name="resourcePrefix"/> (<c>….Sql.NNNN_name.sql</c>), by version.
    /// </summary>
    /// <exception cref="InvalidOperationException">None is embedded, a name is not <c>NNNN_description.sql</c>, or versions have gaps (a build error).</exception>
    internal static IReadOnlyList<MigrationScript> LoadEmbedded(string resourcePrefix, string engine)
    {
        var assembly = typeof(MigrationScript).Assembly;
        var migrations = new List<MigrationScript>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(resourcePrefix, StringComparison.Ordinal) || !resource.EndsWith(".sql", StringComparison.Ordinal)) continue;
            var name = resource[resourcePrefix.Length..^".sql".Length];
            int underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name.AsSpan(0, underscore), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int version))
                throw new InvalidOperationException($"Migration script {resource} is not named NNNN_description.sql.");
            var sql = Read(assembly, resource).ReplaceLineEndings("\n");
            var checksum = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql)));
            migrations.Add(new MigrationScript(version, name, sql, checksum));
        }
        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        if (migrations.Count == 0) throw new InvalidOperationException($"No {engine} migration scripts are embedded in the assembly.");
        for (int i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
                throw new InvalidOperationException($"{engine} migrations must be numbered 1, 2, 3, … without gaps; found {migrations[i].Name} at position {i + 1}.");
        }
        return migrations;
    }

    private static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
