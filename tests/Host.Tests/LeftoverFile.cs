namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Removes a file a daemon under test may have left, in a test's cleanup. File.Delete ignores a
/// missing file but throws for a missing directory: /run/wireguard and /run/firezone-tunnel exist
/// only once some daemon made them, which on a machine just booted (CI's) depends on test order.
/// </summary>
internal static class LeftoverFile
{
    public static void Delete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing was left there.
        }
    }
}
