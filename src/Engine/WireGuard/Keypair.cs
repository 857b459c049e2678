using System.Buffers.Binary;
using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// One session's transport keys (whitepaper section 5.4.5): a sending and a receiving
/// <see cref="TransportAeadKey"/> of the device's <see cref="ITransportAead"/>, created once and
/// reused for every packet (the key schedule is done once, the nonce changes), the sending counter,
/// the receiving replay window, and the indices. The caller zeroes its copies of the keys as soon as
/// the key objects hold them; disposing those frees (and OpenSSL cleanses) the native key state.
/// </summary>
internal sealed class Keypair : IDisposable
{
    private readonly TransportAeadKey _send;
    private readonly TransportAeadKey _receive;

    public Keypair(ITransportAead aead, ReadOnlySpan<byte> sendKey, ReadOnlySpan<byte> receiveKey, bool isInitiator, uint localIndex, uint remoteIndex, TimeSpan created)
    {
        _send = aead.CreateKey(sendKey);
        try
        {
            _receive = aead.CreateKey(receiveKey);
        }
        catch
        {
            _send.Dispose();
            throw;
        }
        IsInitiator = isInitiator;
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        Created = created;
    }

    public bool IsInitiator { get; }
    public uint LocalIndex { get; }
    public uint RemoteIndex { get; }
    public TimeSpan Created { get; }

    /// <summary>The next counter to send with (section 5.4.6: starts at 0, never reused).</summary>
    public ulong SendCounter;

    public ReplayWindow Replay { get; } = new();

    public bool IsDisposed { get; private set; }

    /// <summary>Usable for sending: counter and age inside Reject-After-Messages/Time (section 6.2).</summary>
    public bool CanSend(TimeSpan now) =>
        !IsDisposed && SendCounter < ProtocolConstants.RejectAfterMessages && now - Created < ProtocolConstants.RejectAfterTime;

    /// <summary>Usable for receiving: younger than Reject-After-Time (section 6.2).</summary>
    public bool CanReceive(TimeSpan now) => !IsDisposed && now - Created < ProtocolConstants.RejectAfterTime;

    /// <summary>
    /// Seals the payload at [offset, offset + length) of <paramref name="array"/> in place (section 5.4.6):
    /// writes the 16-byte header at offset - 16, zero padding up to <paramref name="paddedLength"/> and
    /// the tag after it. The caller has checked the room and the counter.
    /// </summary>
    public void Seal(Span<byte> array, int offset, int length, int paddedLength, ulong counter)
    {
        Span<byte> header = array.Slice(offset - MessageHeader.TransportHeaderSize, MessageHeader.TransportHeaderSize);
        header[0] = (byte)MessageType.TransportData;
        header[1] = 0;
        header[2] = 0;
        header[3] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(header[MessageLayout.TransportReceiver..], RemoteIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(header[MessageLayout.TransportCounter..], counter);
        array.Slice(offset + length, paddedLength - length).Clear();
        _send.Seal(counter, array.Slice(offset, paddedLength), array.Slice(offset + paddedLength, NoiseAead.TagSize));
    }

    /// <summary>Opens ciphertext || tag in place; false when the tag does not verify (nothing is trusted then).</summary>
    public bool TryOpen(Span<byte> sealedPayload, ulong counter)
    {
        int plainLength = sealedPayload.Length - NoiseAead.TagSize;
        return _receive.TryOpen(counter, sealedPayload[..plainLength], sealedPayload[plainLength..]);
    }

    public void Dispose()
    {
        if (IsDisposed)
        {
            return;
        }
        IsDisposed = true;
        _send.Dispose();
        _receive.Dispose();
    }
}
