using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names from the headers, on purpose

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// <c>&lt;netdb.h&gt;</c> <c>getaddrinfo</c> and <c>freeaddrinfo</c>, which Tmds.LibC 0.5.0 does not
/// declare: a service name looked up exactly as wg(8) looks one up (the NSS sources of
/// nsswitch.conf's services line, not only /etc/services).
/// </summary>
internal static unsafe partial class Netdb
{
    /// <summary><c>AI_PASSIVE</c>: no node, so the answer is the wildcard address with the service's port.</summary>
    internal const int AI_PASSIVE = 0x0001;

    /// <summary><c>struct addrinfo</c> (getaddrinfo(3)).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct addrinfo
    {
        public int ai_flags;
        public int ai_family;
        public int ai_socktype;
        public int ai_protocol;
        public uint ai_addrlen;
        public byte* ai_addr;
        public byte* ai_canonname;
        public addrinfo* ai_next;
    }

    /// <returns>0, or an EAI_* code (errno only for EAI_SYSTEM).</returns>
    [LibraryImport("libc", EntryPoint = "getaddrinfo", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int getaddrinfo(string? node, string? service, addrinfo* hints, addrinfo** res);

    [LibraryImport("libc", EntryPoint = "freeaddrinfo")]
    internal static partial void freeaddrinfo(addrinfo* res);
}
