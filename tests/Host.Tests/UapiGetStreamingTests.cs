using System.Net;
using System.Net.Sockets;
using System.Text;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A get's reply is written while it is formatted, a chunk of some tens of peers at a time. Before,
/// the whole reply was built as one string, copied with its errno line and turned into bytes: for
/// 10,000 peers (3.3 MB of text) `wg show dump` took 40 to 50 ms before its first byte and the
/// daemon's RSS rose by 40 to 65 MB a dump; streamed, the first byte comes after 15 to 19 ms, the
/// whole reply after 25 to 33 ms, and RSS rises by 13 to 40 MB (`/tmp/dump.sh`, 2026-11-29).
/// </summary>
public sealed class UapiGetStreamingTests
{
    private static DeviceStatus ManyPeers(int count)
    {
        var peers = new List<PeerStatus>(count);
        for (int i = 0; i < count; i++)
        {
            var key = new byte[WireGuardKey.Size];
            BitConverter.TryWriteBytes(key, i + 1);
            peers.Add(new PeerStatus
            {
                Config = new PeerConfig
                {
                    PublicKey = new WireGuardKey(key),
                    PersistentKeepaliveSeconds = (ushort)(i % 60),
                    AllowedIps = [IpPrefix.Parse($"10.{i / 65536}.{i / 256 % 256}.{i % 256}/32"), IpPrefix.Parse($"fd00::{i:x}/128")],
                },
                Endpoint = UdpEndpoint.FromIPEndPoint(new IPEndPoint(IPAddress.Parse($"192.0.2.{i % 250 + 1}"), 1000 + i)),
                LastHandshake = i % 3 == 0 ? null : DateTimeOffset.FromUnixTimeSeconds(1_800_000_000 + i).AddTicks(i),
                RxBytes = (ulong)i * 1000,
                TxBytes = ulong.MaxValue - (ulong)i,
                Ecn = new EcnCounters((ulong)i, 1, 2, 3, 4),
            });
        }
        var privateKey = new byte[WireGuardKey.Size];
        privateKey[0] = 7;
        return new DeviceStatus
        {
            PrivateKey = new WireGuardKey(privateKey),
            PublicKey = InMemoryTunnelControl.PublicKeyOf(new WireGuardKey(privateKey)),
            ListenPort = 51820,
            Fwmark = 0x1234,
            Peers = peers,
            BuffersOutstanding = 99,
        };
    }

    /// <summary>Records each write it is given.</summary>
    private sealed class RecordingStream : MemoryStream
    {
        public List<int> Writes { get; } = [];

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_get_of_thousands_of_peers_is_written_in_chunks_that_together_are_the_whole_reply(bool extensions)
    {
        var status = ManyPeers(3000);
        using var stream = new RecordingStream();

        await UapiGetFormatter.WriteAsync(status, extensions, stream, CancellationToken.None);

        string written = Encoding.UTF8.GetString(stream.ToArray());
        Assert.Equal(UapiGetFormatter.Format(status, extensions) + "errno=0\n\n", written);
        Assert.True(stream.Writes.Count >= written.Length / UapiGetFormatter.ChunkBytes, $"{stream.Writes.Count} writes of {written.Length} bytes");
        Assert.All(stream.Writes, size => Assert.InRange(size, 1, UapiGetFormatter.ChunkBytes + 1024)); // a chunk ends after the peer that filled it
        // Every peer whole, in order, with the values of its status.
        var parsed = UapiGetParser.Parse(written[..written.IndexOf("errno=", StringComparison.Ordinal)].TrimEnd('\n').Split('\n'));
        Assert.Equal(3000, parsed.Peers.Count);
        for (int i = 0; i < 3000; i += 499)
        {
            Assert.Equal(status.Peers[i].Config.PublicKey, parsed.Peers[i].Config.PublicKey);
            Assert.Equal(status.Peers[i].Config.AllowedIps, parsed.Peers[i].Config.AllowedIps);
            Assert.Equal(status.Peers[i].Endpoint, parsed.Peers[i].Endpoint);
            Assert.Equal(status.Peers[i].LastHandshake, parsed.Peers[i].LastHandshake);
            Assert.Equal((status.Peers[i].RxBytes, status.Peers[i].TxBytes), (parsed.Peers[i].RxBytes, parsed.Peers[i].TxBytes));
        }
    }

    [Fact]
    public async Task A_small_get_is_one_write()
    {
        var status = ManyPeers(3);
        using var stream = new RecordingStream();

        await UapiGetFormatter.WriteAsync(status, extensions: false, stream, CancellationToken.None);

        Assert.Single(stream.Writes);
        Assert.EndsWith("\nerrno=0\n\n", Encoding.UTF8.GetString(stream.ToArray()), StringComparison.Ordinal);
    }

    /// <summary>
    /// Over the socket: two gets on one connection of a device with 2,000 peers (the second starts
    /// after the first's chunks), each the formatter's text and its errno line; and a client that
    /// asks for a large get and does not read it holds up nobody: another client's set is answered.
    /// </summary>
    [Fact]
    public async Task A_large_get_over_the_socket_is_whole_and_a_client_that_does_not_read_it_blocks_no_one()
    {
        await using var fixture = UapiServerFixture.Start();
        var status = ManyPeers(2000);
        await fixture.Control.SetPrivateKeyAsync(status.PrivateKey, CancellationToken.None);
        foreach (var peer in status.Peers)
        {
            await fixture.Control.AddOrUpdatePeerAsync(peer.Config, CancellationToken.None);
        }
        string expected = UapiGetFormatter.Format(await fixture.Control.GetStatusAsync(CancellationToken.None), extensions: false) + "errno=0\n\n";
        Assert.True(expected.Length > 500_000, $"{expected.Length} bytes");

        string twice = UapiRawClient.Exchange(fixture.SocketPath, "get=1\n\nget=1\n\n", replies: 2);
        Assert.Equal(expected + expected, twice);

        using var stalled = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        stalled.Connect(new UnixDomainSocketEndPoint(fixture.SocketPath));
        stalled.Send("get=1\n\n"u8);
        await Task.Delay(300); // the server has filled the socket's buffer and waits for this client to read
        string reply = UapiRawClient.Exchange(fixture.SocketPath, "set=1\nlisten_port=4321\n\n");
        Assert.Equal(0, UapiRawClient.Errno(reply));
        Assert.Equal(4321, (await fixture.Control.GetStatusAsync(CancellationToken.None)).ListenPort);
    }
}
