namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// One transport key (T_send or T_recv, whitepaper section 5.4.5) made by
/// <see cref="ITransportAead.CreateKey"/>, used for every packet of its direction. Not
/// thread-safe: one thread at a time (the engine's <c>Peer</c> is stepped under one lock). Dispose
/// forgets the key.
/// </summary>
public abstract class TransportAeadKey : IDisposable
{
    /// <summary>Encrypts <paramref name="payload"/> in place with the nonce of <paramref name="counter"/> and writes the 16-byte tag.</summary>
    public abstract void Seal(ulong counter, Span<byte> payload, Span<byte> tag16);

    /// <summary>
    /// Decrypts <paramref name="ciphertext"/> in place. False when <paramref name="tag16"/> does not
    /// verify; <paramref name="ciphertext"/> is then zeroed, and nothing is thrown: a forged packet
    /// costs no exception.
    /// </summary>
    public abstract bool TryOpen(ulong counter, Span<byte> ciphertext, ReadOnlySpan<byte> tag16);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);
}
