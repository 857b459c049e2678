using Akka.Actor;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Everything the TunnelActor wires together. The caller (host or test) creates and disposes the
/// TUN device and the socket; the tunnel only uses them (and wakes their readers on stop).
/// </summary>
public sealed record TunnelSettings
{
    public required ITunDevice Tun { get; init; }

    public required IUdpBatchSocket Socket { get; init; }

    /// <summary>The engine device (with its buffer pool); see <see cref="ForEngine"/>.</summary>
    public required IWireGuardDevice Device { get; init; }

    public required IMonotonicClock Clock { get; init; }

    /// <summary>Gets <see cref="TunnelFailed"/> when the tunnel stops because of an I/O fault; may be null.</summary>
    public IActorRef? FailureListener { get; init; }

    public PeerSupervisorOptions PeerOptions { get; init; } = PeerSupervisorOptions.Default;

    /// <summary>
    /// Where this tunnel's peers hand their sessions over when they stop, once the host armed it
    /// (<see cref="PeerHandovers.Collect"/>, before a rebuild with the same static key); null: never.
    /// </summary>
    public PeerHandovers? HandOverTo { get; init; }

    /// <summary>The sessions the tunnel this one replaces handed over; each new peer takes its own at start. Null: none.</summary>
    public PeerHandovers? TakeOverFrom { get; init; }

    /// <summary>
    /// The tunnel's counters; null: its own. The host keeps them to see, once the tunnel stopped,
    /// whether its reader threads have ended (<see cref="TunnelCounters.ReaderThreadsRunning"/>).
    /// </summary>
    public TunnelCounters? Counters { get; init; }

    /// <summary>
    /// The readers start only when told <see cref="StartReading"/>: a rebuilt tunnel's host applies
    /// the peers first, so that what waited in the kernel's queues during the rebuild finds them.
    /// </summary>
    public bool StartReadingPaused { get; init; }

    /// <summary>
    /// The longest a reader thread busy-polls the other device for a reply after a packet woke it
    /// from idle (see BatchReaderThread and ReplyPoll); zero turns reply polling off.
    /// </summary>
    public TimeSpan ReplyPollMax { get; init; } = DefaultReplyPollMax;

    public static readonly TimeSpan DefaultReplyPollMax = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// How long a stopping reader actor waits for its thread (<see cref="Tunnels.ReaderStopBound"/>,
    /// which the host relies on). Tests set another to make a margin between this join and what it is
    /// measured against wide enough for a loaded machine.
    /// </summary>
    internal TimeSpan ReaderStopBound { get; init; } = Tunnels.ReaderStopBound;

    /// <summary>The reader threads' pause after a read of a few bulk packets while a stream runs (see ReadModeration); zero: none.</summary>
    public TimeSpan ReadModeration { get; init; } = DefaultReadModeration;

    public static readonly TimeSpan DefaultReadModeration = TimeSpan.FromMicroseconds(100);

    /// <summary>The longest read moderation pause: a reader must stay quick to stop.</summary>
    public const int MostReadModerationMicroseconds = 10_000;

    /// <summary>Settings over the real engine <see cref="Engine.WireGuard.Device"/>.</summary>
    public static TunnelSettings ForEngine(Device device, ITunDevice tun, IUdpBatchSocket socket, IMonotonicClock clock, IActorRef? failureListener = null) =>
        new()
        {
            Tun = tun,
            Socket = socket,
            Device = new EngineDevice(device),
            Clock = clock,
            FailureListener = failureListener,
        };
}
