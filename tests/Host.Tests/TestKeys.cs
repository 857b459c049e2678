using System.Security.Cryptography;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Tests;

/// <summary>Fresh random keys per test (a key is only bytes to the host; clamping is the engine's job).</summary>
internal static class TestKeys
{
    public static WireGuardKey New() => new(RandomNumberGenerator.GetBytes(32));
}
