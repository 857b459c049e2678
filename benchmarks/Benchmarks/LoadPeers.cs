using System.Diagnostics;
using System.Globalization;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// A load generator for the Gateway's many-peers figure (issue 8 item 4; scripts/bench/peers.py):
/// N WireGuard Clients in one process, each with its own key, its own UDP socket (its own source
/// port, so its own endpoint) and its own tunnel address, all sending to one Gateway at once.
/// Every Client handshakes with the Gateway (our engine as initiator), then sends IPv4/UDP packets
/// of the tunnel's MTU from its tunnel address to the destination (ECT(0), DF, checksums set: ones a
/// Gateway may coalesce, see <see cref="LoadPeersPacket"/>), as fast as one core seals and
/// sends them: the Clients take turns, a burst of packets each (one GSO send). The offered load
/// is about the same for 1 and for N Clients (100 wireguard-go Clients, one process each, spend most
/// of the machine on themselves: README "100 peers"); a Gateway that carries less than one core of
/// this generator offers is measured at its limit, one that carries nearly all of it by its CPU per
/// byte (scripts/bench/peers.py).
///
/// Written by hand: no load generator speaks WireGuard with many peers from one process.
///
///     dotnet Firezone.Actors.Benchmarks.dll load-peers --endpoint IP:PORT --gateway-key BASE64
///         --keys FILE (lines "PRIVATE-KEY-BASE64 TUNNEL-ADDRESS") --base-port PORT
///         --destination IP [--port 9] [--seconds 10] [--mtu 1420] [--burst 32] [--handshake-seconds 20]
/// It prints one JSON line at the end: sessions, packets sealed and sent, send errors. Exit code 0
/// when every Client had a session, 1 when not, 2 for a mistake in the arguments or keys file.
/// </summary>
public static class LoadPeers
{
    private sealed class Client(Peer peer, LinuxUdpSocket socket, byte[] packet)
    {
        public Peer Peer { get; } = peer;
        public LinuxUdpSocket Socket { get; } = socket;
        public byte[] Packet { get; } = packet;
    }

    public static int Run(string[] args)
    {
        LoadPeersOptions options;
        IReadOnlyList<LoadPeersClient> specs;
        try
        {
            options = LoadPeersOptions.Parse(args);
            specs = LoadPeersClient.ReadAll(options.KeysFile, options.BasePort);
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
        {
            // A user's mistake: one line and exit code 2, not a stack trace (STYLE.md "Errors for people").
            Console.Error.WriteLine(e is ArgumentException ? e.Message : $"load-peers: --keys: {e.Message}");
            return 2;
        }
        var clock = Stopwatch.StartNew();
        TimeSpan Now() => clock.Elapsed;
        DateTime wallClockAtZero = DateTime.UtcNow;
        ITransportAead aead = OpenSslChaCha20Poly1305.Instance ?? (ITransportAead)DotNetTransportAead.Instance;
        IX25519 x25519 = OpenSslX25519.Instance ?? (IX25519)BouncyCastleX25519.Instance;
        var pool = new PacketBufferPool(preallocate: 1024, maxBuffers: 65536);
        var gatewayKey = new WireGuardKey(Convert.FromBase64String(options.GatewayKey));
        var gateway = UdpEndpoint.FromIPEndPoint(options.Endpoint);
        var clients = new List<Client>();
        foreach (var spec in specs)
        {
            var device = new Device(spec.PrivateKey, pool, CryptoRandomSource.Instance,
                wallClockAtZero, static () => DateTime.UtcNow, x25519, aead);
            var peer = new Peer(device, new PeerConfig { PublicKey = gatewayKey, Endpoint = gateway, AllowedIps = [IpPrefix.Parse("0.0.0.0/0")] });
            var socket = new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = spec.ListenPort, Family = UdpSocketFamily.IPv4Only, BatchSize = options.Burst, UseGro = false });
            clients.Add(new Client(peer, socket, LoadPeersPacket.Build(spec.TunnelAddress, options.Destination, options.Port, options.Mtu)));
        }

        // Handshakes: every Client initiates at once; answers, cookie replies and retries (the
        // engine's timers) until every Client has a session or the handshake time (20 s) has passed.
        foreach (var client in clients)
        {
            client.Peer.Connect(Now());
            Flush(client);
        }
        var received = new PacketBuffer[options.Burst]; // the receive buffers, filled by the socket and reused
        for (int k = 0; k < received.Length; k++)
        {
            received[k] = pool.Rent();
        }
        var handshakeDeadline = Now() + TimeSpan.FromSeconds(options.HandshakeSeconds);
        while (clients.Any(c => !c.Peer.HasSession(Now())) && Now() < handshakeDeadline)
        {
            foreach (var client in clients)
            {
                Drain(client, received, Now());
                if (client.Peer.PollTimeout() is { } due && due <= Now())
                {
                    client.Peer.HandleTimeout(Now());
                }
                Flush(client);
            }
            Thread.Sleep(1);
        }
        int sessions = clients.Count(c => c.Peer.HasSession(Now()));
        TimeSpan handshakes = Now();
        Console.Error.WriteLine($"load-peers: {sessions} of {clients.Count} sessions after {handshakes.TotalMilliseconds:F0} ms");

        long sealedCount = 0, sentCount = 0, refused = 0;
        var batch = new PacketBuffer[options.Burst];
        // A run without a session for every Client is a failed run (exit 1, peers.py discards it), so
        // it sends nothing: its load would not be the offered one, and it would take --seconds more.
        bool complete = sessions == clients.Count;
        var sendDeadline = Now() + (complete ? TimeSpan.FromSeconds(options.Seconds) : TimeSpan.Zero);
        while (Now() < sendDeadline)
        {
            foreach (var client in clients)
            {
                TimeSpan now = Now();
                Drain(client, received, now); // the Gateway's keepalives
                int n = 0;
                for (int k = 0; k < options.Burst; k++)
                {
                    PacketBuffer buffer = pool.Rent();
                    client.Packet.CopyTo(buffer.Memory[PacketBuffer.Headroom..]);
                    buffer.SetData(PacketBuffer.Headroom, client.Packet.Length);
                    switch (client.Peer.HandleTunPacket(buffer, now))
                    {
                        case SealResult.Sealed:
                            batch[n++] = buffer;
                            break;
                        case SealResult.Queued:
                            break; // the engine owns it and sends it after the next handshake
                        default:
                            refused++;
                            buffer.Return();
                            break;
                    }
                }
                sealedCount += n;
                sentCount += client.Socket.SendBatch(batch.AsSpan(0, n));
                for (int k = 0; k < n; k++)
                {
                    batch[k].Return();
                }
                if (client.Peer.PollTimeout() is { } due && due <= now)
                {
                    client.Peer.HandleTimeout(now);
                }
                Flush(client);
            }
        }
        long sendErrors = clients.Sum(c => c.Socket.SendErrors + c.Socket.SendDropped);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"clients\": {clients.Count}, \"sessions\": {sessions}, \"handshakes_ms\": {handshakes.TotalMilliseconds:F0}, \"sealed\": {sealedCount}, \"sent\": {sentCount}, \"refused\": {refused}, \"send_errors\": {sendErrors}, \"packet_bytes\": {options.Mtu}}}"));
        foreach (var client in clients)
        {
            client.Socket.Dispose();
            client.Peer.Dispose();
        }
        return complete ? 0 : 1;
    }

    /// <summary>Hands what the Client's socket has to its peer: handshake answers and cookie replies, and the Gateway's keepalives.</summary>
    private static void Drain(Client client, PacketBuffer[] received, TimeSpan now)
    {
        int n;
        while ((n = client.Socket.TryReceiveBatch(received)) > 0)
        {
            for (int k = 0; k < n; k++)
            {
                PacketBuffer datagram = received[k];
                if (MessageHeader.Classify(datagram.Data, out _) == MessageType.TransportData)
                {
                    client.Peer.HandleTransportData(datagram, now);
                }
                else
                {
                    client.Peer.HandleHandshakeMessage(datagram, now);
                }
            }
        }
    }

    /// <summary>Sends what the engine has to send for this Client (initiations, keepalives, packets queued before a session).</summary>
    private static void Flush(Client client)
    {
        while (client.Peer.PollTransmit(out var datagram))
        {
            client.Socket.SendBatch([datagram]);
            datagram.Return();
        }
    }
}
