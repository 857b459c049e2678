namespace Firezone.Actors.Host.Config;

/// <summary>
/// The routing table names ip(8) knows: its built-in "local", "main" and "default", and the names in
/// rt_tables (/etc/iproute2/rt_tables and rt_tables.d/*.conf; newer iproute2 falls back to
/// /usr/share/iproute2 or /usr/lib/iproute2). Each line is "NUMBER NAME"; '#' starts a comment.
/// Names are case-sensitive, as iproute2 compares them with strcmp.
/// </summary>
public sealed class RouteTableNames
{
    private static readonly string[] Directories = ["/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"];

    private static readonly Lazy<RouteTableNames> SystemNames = new(() => Load(Directories));

    private readonly HashSet<string> _names = new(StringComparer.Ordinal) { "local", "main", "default" };

    public RouteTableNames(IEnumerable<string> names)
    {
        _names.UnionWith(names);
    }

    /// <summary>This host's names, read once.</summary>
    public static RouteTableNames System => SystemNames.Value;

    public bool Contains(string name) => _names.Contains(name);

    /// <summary>The names in each directory's rt_tables and rt_tables.d/*.conf; missing or unreadable files are skipped.</summary>
    public static RouteTableNames Load(IEnumerable<string> directories)
    {
        var names = new List<string>();
        foreach (var directory in directories)
        {
            ReadInto(names, Path.Combine(directory, "rt_tables"));
            string confDirectory = Path.Combine(directory, "rt_tables.d");
            if (Directory.Exists(confDirectory))
            {
                foreach (var file in Directory.EnumerateFiles(confDirectory, "*.conf"))
                {
                    ReadInto(names, file);
                }
            }
        }
        return new RouteTableNames(names);
    }

    /// <summary>The names in one rt_tables file's text.</summary>
    public static IEnumerable<string> Parse(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            int hash = raw.IndexOf('#');
            var fields = (hash < 0 ? raw : raw[..hash]).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 2)
            {
                yield return fields[1];
            }
        }
    }

    private static void ReadInto(List<string> names, string file)
    {
        try
        {
            names.AddRange(Parse(File.ReadAllText(file)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Absent on this system: only the built-in names and the other files count.
        }
    }
}
