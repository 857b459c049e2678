namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>
/// The WireGuard implementations the lab can start; each is a name scripts/lab/lab.sh resolves
/// (`wireguard-go` from Debian, `firezone-tunnel` from this repository's Release build, then Debug).
/// Both are started the same way (`IMPL -f IFNAME`, then `wg set` and `ip`), so the interop matrix
/// runs the same code for each.
/// </summary>
public static class Implementations
{
    public const string WireGuardGo = "wireguard-go";
    public const string FirezoneTunnel = "firezone-tunnel";
}
