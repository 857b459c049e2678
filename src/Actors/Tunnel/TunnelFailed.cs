namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Sent to <see cref="TunnelSettings.FailureListener"/> when the TUN device or the UDP socket is lost
/// (or an I/O actor fails otherwise): the tunnel has stopped itself and the host should exit with
/// <see cref="Reason"/>, a one-line message meant for the user (STYLE.md rule 11).
/// <see cref="DeviceRemoved"/>: the TUN device was deleted (or its namespace removed), which is how
/// wg-quick down stops a userspace daemon, so a stop rather than a failure.
/// </summary>
public sealed record TunnelFailed(string Reason, Exception Cause, bool DeviceRemoved = false);
