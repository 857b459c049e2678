using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>A deterministic <see cref="IRandomSource"/> for tests: same seed, same keys, indices and jitter.</summary>
public sealed class SeededRandomSource(int seed) : IRandomSource
{
    private readonly Random _random = new(seed);

    public void Fill(Span<byte> destination) => _random.NextBytes(destination);
}

/// <summary>Records every fill (length and bytes) made through it, so a test can see which ephemeral key the engine drew.</summary>
public sealed class RecordingRandomSource(IRandomSource inner) : IRandomSource
{
    public List<byte[]> Fills { get; } = [];

    public void Fill(Span<byte> destination)
    {
        inner.Fill(destination);
        Fills.Add(destination.ToArray());
    }
}
