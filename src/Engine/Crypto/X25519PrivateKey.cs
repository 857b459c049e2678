namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// An X25519 private key made by <see cref="IX25519.CreatePrivateKey"/> for more than one use: the
/// device's static key, or an ephemeral key for its public key and the DH computations right after
/// it (disposed at once, so the ephemeral key lives no longer than before). Thread-safe:
/// DH computations with it may run on many threads at once. Dispose forgets the key.
/// </summary>
public abstract class X25519PrivateKey : IDisposable
{
    /// <summary>DH-Pubkey: this key's public key (32 bytes).</summary>
    public abstract void PublicKey(Span<byte> publicKey32);

    /// <summary>DH(this key, <paramref name="publicKey"/>). False, with <paramref name="shared32"/> zeroed, when the result is all zero.</summary>
    public abstract bool TrySharedSecret(ReadOnlySpan<byte> publicKey, Span<byte> shared32);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);
}
