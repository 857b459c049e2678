using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>.NET's AEAD, counting what a device does with it; <see cref="RefuseOpens"/> makes every open fail.</summary>
internal sealed class CountingAead : ITransportAead
{
    public int KeysCreated, Seals, Opens, FailedOpens, KeysDisposed;

    public bool RefuseOpens { get; init; }

    public string Name => "counting";

    public TransportAeadKey CreateKey(ReadOnlySpan<byte> key32)
    {
        KeysCreated++;
        return new CountedKey(this, DotNetTransportAead.Instance.CreateKey(key32));
    }

    private sealed class CountedKey(CountingAead owner, TransportAeadKey inner) : TransportAeadKey
    {
        public override void Seal(ulong counter, Span<byte> payload, Span<byte> tag16)
        {
            owner.Seals++;
            inner.Seal(counter, payload, tag16);
        }

        public override bool TryOpen(ulong counter, Span<byte> ciphertext, ReadOnlySpan<byte> tag16)
        {
            owner.Opens++;
            bool opened = !owner.RefuseOpens && inner.TryOpen(counter, ciphertext, tag16);
            owner.FailedOpens += opened ? 0 : 1;
            return opened;
        }

        protected override void Dispose(bool disposing)
        {
            owner.KeysDisposed++;
            inner.Dispose();
        }
    }
}
