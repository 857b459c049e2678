namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// Randomness for ephemeral keys, sender indices, cookie secrets and timer jitter. Injected so the
/// engine stays deterministic under test (a seeded source) and uses the OS CSPRNG in production.
/// </summary>
public interface IRandomSource
{
    void Fill(Span<byte> destination);
}
