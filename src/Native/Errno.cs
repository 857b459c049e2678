using System.Runtime.InteropServices;

namespace Firezone.Actors.Native;

/// <summary>errno values as people read them ("Operation not permitted (EPERM)").</summary>
public static class Errno
{
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
