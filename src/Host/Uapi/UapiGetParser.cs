using System.Globalization;
using System.Net;
using DeviceDropCounts = Firezone.Actors.Actors.Peers.DeviceDropCounts;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Reads a <c>get=1</c> / <c>fz_get=1</c> reply body back into a <see cref="DeviceStatus"/> (for
/// <c>firezone-tunnel show</c>). Unknown keys are skipped, as wg(8)'s ipc-uapi.h does.
/// </summary>
public static class UapiGetParser
{
    public static DeviceStatus Parse(IReadOnlyList<string> lines)
    {
        var status = new DeviceStatus();
        var peers = new List<PeerStatus>();
        PeerStatus? peer = null;
        var allowed = new List<IpPrefix>();
        long seconds = 0, nanoseconds = 0;

        void FinishPeer()
        {
            if (peer is not null)
            {
                long total = seconds * 1_000_000_000 + nanoseconds;
                peers.Add(peer with
                {
                    Config = peer.Config with { AllowedIps = allowed.ToArray(), Endpoint = peer.Endpoint },
                    LastHandshake = total == 0 ? null : DateTimeOffset.UnixEpoch.AddTicks(total / 100),
                });
            }
            allowed.Clear();
            seconds = nanoseconds = 0;
        }

        foreach (var line in lines)
        {
            int equals = line.IndexOf('=');
            if (equals < 0)
            {
                throw new UapiException(UapiErrno.EPROTO, $"malformed reply line '{line}'");
            }
            string key = line[..equals];
            string value = line[(equals + 1)..];
            if (key == "public_key")
            {
                FinishPeer();
                peer = new PeerStatus { Config = new PeerConfig { PublicKey = Key(value) } };
                continue;
            }
            if (peer is null)
            {
                status = key switch
                {
                    "private_key" => status with { PrivateKey = Key(value) },
                    "fz_public_key" => status with { PublicKey = Key(value) },
                    "listen_port" => status with { ListenPort = ushort.Parse(value, CultureInfo.InvariantCulture) },
                    "fwmark" => status with { Fwmark = uint.Parse(value, CultureInfo.InvariantCulture) },
                    "fz_buffers_outstanding" => status with { BuffersOutstanding = int.Parse(value, CultureInfo.InvariantCulture) },
                    "fz_tun_packets_no_route" => status with { Drops = Drops(status) with { TunPacketsNoRoute = Count(value) } },
                    "fz_tun_packets_no_route_multicast" => status with { Drops = Drops(status) with { TunPacketsNoRouteMulticast = Count(value) } },
                    "fz_tun_packets_invalid" => status with { Drops = Drops(status) with { TunPacketsInvalid = Count(value) } },
                    "fz_datagrams_invalid" => status with { Drops = Drops(status) with { DatagramsInvalid = Count(value) } },
                    "fz_datagrams_unknown_receiver" => status with { Drops = Drops(status) with { DatagramsUnknownReceiver = Count(value) } },
                    "fz_handshakes_rejected" => status with { Drops = Drops(status) with { HandshakesRejected = Count(value) } },
                    "fz_handshakes_unknown_peer" => status with { Drops = Drops(status) with { HandshakesUnknownPeer = Count(value) } },
                    "fz_handshakes_rate_limited" => status with { Drops = Drops(status) with { HandshakesRateLimited = Count(value) } },
                    "fz_handshakes_queue_full" => status with { Drops = Drops(status) with { HandshakesQueueFull = Count(value) } },
                    "fz_cookie_replies_sent" => status with { Drops = Drops(status) with { CookieRepliesSent = Count(value) } },
                    "fz_pool_exhausted" => status with { Drops = Drops(status) with { PoolExhausted = Count(value) } },
                    _ => status,
                };
                continue;
            }
            switch (key)
            {
                case "preshared_key":
                    var psk = Key(value);
                    peer = peer with { Config = peer.Config with { PresharedKey = psk.IsZero ? null : psk } };
                    break;
                case "endpoint":
                    if (EndpointText.TrySplit(value, out var host, out var port, out _) && IPAddress.TryParse(host, out var address))
                    {
                        peer = peer with { Endpoint = Engine.Buffers.UdpEndpoint.FromIPEndPoint(new IPEndPoint(address, port)) };
                    }
                    break;
                case "last_handshake_time_sec":
                    seconds = long.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "last_handshake_time_nsec":
                    nanoseconds = long.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "tx_bytes":
                    peer = peer with { TxBytes = ulong.Parse(value, CultureInfo.InvariantCulture) };
                    break;
                case "rx_bytes":
                    peer = peer with { RxBytes = ulong.Parse(value, CultureInfo.InvariantCulture) };
                    break;
                case "persistent_keepalive_interval":
                    peer = peer with { Config = peer.Config with { PersistentKeepaliveSeconds = ushort.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "allowed_ip":
                    allowed.Add(IpPrefix.Parse(value));
                    break;
                case "fz_ecn_mode":
                    peer = peer with
                    {
                        Config = peer.Config with
                        {
                            EcnMode = value switch { "compatibility" => EcnMode.Compatibility, "off" => EcnMode.Off, _ => EcnMode.Normal },
                        },
                    };
                    break;
                case "fz_ect_sent":
                    peer = peer with { Ecn = peer.Ecn with { EctSent = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_ce_received":
                    peer = peer with { Ecn = peer.Ecn with { CeReceived = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_ce_propagated":
                    peer = peer with { Ecn = peer.Ecn with { CePropagated = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_ecn_drops":
                    peer = peer with { Ecn = peer.Ecn with { EcnDrops = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_ecn_alarms":
                    peer = peer with { Ecn = peer.Ecn with { AlarmEvents = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_packets_queue_full":
                    peer = peer with { Drops = peer.Drops with { QueueFull = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_datagrams_not_sent":
                    peer = peer with { Drops = peer.Drops with { NotSent = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_packets_source_not_allowed":
                    peer = peer with { Drops = peer.Drops with { SourceNotAllowed = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_datagrams_refused":
                    peer = peer with { Drops = peer.Drops with { Refused = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_packets_outbound_refused":
                    peer = peer with { Drops = peer.Drops with { OutboundRefused = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_restarts":
                    peer = peer with { Drops = peer.Drops with { Restarts = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
                case "fz_stopped":
                    peer = peer with { Stopped = value };
                    break;
                case "fz_restart_drops":
                    peer = peer with { Drops = peer.Drops with { RestartDrops = ulong.Parse(value, CultureInfo.InvariantCulture) } };
                    break;
            }
        }
        FinishPeer();
        return status with { Peers = peers };
    }

    /// <summary>The device-level drop counts read so far (all zero before the first <c>fz_</c> count line).</summary>
    private static DeviceDropCounts Drops(DeviceStatus status) => status.Drops ?? DeviceDropCounts.None;

    private static long Count(string value) => long.Parse(value, CultureInfo.InvariantCulture);

    private static WireGuardKey Key(string hex) =>
        WireGuardKey.TryParseHex(hex, out var key) ? key : throw new UapiException(UapiErrno.EPROTO, "malformed key in reply");
}
