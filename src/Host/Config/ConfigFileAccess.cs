namespace Firezone.Actors.Host.Config;

/// <summary>
/// wg-quick's warning for a configuration file others can read (wg-quick(8) up: "Warning: `FILE' is
/// world accessible"): the file holds the interface's PrivateKey and any PresharedKey. The same
/// test: symlinks resolved, the file's and its directory's permission bits for others both non-zero.
/// </summary>
public static class ConfigFileAccess
{
    private const UnixFileMode OtherAccess = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public const string WorldAccessibleNote = "the file is world accessible and holds the PrivateKey: chmod 600 it (wg-quick warns about it too)";

    /// <summary>Whether wg-quick would warn about <paramref name="path"/>; false when it cannot be examined.</summary>
    public static bool IsWorldAccessible(string path)
    {
        try
        {
            string file = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
            string? directory = Path.GetDirectoryName(file);
            if (directory is null)
            {
                return false;
            }
            return (File.GetUnixFileMode(file) & File.GetUnixFileMode(directory) & OtherAccess) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
