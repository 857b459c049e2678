using System.Security.Cryptography;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>The production <see cref="IRandomSource"/>: the operating system's CSPRNG.</summary>
public sealed class CryptoRandomSource : IRandomSource
{
    public static CryptoRandomSource Instance { get; } = new();

    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
