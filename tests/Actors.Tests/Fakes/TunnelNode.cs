using System.Security.Cryptography;
using Akka.Actor;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>
/// One complete tunnel: a real engine Device and its pool, a fake TUN, a fake socket on the shared
/// fake network, and the TunnelActor topology over them. Reply polling is off unless asked for, so
/// which reader thread hands a packet on does not depend on timing.
/// </summary>
public sealed class TunnelNode
{
    public required string Name { get; init; }
    public required string Address { get; init; }
    public required PacketBufferPool Pool { get; init; }
    public required Device Device { get; init; }
    public required PoisonableDevice Seam { get; init; }
    public required FakeTun Tun { get; init; }
    public required FakeUdpSocket Socket { get; init; }
    public required IActorRef Tunnel { get; init; }

    /// <summary>The static private key, for a tunnel rebuilt with the same identity (<see cref="Rebuild"/>).</summary>
    public required WireGuardKey PrivateKey { get; init; }

    public WireGuardKey PublicKey => Device.PublicKey;

    public UdpEndpoint Endpoint => Socket.Endpoint;

    public static TunnelNode Start(ActorSystem system, FakeNetwork network, ManualClock clock, string name, int index,
        IActorRef failureListener, PeerSupervisorOptions? options = null, TimeSpan replyPollMax = default,
        PeerHandovers? handOverTo = null, PacketBufferPool? pool = null, TimeSpan readerStopBound = default)
    {
        Span<byte> privateKey = stackalloc byte[32];
        RandomNumberGenerator.Fill(privateKey);
        var tun = new FakeTun("tun-" + name);
        var socket = network.CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, (byte)index], (ushort)(51000 + index)));
        return Start(system, clock, name, "10.0.0." + index, new WireGuardKey(privateKey), tun, socket, "tunnel-" + name,
            new TunnelSettingsParts(failureListener, options, replyPollMax, handOverTo, TakeOverFrom: null, StartReadingPaused: false, readerStopBound), pool);
    }

    /// <summary>
    /// This node's tunnel rebuilt as the host rebuilds it for bigger buffers: the same static key, TUN
    /// device and socket, a new engine device and pool, taking over what <paramref name="takeOverFrom"/>
    /// holds (its indices reserved first) and reading only once told <see cref="StartReading"/>. Stop
    /// this node's tunnel first.
    /// </summary>
    public TunnelNode Rebuild(ActorSystem system, ManualClock clock, IActorRef failureListener, PeerHandovers takeOverFrom, string generation)
    {
        Tun.RearmAfterStop();
        Socket.RearmAfterStop();
        return Start(system, clock, Name, Address, PrivateKey, Tun, Socket, "tunnel-" + Name + "-" + generation,
            new TunnelSettingsParts(failureListener, null, default, HandOverTo: null, takeOverFrom, StartReadingPaused: true));
    }

    private sealed record TunnelSettingsParts(IActorRef FailureListener, PeerSupervisorOptions? Options, TimeSpan ReplyPollMax,
        PeerHandovers? HandOverTo, PeerHandovers? TakeOverFrom, bool StartReadingPaused, TimeSpan ReaderStopBound = default);

    private static TunnelNode Start(ActorSystem system, ManualClock clock, string name, string address, WireGuardKey privateKey,
        FakeTun tun, FakeUdpSocket socket, string actorName, TunnelSettingsParts parts, PacketBufferPool? pool = null)
    {
        pool ??= new PacketBufferPool(preallocate: 64, maxBuffers: 4096);
        var device = new Device(privateKey, pool, CryptoRandomSource.Instance, DateTime.UtcNow - clock.Now);
        parts.TakeOverFrom?.ReserveIndices(device.Indices); // before any peer or reader runs, as the host does
        var seam = new PoisonableDevice(new EngineDevice(device));
        var settings = new TunnelSettings
        {
            Tun = tun,
            Socket = socket,
            Device = seam,
            Clock = clock,
            FailureListener = parts.FailureListener,
            PeerOptions = parts.Options ?? PeerSupervisorOptions.Default,
            ReplyPollMax = parts.ReplyPollMax,
            HandOverTo = parts.HandOverTo,
            TakeOverFrom = parts.TakeOverFrom,
            StartReadingPaused = parts.StartReadingPaused,
            ReaderStopBound = parts.ReaderStopBound > TimeSpan.Zero ? parts.ReaderStopBound : Tunnels.ReaderStopBound,
        };
        var tunnel = Tunnels.Start(system, settings, actorName);
        return new TunnelNode
        {
            Name = name,
            Address = address,
            Pool = pool,
            Device = device,
            Seam = seam,
            Tun = tun,
            Socket = socket,
            Tunnel = tunnel,
            PrivateKey = privateKey,
        };
    }

    /// <summary>This node's view of <paramref name="remote"/> as a peer: its key, endpoint and /32.</summary>
    public PeerConfig PeerConfigFor(TunnelNode remote, bool withEndpoint = true, ushort keepalive = 0, EcnMode ecnMode = EcnMode.Normal) => new()
    {
        PublicKey = remote.PublicKey,
        Endpoint = withEndpoint ? remote.Endpoint : UdpEndpoint.None,
        AllowedIps = [IpPrefix.Parse(remote.Address + "/32")],
        PersistentKeepaliveSeconds = keepalive,
        EcnMode = ecnMode,
    };
}
