namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Sent to <see cref="TunnelSettings.FailureListener"/> when the TUN device or the UDP socket is lost
/// (or an I/O actor fails otherwise): the tunnel has stopped itself and the host should exit with
/// <see cref="Reason"/>, a one-line message meant for the user (STYLE.md rule 11).
/// </summary>
public sealed record TunnelFailed(string Reason, Exception Cause);
