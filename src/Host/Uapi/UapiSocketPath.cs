namespace Firezone.Actors.Host.Uapi;

/// <summary>Where wg(8) looks for a userspace implementation's socket (wireguard-tools ipc-uapi-unix.h).</summary>
public static class UapiSocketPath
{
    public const string DefaultDirectory = "/var/run/wireguard";

    public static string For(string interfaceName, string directory = DefaultDirectory) =>
        Path.Combine(directory, interfaceName + ".sock");

    /// <summary>
    /// Interface names as Linux accepts them (IFNAMSIZ 16 including the NUL; no '/', whitespace or
    /// ':'), checked before the name becomes part of a path. A '%' is refused too: the kernel takes
    /// a name with one as a pattern and replaces its "%d" with a number, so no interface is ever
    /// called so, and a daemon started as "wg%d" would serve wg%d.sock for a device named wg0.
    /// </summary>
    public static bool IsValidInterfaceName(string name)
    {
        if (name.Length == 0 || name.Length > 15 || name == "." || name == "..")
        {
            return false;
        }
        foreach (char c in name)
        {
            if (c == '/' || c == ':' || c == '%' || char.IsWhiteSpace(c) || c < 0x21 || c > 0x7e)
            {
                return false;
            }
        }
        return true;
    }
}
