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

    internal void Join(Side side, IPartnerReader reader)
    {
        if (side == Side.Tun)
        {
            Volatile.Write(ref _tun, reader);
        }
        else
        {
            Volatile.Write(ref _udp, reader);
        }
    }

    /// <summary>Leaves, unless a newer reader (an actor restart) has joined on that side since.</summary>
    internal void Leave(Side side, IPartnerReader reader)
    {
        if (side == Side.Tun)
        {
            Interlocked.CompareExchange(ref _tun, null, reader);
        }
        else
        {
            Interlocked.CompareExchange(ref _udp, null, reader);
        }
    }

    /// <summary>The reader of the other device, or null.</summary>
    internal IPartnerReader? PartnerOf(Side side) => side == Side.Tun ? Volatile.Read(ref _udp) : Volatile.Read(ref _tun);
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
