using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Io;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tun;

/// <summary>
/// Owns the TUN read loop on a dedicated thread (STYLE.md rule 8: no blocking call on the shared
/// dispatcher). Each read fills up to <see cref="ReadBatchSize"/> pooled buffers; every packet is
/// routed by its destination address through the allowed-IPs table (whitepaper section 2) to its
/// peer, and each peer gets ONE <see cref="OutboundPackets"/> per read. The thread steps each peer's
/// <see cref="PeerDataPath"/> itself and sends the sealed datagrams on the socket (one thread
/// wake-up per packet, see PeerDataPath for why); a peer it cannot step right now goes to its
/// PeerConnection actor (see PeerGroups for when and why). Packets for no peer, and packets that are not IP,
/// are dropped (buffer returned) and counted.
///
/// Stop: <see cref="ITunDevice.WakeReader"/> and join the thread in PostStop, for at most
/// <see cref="Tunnels.ReaderStopBound"/>: the actor is gone only once its thread has ended (or is
/// counted as still running), so neither the host nor a rebuild reuses or closes the device under
/// it. The join blocks, so TunnelActor runs this actor on <see cref="Tunnels.IoDispatcherId"/> (its
/// own thread), as SocketIO: never on the default dispatcher the peers share. If a read throws
/// (the device is gone) the thread tells the actor, which rethrows so TunnelActor escalates.
/// </summary>
public sealed class TunReader : UntypedActor
{
    public const int ReadBatchSize = 64;

    private readonly ITunDevice _tun;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly BatchReaderThread<ReadSteps> _reader;
    private readonly bool _startPaused;
    private readonly TimeSpan _stopBound;

    public TunReader(ITunDevice tun, IUdpBatchSocket socket, IWireGuardDevice device, PeerRegistry registry, TunnelCounters counters, IMonotonicClock clock,
        ReaderPair? readers = null, TimeSpan replyPollMax = default, TimeSpan readModeration = default, bool startPaused = false, TimeSpan stopBound = default)
    {
        _tun = tun;
        _startPaused = startPaused;
        _stopBound = stopBound > TimeSpan.Zero ? stopBound : Tunnels.ReaderStopBound;
        var groups = new PeerGroups<OutboundPackets>(OutboundPackets.Rent, new DirectPeerOutput(socket, tun, counters));
        var steps = new ReadSteps(tun, device, registry, counters, clock, groups);
        _reader = new BatchReaderThread<ReadSteps>("tun-reader " + tun.Name, ReadBatchSize, steps, device, counters, Self,
            readers, ReaderPair.Side.Tun, replyPollMax, readModeration);
    }

    /// <param name="readers">Shared with the tunnel's SocketIO for reply polling (see BatchReaderThread); null: none.</param>
    /// <param name="replyPollMax">The longest reply poll (see ReplyPoll); zero: none.</param>
    /// <param name="readModeration">The pause after a read of a few bulk packets (see ReadModeration); zero: none.</param>
    /// <param name="startPaused">Read only once told <see cref="Tunnel.StartReading"/> (see <see cref="Tunnel.TunnelSettings.StartReadingPaused"/>).</param>
    /// <param name="stopBound">How long the stop joins the thread; zero: <see cref="Tunnels.ReaderStopBound"/>.</param>
    public static Props Props(ITunDevice tun, IUdpBatchSocket socket, IWireGuardDevice device, PeerRegistry registry, TunnelCounters counters, IMonotonicClock clock,
        ReaderPair? readers = null, TimeSpan replyPollMax = default, TimeSpan readModeration = default, bool startPaused = false, TimeSpan stopBound = default) =>
        Akka.Actor.Props.Create(() => new TunReader(tun, socket, device, registry, counters, clock, readers, replyPollMax, readModeration, startPaused, stopBound));

    protected override void PreStart()
    {
        if (!_startPaused)
        {
            _reader.Start();
        }
    }

    protected override void PostStop()
    {
        if (!_reader.Stop(_stopBound))
        {
            _log.Error("TUN reader thread for {Interface} did not stop within {Seconds} s after WakeReader", _tun.Name, _stopBound.TotalSeconds);
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case IoThreadFailed failed:
                failed.Error.Throw();
                break;
            case ReadsPaused paused:
                _log.Warning(ReadsPaused.LogTemplate, paused.Reader, paused.Leased, paused.MaxBuffers);
                break;
            case Tunnel.StartReading:
                _reader.Start();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>The reader thread's steps: read packets, group them by destination peer, step each peer.</summary>
    private readonly struct ReadSteps(ITunDevice tun, IWireGuardDevice device, PeerRegistry registry, TunnelCounters counters, IMonotonicClock clock, PeerGroups<OutboundPackets> groups) : IBatchReaderSteps
    {
        private static ReadOnlySpan<byte> LimitedBroadcast => [255, 255, 255, 255];

        public bool WaitReadable(int timeoutMs) => tun.WaitReadable(timeoutMs);

        public int TryReadBatch(Span<PacketBuffer> buffers) => tun.TryReadBatch(buffers);

        public bool OnePacketPerCall => true; // a read call per packet (segments of a super-packet come without one)

        public bool HasPending => tun.HasPendingPackets;

        public void Kick() => tun.KickReader();

        public void Wake() => tun.WakeReader();

        public void Route(PacketBuffer buffer)
        {
            var data = buffer.Data;
            ReadOnlySpan<byte> destination;
            // Only the version nibble and the destination are needed to route; the PeerConnection
            // reads the ECN field and the engine checks the rest.
            switch (data.IsEmpty ? 0 : data[0] >> 4)
            {
                case 4 when data.Length >= 20:
                    destination = data.Slice(16, 4);
                    break;
                case 6 when data.Length >= 40:
                    destination = data.Slice(24, 16);
                    break;
                default:
                    Interlocked.Increment(ref counters.TunPacketsInvalid);
                    buffer.Return();
                    return;
            }
            if (!device.TryRoute(destination, out WireGuardKey key) || !registry.TryGet(key, out var slot))
            {
                // The kernel's own multicast (IPv6 router solicitations and MLD reports when the link
                // comes up, mDNS) goes to every interface: counted apart, so the count of unicast
                // packets for no peer (a missing AllowedIPs entry) says something (show's "dropped").
                bool multicast = destination.Length == 4
                    ? (destination[0] & 0xf0) == 0xe0 || destination.SequenceEqual(LimitedBroadcast)
                    : destination[0] == 0xff;
                Interlocked.Increment(ref multicast ? ref counters.TunPacketsNoRouteMulticast : ref counters.TunPacketsNoRoute);
                buffer.Return();
                return;
            }
            groups.Add(slot, buffer);
        }

        public void Flush() => groups.Flush(clock.Now);

        public void Release() => groups.Release();
    }
}
