namespace Firezone.Actors.Host.Tests;

/// <summary>Files of the repository the tests use as shipped (packaging/..., scripts/...), found above the test binaries.</summary>
internal static class RepositoryFile
{
    /// <summary>The full path of <paramref name="relativePath"/> (for example "packaging/firezone-tunnel@.service").</summary>
    public static string Find(string relativePath)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, relativePath);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException($"{relativePath} above {AppContext.BaseDirectory}");
    }
}
