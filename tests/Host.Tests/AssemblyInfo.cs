using System.Runtime.Versioning;

// The host under test is Linux only (unix sockets with modes, TUN, setsid).
[assembly: SupportedOSPlatform("linux")]
