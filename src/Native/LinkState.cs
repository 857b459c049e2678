namespace Firezone.Actors.Native;

/// <summary>
/// An interface as <see cref="NetworkInterfaceControl.GetLink"/> read it: the name it has now, its
/// MTU, and whether it is administratively up (IFF_UP).
/// </summary>
public readonly record struct LinkState(string Name, int Mtu, bool Up);
