using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>The one-line messages a user sees when a TUN device cannot be made.</summary>
internal static class TunErrors
{
    public const string TunPath = "/dev/net/tun";

    /// <summary>open("/dev/net/tun") failed.</summary>
    public static string OpenFailed(int errno)
    {
        if (errno == LibC.ENOENT)
        {
            return $"{TunPath} does not exist: load the tun module (modprobe tun); in a container, give it the device (docker run --device /dev/net/tun)";
        }
        if (errno == LibC.ENODEV || errno == LibC.ENXIO)
        {
            return $"{TunPath} has no driver behind it: load the tun module (modprobe tun)";
        }
        if (errno == LibC.EACCES || errno == LibC.EPERM)
        {
            return $"cannot open {TunPath}: permission denied (run as root, or give the process CAP_NET_ADMIN)";
        }
        return $"cannot open {TunPath}: {Errno.Describe(errno)}";
    }

    /// <summary>TUNSETIFF for <paramref name="name"/> failed.</summary>
    public static string SetIffFailed(string name, int errno)
    {
        string shown = string.IsNullOrEmpty(name) ? "(kernel-chosen name)" : name;
        if (errno == LibC.EPERM)
        {
            return $"creating TUN device {shown} needs CAP_NET_ADMIN (run as root)";
        }
        if (errno == LibC.EBUSY)
        {
            return $"TUN device name {shown} is already in use (another process has it open)";
        }
        if (errno == LibC.EINVAL)
        {
            // The name itself passed ValidateName; the kernel (tun_set_iff) refuses a name an
            // interface of another kind has, or a TUN/TAP device made with other flags.
            return NameHeld(name)
                ? $"cannot create TUN device {shown}: an interface with that name exists and is not a TUN device this daemon can use (see ip -d link show {shown}); choose another name or remove it"
                : $"cannot create TUN device {shown}: the kernel refused the name ({Errno.Describe(errno)})";
        }
        return $"creating TUN device {shown} failed: {Errno.Describe(errno)}";
    }

    private static bool NameHeld(string name)
    {
        try
        {
            return !string.IsNullOrEmpty(name) && NetworkInterfaceControl.Exists(name);
        }
        catch (TunDeviceException)
        {
            return false; // only the message depends on it
        }
    }

    /// <summary>Checks a requested name before any system call; returns the message, or null when fine.</summary>
    public static string? ValidateName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }
        int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        if (bytes > Interop.If.IFNAMSIZ - 1)
        {
            return $"TUN device name '{name}' is too long: {bytes} bytes, at most {Interop.If.IFNAMSIZ - 1} allowed";
        }
        // dev_valid_name() in net/core/dev.c: no '/', ':' or whitespace, and not "." or "..".
        if (name == "." || name == "..")
        {
            return $"TUN device name '{name}' is not a valid interface name";
        }
        foreach (char c in name)
        {
            if (c == '/' || c == ':' || char.IsWhiteSpace(c) || c == '\0')
            {
                return $"TUN device name '{name}' is not a valid interface name: no '/', ':' or whitespace allowed";
            }
        }
        return null;
    }
}
