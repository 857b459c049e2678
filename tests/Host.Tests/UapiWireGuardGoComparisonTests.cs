using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Differential test against Debian's wireguard-go (0.0.20220316): the same random set request goes
/// to both servers; both must answer the same errno, and after a request both accepted, both must
/// report the same configuration. Where the two differ on purpose the generator or the comparison
/// leaves the case out, and says why.
/// </summary>
/// <remarks>
/// Set-up and clean-up are the constructor and <see cref="IDisposable"/>: FsCheck's property runner
/// does not call IAsyncLifetime.DisposeAsync.
/// </remarks>
public sealed class UapiWireGuardGoComparisonTests : IDisposable
{
    private readonly UapiServerFixture _ours = UapiServerFixture.Start();
    private readonly WireGuardGoUapi _theirs = WireGuardGoUapi.StartAsync().GetAwaiter().GetResult();

    public void Dispose()
    {
        _ours.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _theirs.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private static readonly string ResetRequest = "set=1\nprivate_key=" + new string('0', 64) + "\nfwmark=0\nreplace_peers=true\n\n";

    [Property(MaxTest = 400, Arbitrary = [typeof(UapiGenerators)])]
    public Property A_set_request_gets_the_errno_and_configuration_wireguard_go_gives_it(UapiLines request)
    {
        string ours = UapiRawClient.Exchange(_ours.SocketPath, request.Request);
        string theirs = UapiRawClient.Exchange(_theirs.SocketPath, request.Request);
        string ourState = Normalize(UapiRawClient.Exchange(_ours.SocketPath, "get=1\n\n"));
        string theirState = Normalize(UapiRawClient.Exchange(_theirs.SocketPath, "get=1\n\n"));
        UapiRawClient.Exchange(_ours.SocketPath, ResetRequest);
        UapiRawClient.Exchange(_theirs.SocketPath, ResetRequest);
        // Go 1.19's strconv.Atoi, which netip.ParsePrefix used then, takes a sign ("10.0.0.0/+8");
        // later Go versions refuse it, as we do.
        bool sameErrno = UapiRawClient.Errno(ours) == UapiRawClient.Errno(theirs) || request.Request.Contains("/+", StringComparison.Ordinal);
        // After a refusal wireguard-go keeps what it applied before the bad line; we keep nothing.
        // An all-zero public key is wireguard-go's own while it has never had a private key, so it
        // ignores such a peer; we add it (no handshake can complete with it either way).
        bool sameState = UapiRawClient.Errno(ours) != 0 || ourState == theirState
            || request.Lines.Contains("public_key=" + new string('0', 64));
        return (sameErrno && sameState).Label($"ours {ours.Trim()} / wireguard-go {theirs.Trim()}\nours:\n{ourState}\nwireguard-go:\n{theirState}");
    }

    /// <summary>
    /// The configuration lines of a get reply, peers sorted by key (wireguard-go lists them in map
    /// order) and their allowed IPs sorted; listen_port left out (wireguard-go binds a random port
    /// where we report 0 until a port is set) and the counters too.
    /// </summary>
    private static string Normalize(string reply)
    {
        var device = new List<string>();
        var peers = new List<List<string>>();
        foreach (var line in reply.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string key = line[..Math.Max(0, line.IndexOf('='))];
            if (key is "listen_port" or "errno" or "last_handshake_time_sec" or "last_handshake_time_nsec" or "tx_bytes" or "rx_bytes" or "protocol_version")
            {
                continue;
            }
            if (key == "private_key")
            {
                // wireguard-go stores the key clamped (RFC 7748 section 5), as the kernel does; we
                // keep it as given. The public key, and so every handshake, is the same.
                byte[] secret = Convert.FromHexString(line[(key.Length + 1)..]);
                secret[0] &= 248;
                secret[31] = (byte)((secret[31] & 127) | 64);
                device.Add("private_key=" + Convert.ToHexStringLower(secret));
                continue;
            }
            if (key == "endpoint")
            {
                // wireguard-go 0.0.20220316 drops an IPv6 zone and keeps an IPv4-mapped address
                // mapped; we keep the zone (as its index) and send to the IPv4 address.
                string endpoint = System.Text.RegularExpressions.Regex.Replace(line, "%[0-9]+", "");
                peers[^1].Add(System.Text.RegularExpressions.Regex.Replace(endpoint, @"^endpoint=\[::ffff:([0-9.]+)\]", "endpoint=$1"));
                continue;
            }
            if (key == "public_key")
            {
                peers.Add([line]);
            }
            else if (peers.Count == 0)
            {
                device.Add(line);
            }
            else
            {
                peers[^1].Add(line);
            }
        }
        foreach (var peer in peers)
        {
            peer.Sort(1, peer.Count - 1, StringComparer.Ordinal);
        }
        peers.Sort(static (a, b) => string.CompareOrdinal(a[0], b[0]));
        return string.Join('\n', device.Concat(peers.SelectMany(static p => p)));
    }
}
