namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// One peer's sessions and handshake, moved out of a <see cref="Peer"/> of one <see cref="Device"/>
/// (<see cref="Peer.HandOver"/>) into the fresh <see cref="Peer"/> of a device rebuilt with the same
/// static private key (<see cref="Peer.TakeOver"/>): the host rebuilds its device when the packet
/// buffers must grow (a jumbo MTU), and wireguard-go keeps its sessions through an MTU change. The
/// keypairs (their keys, sending counters and replay windows, whitepaper section 5.4.6), the
/// handshake in flight, the cookie and the timers (section 6) carry on, so the rebuilt peer sends
/// and receives on the same session without a new handshake, and a response to an initiation the
/// old peer sent completes it. Packets the old peer held for a session go on too, copied into the new
/// device's buffers at the take-over (the old pool is dropped). A handover that is not taken over must
/// be disposed (it zeroes the keys and returns the packets).
/// </summary>
public sealed class PeerHandover : IDisposable
{
    internal PeerHandover(WireGuardKey localStatic, WireGuardKey remoteStatic)
    {
        LocalStatic = localStatic;
        PublicKey = remoteStatic;
    }

    /// <summary>The public key of the device the sessions were made with; only a device with it may take them over.</summary>
    public WireGuardKey LocalStatic { get; }

    /// <summary>The remote peer's public key.</summary>
    public WireGuardKey PublicKey { get; }

    /// <summary>True while it holds a keypair that may still send at <paramref name="now"/> (a confirmed session).</summary>
    public bool HasSession(TimeSpan now) => Current is { } keypair && keypair.CanSend(now);

    internal Keypair? Current;
    internal Keypair? Previous;
    internal Keypair? Next;
    internal Handshake? Handshake;
    internal CookieGenerator? Cookies;
    internal byte[]? PrecomputedStaticStatic;
    internal TimeSpan? RetransmitHandshakeAt;
    internal TimeSpan? SendKeepaliveAt;
    internal TimeSpan? NewHandshakeAt;
    internal TimeSpan? ZeroKeyMaterialAt;
    internal TimeSpan? PersistentKeepaliveAt;
    internal int HandshakeAttempts;
    internal bool NeedAnotherKeepalive;
    internal bool SentLastMinuteHandshake;
    internal DateTime? LastHandshakeUtc;

    /// <summary>
    /// Where the sessions were used: the peer's endpoint and the local address its datagrams arrived
    /// at. The rebuilt device's peer starts from the configured endpoint only (its slot is new and
    /// holds no last path), so without these its replies on the session would leave from the
    /// kernel's choice of source address instead of the one the peer contacted.
    /// </summary>
    internal Buffers.UdpEndpoint Endpoint;
    internal Buffers.UdpEndpoint LocalAddress;

    /// <summary>Packets held for a session, oldest first (the old device's buffers).</summary>
    internal List<Buffers.PacketBuffer>? Staged;

    /// <summary>
    /// Claims the receiver indices of these sessions (and of the handshake in flight) in the table of
    /// the device that will take them over, before its readers start: a datagram for them that
    /// arrives before the new peer has taken over is then routed to that peer (and waits for it)
    /// instead of being dropped as addressed to nobody. Indices another peer holds there are left to it.
    /// </summary>
    public void ReserveIndices(Routing.IndexTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        foreach (var keypair in (ReadOnlySpan<Keypair?>)[Current, Previous, Next])
        {
            if (keypair is not null)
            {
                Reserve(table, keypair.LocalIndex);
            }
        }
        if (Handshake is { HasLocalIndex: true } handshake)
        {
            Reserve(table, handshake.LocalIndex);
        }
    }

    // What ReserveIndices claimed (at most the three keypairs' and the handshake's), freed when the
    // handover is disposed instead of taken over: no peer of the new device would ever free them.
    private Routing.IndexTable? _reservedIn;
    private uint[]? _reserved;
    private int _reservedCount;

    private void Reserve(Routing.IndexTable table, uint index)
    {
        // An index the table had already (its owner's, or reserved before) is not this call's to free.
        if (table.TryLookup(index, out _) || !table.TryClaim(index, PublicKey))
        {
            return;
        }
        if (!ReferenceEquals(_reservedIn, table))
        {
            FreeReserved();
            _reservedIn = table;
        }
        (_reserved ??= new uint[4])[_reservedCount++] = index;
    }

    private void FreeReserved()
    {
        for (int i = 0; i < _reservedCount; i++)
        {
            _reservedIn!.Free(_reserved![i], PublicKey);
        }
        _reservedIn = null;
        _reservedCount = 0;
    }

    /// <summary>Zeroes and frees whatever was not taken over.</summary>
    public void Dispose()
    {
        Current?.Dispose();
        Previous?.Dispose();
        Next?.Dispose();
        Handshake?.Clear();
        Cookies?.Clear();
        if (PrecomputedStaticStatic is { } precomputed)
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(precomputed);
        }
        if (Staged is { } staged)
        {
            foreach (var packet in staged)
            {
                packet.Return();
            }
        }
        FreeReserved();
        Forget();
    }

    /// <summary>Drops every reference (after a take-over, the new peer owns them).</summary>
    internal void Forget()
    {
        // Taken over: the new peer holds the reserved indices now (and frees them with its keys).
        _reservedIn = null;
        _reservedCount = 0;
        Current = Previous = Next = null;
        Handshake = null;
        Cookies = null;
        PrecomputedStaticStatic = null;
        Staged = null;
    }
}
