using System.Runtime.Versioning;

// The host creates unix sockets with modes, TUN devices and sessions: Linux only.
[assembly: SupportedOSPlatform("linux")]
