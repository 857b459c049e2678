namespace Firezone.Actors.Actors.Io;

/// <summary>
/// The tunnel's two reader threads (TUN and UDP), so that each can read the other's device while
/// it waits for a reply (see <see cref="ReplyPoll"/>). Both register when they start and leave
/// when they stop; until the other one is there, there is no partner and nothing is polled.
/// </summary>
public sealed class ReaderPair
{
    private IPartnerReader? _tun;
    private IPartnerReader? _udp;

    internal enum Side
    {
        Tun,
        Udp,
    }

    internal void Join(Side side, IPartnerReader reader) => Volatile.Write(ref Reader(side), reader);

    /// <summary>Leaves, unless a newer reader (an actor restart) has joined on that side since.</summary>
    internal void Leave(Side side, IPartnerReader reader) => Interlocked.CompareExchange(ref Reader(side), null, reader);

    /// <summary>The reader of the other device, or null.</summary>
    internal IPartnerReader? PartnerOf(Side side) => Volatile.Read(ref Reader(side == Side.Tun ? Side.Udp : Side.Tun));

    private ref IPartnerReader? Reader(Side side) => ref side == Side.Tun ? ref _tun : ref _udp;
}

/// <summary>A reader whose device another thread may read, one read at a time with the reader's own.</summary>
internal interface IPartnerReader
{
    /// <summary>
    /// Reads this device once without waiting and hands on what it read, on the calling thread.
    /// Returns how many packets it read (0: none), or -1 when this reader's own thread is reading
    /// right now (it will hand on the reply itself) or the reader is stopping.
    /// </summary>
    int TryReadForPartner();
}
