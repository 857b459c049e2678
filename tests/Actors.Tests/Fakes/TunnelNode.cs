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

    public WireGuardKey PublicKey => Device.PublicKey;

    public UdpEndpoint Endpoint => Socket.Endpoint;

    public static TunnelNode Start(ActorSystem system, FakeNetwork network, ManualClock clock, string name, int index,
        IActorRef failureListener, PeerSupervisorOptions? options = null, TimeSpan replyPollMax = default)
    {
        Span<byte> privateKey = stackalloc byte[32];
        RandomNumberGenerator.Fill(privateKey);
        var pool = new PacketBufferPool(preallocate: 64, maxBuffers: 4096);
        var device = new Device(new WireGuardKey(privateKey), pool, CryptoRandomSource.Instance, DateTime.UtcNow - clock.Now);
        var seam = new PoisonableDevice(new EngineDevice(device));
        var tun = new FakeTun("tun-" + name);
        var socket = network.CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, (byte)index], (ushort)(51000 + index)));
        var settings = new TunnelSettings
        {
            Tun = tun,
            Socket = socket,
            Device = seam,
            Clock = clock,
            FailureListener = failureListener,
            PeerOptions = options ?? PeerSupervisorOptions.Default,
            ReplyPollMax = replyPollMax,
        };
        var tunnel = Tunnels.Start(system, settings, "tunnel-" + name);
        return new TunnelNode
        {
            Name = name,
            Address = "10.0.0." + index,
            Pool = pool,
            Device = device,
            Seam = seam,
            Tun = tun,
            Socket = socket,
            Tunnel = tunnel,
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
