using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Fresh random keys per test, clamped as `wg genkey` makes them: the daemon stores a private key
/// clamped (as wireguard-go does), so a test that sets one and reads it back needs the clamped form.
/// </summary>
internal static class TestKeys
{
    public static WireGuardKey New() => Curve25519.Clamp(new WireGuardKey(RandomNumberGenerator.GetBytes(32)));
}
