using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>Two complete topologies (real engine, fake TUN, fake wire) back to back.</summary>
public sealed class TunnelTrafficTests(ITestOutputHelper output) : ActorTestBase(output)
{
    /// <summary>B knows A without an endpoint (it learns it from the handshake); A knows B's endpoint and initiates.</summary>
    private (TunnelNode A, TunnelNode B) StartPair(EcnMode aMode = EcnMode.Normal, EcnMode bMode = EcnMode.Normal)
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Assert.True(Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false, ecnMode: bMode))).Created);
        Assert.True(Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b, ecnMode: aMode))).Created);
        return (a, b);
    }

    [Fact]
    public void Two_tunnels_handshake_and_exchange_traffic_both_ways()
    {
        var (a, b) = StartPair();
        var toB = new byte[20][];
        for (int i = 0; i < toB.Length; i++)
        {
            toB[i] = Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, payloadLength: 40 + i * 13, id: (ushort)(i + 1));
        }
        a.Tun.Inject(toB);
        AwaitWritten(b, toB.Length);
        // Queued behind the handshake, then sent in order, byte for byte.
        Assert.Equal(toB, b.Tun.Written);

        var toA = new byte[15][];
        for (int i = 0; i < toA.Length; i++)
        {
            toA[i] = Packets.Ipv4(b.Address, a.Address, Ecn.NotEct, payloadLength: 100, id: (ushort)(100 + i));
        }
        b.Tun.Inject(toA);
        AwaitWritten(a, toA.Length);
        Assert.Equal(toA, a.Tun.Written);

        var aView = PeerStatusOf(a, b);
        Assert.Equal(toB.Length, aView.TxPackets);
        Assert.Equal(toA.Length, aView.RxPackets);
        Assert.NotNull(aView.LastHandshakeUtc);
        Assert.True(aView.TxBytes > 0 && aView.RxBytes > 0);
        Assert.Equal(b.Endpoint, aView.Endpoint);
        var bView = PeerStatusOf(b, a);
        Assert.Equal(a.Endpoint, bView.Endpoint); // learned by roaming (whitepaper section 6.5)
        Assert.Equal(toA.Length, bView.TxPackets);
        Assert.Equal(toB.Length, bView.RxPackets);
        Assert.Equal(0, bView.AuthenticationFailures);

        var device = Control<DeviceStatus>(a, GetDeviceStatus.Instance);
        Assert.Equal(a.PublicKey, device.PublicKey);
        Assert.Equal(a.Socket.LocalPort, device.ListenPort);
        var only = Assert.Single(device.Peers);
        Assert.Equal(b.PublicKey, only.PublicKey);
        Assert.Equal(b.Address + "/32", Assert.Single(only.AllowedIps).ToString());

        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void A_request_naming_the_configured_endpoint_moves_a_roamed_peer_back_to_it()
    {
        // B has A configured at an endpoint A is no longer at (a Client that roamed): A's handshake
        // moves B's endpoint for A to where A is (whitepaper section 6.5). `wg set IF peer A
        // endpoint CONFIGURED` (or wg syncconf of the file) names the configured endpoint again:
        // wireguard-go sends there from then on; a change that does not name it keeps the roamed one.
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var configured = UdpEndpoint.FromIPv4([127, 0, 0, 9], 51009);
        var aAtB = b.PeerConfigFor(a) with { Endpoint = configured };
        Control<PeerConfigured>(b, new AddOrUpdatePeer(aAtB));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 1));
        AwaitWritten(b, 1);
        Assert.Equal(a.Endpoint, PeerStatusOf(b, a).Endpoint);

        Control<PeerChangesApplied>(b, new ApplyPeerChanges(false, [], [aAtB]));
        Assert.Equal(a.Endpoint, PeerStatusOf(b, a).Endpoint);

        Control<PeerChangesApplied>(b, new ApplyPeerChanges(false, [], [aAtB], EndpointNamed: new HashSet<WireGuardKey> { a.PublicKey }));
        Assert.Equal(configured, PeerStatusOf(b, a).Endpoint);
        b.Tun.Inject(Packets.Ipv4(b.Address, a.Address, Ecn.NotEct, id: 2));
        AwaitCondition(() => Network.Log.Any(d => d.From == b.Endpoint && d.To == configured && d.Type == MessageType.TransportData), Wait);
        StopAndAssertNoLeaks(a, b);
    }

    /// <summary>
    /// The device status after an acknowledged set that moves a peer's endpoint reports the new
    /// endpoint, also while the peer's actor has not yet applied the update (busy, or its lock held
    /// by a reader thread). The status read the engine's view, which the actor publishes only once
    /// it applies the update: a UAPI get sent right after `set` (errno=0) showed the old endpoint
    /// (`wg show` too, at random; found by a side-by-side UAPI review against wireguard-go, whose get
    /// reports every set before it).
    /// </summary>
    [Fact]
    public void The_status_right_after_an_endpoint_change_reports_the_new_endpoint_before_the_peer_applies_it()
    {
        var (a, b, c) = StartStar();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        Assert.Equal(b.Endpoint, PeerStatusOf(a, b).Endpoint);

        // A's socket reader stops inside B's open, holding B's lock: B's actor cannot step meanwhile.
        a.Seam.HoldOpenOfKey = b.PublicKey.ToArray();
        b.Tun.Inject(Packets.Ipv4(b.Address, a.Address, id: 1));
        Assert.True(a.Seam.HoldEntered.Wait(Wait));
        a.Seam.HoldOpenOfKey = null;
        try
        {
            var named = UdpEndpoint.FromIPv4([127, 0, 0, 9], 51009);
            Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [a.PeerConfigFor(b) with { Endpoint = named }],
                EndpointNamed: new HashSet<WireGuardKey> { b.PublicKey }));
            Assert.Equal(named, Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers.Single(p => p.PublicKey == b.PublicKey).Endpoint);

            // Not named, but a new configured endpoint: the engine moves there too (Peer.Update).
            var changed = UdpEndpoint.FromIPv4([127, 0, 0, 10], 51010);
            Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [a.PeerConfigFor(b) with { Endpoint = changed }]));
            Assert.Equal(changed, Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers.Single(p => p.PublicKey == b.PublicKey).Endpoint);
        }
        finally
        {
            a.Seam.HoldRelease.Set();
        }
        // Applied: the engine's view again, the same endpoint.
        AwaitCondition(() => PeerStatusOf(a, b).Endpoint == UdpEndpoint.FromIPv4([127, 0, 0, 10], 51010), Wait);
        Assert.Equal(UdpEndpoint.FromIPv4([127, 0, 0, 10], 51010), Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers.Single(p => p.PublicKey == b.PublicKey).Endpoint);
        StopAndAssertNoLeaks(a, b, c);
    }

    [Fact]
    public void After_a_new_listen_port_each_peer_with_a_session_gets_one_keepalive_and_the_others_nothing()
    {
        // A has B and C; only B has a session. SendKeepalivesOnSessions is what the host tells the
        // tunnel after LinuxUdpSocket.TakeOver moved its socket to a new port.
        var (a, b, c) = StartStar();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 1));
        AwaitWritten(b, 1);
        long receivedBefore = PeerStatusOf(b, a).RxBytes;
        int datagramsBefore = Network.Log.Count;

        a.Tunnel.Tell(SendKeepalivesOnSessions.Instance, TestActor);

        // B took it as authenticated traffic from A (the 32 bytes of an empty transport message).
        AwaitCondition(() => PeerStatusOf(b, a).RxBytes == receivedBefore + 32, Wait);
        var sent = Network.Log.Skip(datagramsBefore).ToList();
        var only = Assert.Single(sent); // no handshake towards C, which had no session
        Assert.Equal(a.Endpoint, only.From);
        Assert.Equal(b.Endpoint, only.To);
        Assert.Equal(MessageType.TransportData, only.Type);
        Assert.Equal(32, only.Data.Length);
        Assert.True(only.Delivered);
        Assert.Null(PeerStatusOf(a, c).LastHandshakeUtc);
        Assert.Equal(0, PeerStatusOf(b, a).AuthenticationFailures);
        StopAndAssertNoLeaks(a, b, c);
    }

    [Fact]
    public void Data_crosses_each_tunnel_on_the_reader_threads_and_handshakes_go_through_the_actors()
    {
        // One thread wake-up per crossing (PeerDataPath): the TUN reader seals and sends, the
        // socket reader opens and writes; only the handshake and timers go through the actors.
        var (a, b) = StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1));
        AwaitWritten(b, 1);
        // The handshake went through the actors, so each peer has a backlog on that path until its
        // last batch is sent or written; a reader steps the peer itself only once it is empty.
        Assert.True(Control<TunnelTopology>(a, GetTunnelTopology.Instance).Registry.TryGet(b.PublicKey, out var bAtA));
        Assert.True(Control<TunnelTopology>(b, GetTunnelTopology.Instance).Registry.TryGet(a.PublicKey, out var aAtB));
        AwaitCondition(() => !bAtA.HasBacklog && !aAtB.HasBacklog, Wait);

        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 2));
        AwaitWritten(b, 2);
        AwaitCondition(() => !bAtA.HasBacklog && !aAtB.HasBacklog, Wait);
        b.Tun.Inject(Packets.Ipv4(b.Address, a.Address, Ecn.Ect0, id: 3));
        AwaitWritten(a, 1);

        var data = Network.Log.Where(d => d.Type == MessageType.TransportData && d.Data.Length > MessageHeader.TransportMinSize).ToArray();
        Assert.Equal(3, data.Length);
        Assert.StartsWith("tun-reader", data[1].SenderThread);
        Assert.StartsWith("tun-reader", data[2].SenderThread);
        Assert.StartsWith("udp-receiver", b.Tun.WriterThreads[1]);
        Assert.StartsWith("udp-receiver", a.Tun.WriterThreads[0]);
        // The initiation is answered by B's PeerConnection actor, through SocketIO's pinned thread.
        var response = Network.Log.Single(d => d.Type == MessageType.Response);
        Assert.DoesNotContain("udp-receiver", response.SenderThread ?? "");
        Assert.DoesNotContain("tun-reader", response.SenderThread ?? "");
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void A_read_for_two_peers_is_stepped_on_the_reader_and_a_peer_with_a_backlog_stays_on_its_actor_in_order()
    {
        var (a, b, c) = StartStar();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        a.Tun.Inject(Packets.Ipv4(a.Address, c.Address, id: 1));
        AwaitWritten(b, 1);
        AwaitWritten(c, 1);
        var registry = Control<TunnelTopology>(a, GetTunnelTopology.Instance).Registry;
        Assert.True(registry.TryGet(b.PublicKey, out var slotB));
        Assert.True(registry.TryGet(c.PublicKey, out var slotC));
        AwaitCondition(() => !slotB.HasBacklog && !slotC.HasBacklog, Wait);

        // One read with packets for both peers: the TUN reader steps both itself.
        int seen = Network.Log.Count;
        a.Tun.Inject(
            Packets.Ipv4(a.Address, b.Address, id: 10),
            Packets.Ipv4(a.Address, c.Address, id: 11),
            Packets.Ipv4(a.Address, b.Address, id: 12));
        AwaitWritten(b, 3);
        AwaitWritten(c, 2);
        Assert.All(DataFrom(a, seen), d => Assert.StartsWith("tun-reader", d.SenderThread));

        // A batch of C's on the actor path (as when C's lock was busy), and right behind it more of
        // C's packets through the TUN: whichever path each takes, C's flow arrives in order.
        var queued = OutboundPackets.Rent();
        for (ushort id = 20; id < 30; id++)
        {
            var packet = Packets.Ipv4(a.Address, c.Address, id: id);
            var buffer = a.Pool.Rent();
            packet.CopyTo(buffer.Writable);
            buffer.Length = packet.Length;
            queued.Add(buffer);
        }
        slotC.EnterBacklog(queued);
        slotC.Connection.Tell(queued, Akka.Actor.ActorRefs.NoSender);
        var behind = new byte[10][];
        for (int i = 0; i < behind.Length; i++)
        {
            behind[i] = Packets.Ipv4(a.Address, c.Address, id: (ushort)(30 + i));
        }
        a.Tun.Inject(behind);
        AwaitWritten(c, 22);
        Assert.Equal(Enumerable.Range(20, 20), c.Tun.Written.Skip(2).Select(p => (int)Packets.IdOf(p)));
        // The backlog drains, and C's next packet is stepped on the reader again.
        AwaitCondition(() => !slotC.HasBacklog, Wait);
        seen = Network.Log.Count;
        a.Tun.Inject(Packets.Ipv4(a.Address, c.Address, id: 40));
        AwaitWritten(c, 23);
        Assert.StartsWith("tun-reader", Assert.Single(DataFrom(a, seen)).SenderThread);
        StopAndAssertNoLeaks(a, b, c);
    }

    [Fact]
    public void After_idle_the_reader_that_sent_a_request_polls_for_the_reply_and_the_far_reader_reads_its_answer_itself()
    {
        // Reply polling (BatchReaderThread): neither reply below wakes a blocked reader. B's TUN
        // answers like a kernel answering a ping, and A's socket does not wake its reader. So a
        // reply arrives only if the thread that handed the request on polls for it.
        var (a, b) = StartPollingPair();
        b.Tun.AnswerQuietly = request => [Packets.Ipv4(b.Address, a.Address, Ecn.Ect0, id: (ushort)(Packets.IdOf(request) + 1000))];
        a.Socket.WakeOnArrival = false;
        AwaitReadersIdle();
        int seen = Network.Log.Count;
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 2));
        AwaitWritten(a, 1);

        Assert.Equal(1002, Packets.IdOf(Assert.Single(a.Tun.Written)));
        // A's TUN reader sealed the request, then polled A's socket and wrote the reply itself.
        Assert.StartsWith("tun-reader", Assert.Single(DataFrom(a, seen)).SenderThread);
        Assert.StartsWith("tun-reader", Assert.Single(a.Tun.WriterThreads));
        // B's socket reader wrote the request to the TUN, then read the answer and sent it.
        Assert.StartsWith("udp-receiver", b.Tun.WriterThreads[^1]);
        Assert.StartsWith("udp-receiver", Assert.Single(DataFrom(b, seen)).SenderThread);
        StopAndAssertNoLeaks(a, b);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(int.MaxValue)]
    public void A_polling_read_of_the_TUN_device_hands_on_its_first_packet_and_the_kicked_device_reader_the_rest(int answersPerRead)
    {
        // The thread that polled B's TUN for the reply (B's socket reader, after writing the
        // request) takes one packet, and kicks B's TUN reader, blocked in poll, for the rest: with
        // one answer per read, B's TUN keeps the others in the device object, as a super-packet's
        // segments that do not fit one read, which a reader blocked in poll would not see.
        var (a, b) = StartPollingPair();
        b.Tun.QuietAnswersPerRead = answersPerRead;
        b.Tun.AnswerQuietly = request =>
            [.. Enumerable.Range(1, 3).Select(k => Packets.Ipv4(b.Address, a.Address, id: (ushort)(Packets.IdOf(request) + 1000 * k)))];
        AwaitReadersIdle();
        int seen = Network.Log.Count;
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        AwaitWritten(a, 3);

        Assert.Equal([1002, 2002, 3002], a.Tun.Written.Select(p => (int)Packets.IdOf(p)));
        var answers = DataFrom(b, seen);
        Assert.Equal(3, answers.Length);
        Assert.StartsWith("udp-receiver", answers[0].SenderThread);
        Assert.All(answers.Skip(1), d => Assert.StartsWith("tun-reader", d.SenderThread));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void After_idle_the_first_read_of_the_TUN_device_takes_one_packet_which_is_sent_before_the_reader_reads_on()
    {
        // A read after idle is most often a lone packet (a ping): the reader hands it on before it
        // makes the read that finds the TUN device's queue empty (BatchReaderThread). A burst that
        // came in meanwhile follows at once, in order.
        var (a, b) = StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        // A's TUN reader is blocked again, and has been far longer than ReplyPoll.IdleBefore. (A
        // sleep alone let a reader thread descheduled for its length start its wait just before
        // the burst: not idle, one read of three.)
        AwaitCondition(() => a.Tun.ReaderWaiting, Wait);
        Thread.Sleep(100);
        int reads = a.Tun.ReadSizes.Length;
        int seen = Network.Log.Count;
        a.Tun.Inject(
            Packets.Ipv4(a.Address, b.Address, id: 2),
            Packets.Ipv4(a.Address, b.Address, id: 3),
            Packets.Ipv4(a.Address, b.Address, id: 4));
        AwaitWritten(b, 4);

        Assert.Equal([1, 2], a.Tun.ReadSizes.Skip(reads));
        Assert.Equal([2, 3, 4], b.Tun.Written.Skip(1).Select(p => (int)Packets.IdOf(p)));
        Assert.Equal(3, DataFrom(a, seen).Length);
        StopAndAssertNoLeaks(a, b);
    }

    /// <summary>
    /// A and B with reply polling on (a long limit, so a slow test machine still catches a reply),
    /// after a handshake and a first packet, with no batch left on the actor path.
    /// </summary>
    private (TunnelNode A, TunnelNode B) StartPollingPair()
    {
        var a = StartNode("a", 1, replyPollMax: ReplyPollLimit);
        var b = StartNode("b", 2, replyPollMax: ReplyPollLimit);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        Assert.True(Control<TunnelTopology>(a, GetTunnelTopology.Instance).Registry.TryGet(b.PublicKey, out var bAtA));
        Assert.True(Control<TunnelTopology>(b, GetTunnelTopology.Instance).Registry.TryGet(a.PublicKey, out var aAtB));
        AwaitCondition(() => !bAtA.HasBacklog && !aAtB.HasBacklog, Wait);
        return (a, b);
    }

    private static readonly TimeSpan ReplyPollLimit = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longer than the limit: the polls that followed the handshake are over, every reader is
    /// blocked, and the next read wakes its reader from idle.
    /// </summary>
    private static void AwaitReadersIdle() => Thread.Sleep(2 * ReplyPollLimit);

    private WireDatagram[] DataFrom(TunnelNode node, int seen) =>
        Network.Log.Skip(seen).Where(d => d.From == node.Endpoint && d.Type == MessageType.TransportData && d.Data.Length > MessageHeader.TransportMinSize).ToArray();

    [Fact]
    public void Packets_for_no_peer_and_non_IP_packets_are_dropped_and_counted()
    {
        var (a, b) = StartPair();
        a.Tun.Inject(
            Packets.Ipv4(a.Address, "10.9.9.9", id: 1), // no peer has 10.9.9.9
            [0x00, 0x01, 0x02], // not IP
            Packets.Ipv4(a.Address, b.Address, id: 2));
        AwaitWritten(b, 1);
        var drops = Control<DeviceStatus>(a, GetDeviceStatus.Instance).Drops;
        Assert.Equal(1, drops.TunPacketsNoRoute);
        Assert.Equal(1, drops.TunPacketsInvalid);
        Assert.Equal(2, Packets.IdOf(Assert.Single(b.Tun.Written)));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Copy_in_sets_each_datagram_outer_ECN_from_its_inner_packet()
    {
        var (a, b) = StartPair();
        a.Tun.Inject(
            Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1),
            Packets.Ipv4(a.Address, b.Address, Ecn.Ect1, id: 2),
            Packets.Ipv4(a.Address, b.Address, Ecn.Ce, id: 3),
            Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 4),
            Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 5));
        AwaitWritten(b, 5);
        var data = Network.Log.Where(d => d.From == a.Endpoint && d.Type == MessageType.TransportData && d.Data.Length > 32).ToList();
        // RFC 6040 section 4.1 normal mode: outer = inner, CE included, per datagram.
        Assert.Equal([Ecn.Ect0, Ecn.Ect1, Ecn.Ce, Ecn.NotEct, Ecn.Ect0], data.Select(d => d.SentEcn));
        // Handshake messages carry no inner packet: Not-ECT.
        Assert.All(Network.Log.Where(d => d.Type is MessageType.Initiation or MessageType.Response), d => Assert.Equal(Ecn.NotEct, d.SentEcn));
        // Unchanged path: the far side sees the inner codepoints as sent.
        Assert.Equal([Ecn.Ect0, Ecn.Ect1, Ecn.Ce, Ecn.NotEct, Ecn.Ect0], b.Tun.Written.Select(Packets.EcnOf));
        var status = PeerStatusOf(a, b);
        Assert.Equal(2, status.DatagramsSentEct0);
        Assert.Equal(1, status.DatagramsSentEct1);
        Assert.Equal(1, status.DatagramsSentCe);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Compatibility_mode_sends_every_datagram_Not_ECT()
    {
        var (a, b) = StartPair(aMode: EcnMode.Compatibility);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1), Packets.Ipv4(a.Address, b.Address, Ecn.Ce, id: 2));
        AwaitWritten(b, 2);
        Assert.All(Network.Log.Where(d => d.From == a.Endpoint), d => Assert.Equal(Ecn.NotEct, d.SentEcn));
        // The inner packets keep their own codepoints.
        Assert.Equal([Ecn.Ect0, Ecn.Ce], b.Tun.Written.Select(Packets.EcnOf));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void CE_marked_on_the_wire_reaches_the_far_TUN_and_Not_ECT_marked_CE_is_dropped_and_counted()
    {
        var (a, b) = StartPair();
        // A congested router between A and B marks every ECN-capable transport datagram CE, and
        // (misbehaving) also the Not-ECT ones: RFC 6040 section 4.2 must drop those.
        Network.RewriteEcn = (data, ecn) =>
            MessageHeader.Classify(data, out _) == MessageType.TransportData && data.Length > 32 ? Ecn.Ce : ecn;
        a.Tun.Inject(
            Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1),
            Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 2),
            Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 3),
            Packets.Ipv4(a.Address, b.Address, Ecn.Ect1, id: 4),
            Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 5),
            Packets.Ipv4(a.Address, b.Address, Ecn.Ce, id: 6));
        AwaitWritten(b, 4);
        AwaitCondition(() => PeerStatusOf(b, a).EcnDrops == 2, Wait);

        var written = b.Tun.Written;
        Assert.Equal([(ushort)1, (ushort)3, (ushort)4, (ushort)6], written.Select(Packets.IdOf));
        Assert.All(written, p => Assert.Equal(Ecn.Ce, Packets.EcnOf(p)));
        Assert.All(written, p => Assert.True(Packets.ChecksumValid(p), "IPv4 checksum patched (RFC 1624)"));
        Assert.All(written, p => Assert.Equal(0xB8, p[1] & 0xFC)); // inner DSCP untouched

        var status = PeerStatusOf(b, a);
        Assert.Equal(6, status.CeDatagramsReceived);
        Assert.Equal(3, status.CeMarksPropagated); // ids 1, 3, 4; id 6 was CE already
        Assert.Equal(2, status.EcnDrops);
        Assert.Equal(2, status.EcnUnexpected); // the two drops are (!!!) combinations
        Assert.Equal(4, status.RxPackets);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void ECN_off_writes_the_inner_packet_unchanged_even_when_marked_CE()
    {
        var (a, b) = StartPair(bMode: EcnMode.Off);
        Network.RewriteEcn = (data, ecn) => MessageHeader.Classify(data, out _) == MessageType.TransportData ? Ecn.Ce : ecn;
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1), Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 2));
        AwaitWritten(b, 2);
        Assert.Equal([Ecn.Ect0, Ecn.NotEct], b.Tun.Written.Select(Packets.EcnOf));
        Assert.Equal(0, PeerStatusOf(b, a).EcnDrops);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void A_tampered_datagram_counts_as_an_authentication_failure_and_never_reaches_the_TUN()
    {
        var (a, b) = StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        int flipped = 0;
        Network.Tamper = data =>
        {
            if (MessageHeader.Classify(data, out _) == MessageType.TransportData && data.Length > 32 && Interlocked.Exchange(ref flipped, 1) == 0)
            {
                data[^1] ^= 0x01; // one bit of the Poly1305 tag
            }
        };
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2), Packets.Ipv4(a.Address, b.Address, id: 3));
        AwaitWritten(b, 2);
        AwaitCondition(() => PeerStatusOf(b, a).AuthenticationFailures == 1, Wait);
        Assert.Equal([(ushort)1, (ushort)3], b.Tun.Written.Select(Packets.IdOf));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void IPv6_inner_packets_carry_ECN_across_both_ways()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var aToB = a.PeerConfigFor(b) with { AllowedIps = [Engine.Routing.IpPrefix.Parse("fd00::2/128")] };
        var bToA = b.PeerConfigFor(a, withEndpoint: false) with { AllowedIps = [Engine.Routing.IpPrefix.Parse("fd00::1/128")] };
        Control<PeerConfigured>(b, new AddOrUpdatePeer(bToA));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(aToB));
        Network.RewriteEcn = (data, ecn) => MessageHeader.Classify(data, out _) == MessageType.TransportData && ecn == Ecn.Ect1 ? Ecn.Ce : ecn;
        a.Tun.Inject(Packets.Ipv6("fd00::1", "fd00::2", Ecn.Ect1), Packets.Ipv6("fd00::1", "fd00::2", Ecn.Ect0));
        AwaitWritten(b, 2);
        Assert.Equal([Ecn.Ce, Ecn.Ect0], b.Tun.Written.Select(Packets.EcnOf));
        b.Tun.Inject(Packets.Ipv6("fd00::2", "fd00::1", Ecn.Ect1));
        AwaitWritten(a, 1);
        Assert.Equal(Ecn.Ce, Packets.EcnOf(Assert.Single(a.Tun.Written)));
        Assert.Equal(1, PeerStatusOf(b, a).CeMarksPropagated);
        Assert.Equal(1, PeerStatusOf(a, b).CeMarksPropagated);
        StopAndAssertNoLeaks(a, b);
    }
}
