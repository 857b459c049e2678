using System.Security.Cryptography;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Time;

/// <summary>The OS CSPRNG as the engine's <see cref="IRandomSource"/> (ephemeral keys, indices, cookie secrets).</summary>
public sealed class SystemRandomSource : IRandomSource
{
    public static readonly SystemRandomSource Instance = new();

    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
