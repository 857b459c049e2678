using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// The ECN mode of a peer a UAPI <c>set=1</c> creates, by its public key: the UAPI has no key for it.
/// In service mode the configuration file's (<see cref="Config.FileEcnModes"/>), elsewhere Normal.
/// </summary>
public delegate EcnMode NewPeerEcnMode(WireGuardKey publicKey);
