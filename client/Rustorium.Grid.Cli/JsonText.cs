using System.Text;
using System.Text.Json;

namespace Rustorium.Grid.Cli;

/// <summary>The CLI's one way of printing a JSON object (results for scripts with <c>--json</c>, proof documents).</summary>
internal static class JsonText
{
    /// <summary>A JSON object whose properties <paramref name="writeProperties"/> writes, as one line or indented.</summary>
    public static string Object(Action<Utf8JsonWriter> writeProperties, bool indented = false)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
        {
            writer.WriteStartObject();
            writeProperties(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
