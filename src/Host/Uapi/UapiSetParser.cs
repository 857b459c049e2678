using System.Globalization;
using System.Numerics;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Parses the body of a <c>set=1</c> request (the lines up to the blank line) with the rules of
/// wireguard-go's device/uapi.go: device keys until the first <c>public_key</c>, then peer keys;
/// hex keys; <c>true</c> as the only value of the flags; unknown keys are EINVAL. Line by line, as
/// they arrive (<see cref="Add"/>), so the server refuses a request at its first bad line, as
/// wireguard-go does, instead of holding what follows (megabytes of it) until the blank line.
/// </summary>
public sealed class UapiSetParser
{
    private UapiPeerChange? _peer;

    /// <summary>What the lines so far ask for.</summary>
    public UapiSetRequest Request { get; } = new();

    /// <summary>A whole body at once.</summary>
    public static UapiSetRequest Parse(IReadOnlyList<string> lines)
    {
        var parser = new UapiSetParser();
        foreach (var line in lines)
        {
            parser.Add(line);
        }
        return parser.Request;
    }

    /// <summary>The next line of the body; <see cref="UapiException"/> when it is not valid there.</summary>
    public void Add(string line)
    {
        int equals = line.IndexOf('=');
        if (equals < 0)
        {
            throw new UapiException(UapiErrno.EPROTO, "failed to parse line: not key=value");
        }
        string key = line[..equals];
        string value = line[(equals + 1)..];
        if (key == "public_key")
        {
            _peer = new UapiPeerChange(ParseKey(key, value));
            Request.Peers.Add(_peer);
        }
        else if (_peer is null)
        {
            ParseDeviceLine(Request, key, value);
        }
        else
        {
            ParsePeerLine(_peer, key, value);
        }
    }

    private static void ParseDeviceLine(UapiSetRequest request, string key, string value)
    {
        switch (key)
        {
            case "private_key":
                // Clamped as wireguard-go stores it (zero, "no key", stays zero).
                request.PrivateKey = Curve25519.Clamp(ParseKey(key, value));
                break;
            case "listen_port":
                request.ListenPort = ParseNumber<ushort>(key, value);
                break;
            case "fwmark":
                request.Fwmark = ParseNumber<uint>(key, value);
                break;
            case "replace_peers":
                ExpectTrue(key, value);
                request.ReplacePeers = true;
                break;
            default:
                throw new UapiException(UapiErrno.EINVAL, $"invalid UAPI device key{Quoted(key)}");
        }
    }

    private static void ParsePeerLine(UapiPeerChange peer, string key, string value)
    {
        switch (key)
        {
            case "update_only":
                ExpectTrue(key, value);
                peer.UpdateOnly = true;
                break;
            case "remove":
                ExpectTrue(key, value);
                peer.Remove = true;
                break;
            case "preshared_key":
                peer.PresharedKey = ParseKey(key, value);
                break;
            case "endpoint":
                if (!EndpointText.TryParseNumeric(value, out var endpoint, out var error))
                {
                    throw new UapiException(UapiErrno.EINVAL, $"failed to set endpoint: {error}");
                }
                peer.Endpoint = endpoint;
                break;
            case "persistent_keepalive_interval":
                peer.PersistentKeepaliveSeconds = ParseNumber<ushort>(key, value);
                break;
            case "replace_allowed_ips":
                ExpectTrue(key, value);
                peer.AllowedIps.Add(new AllowedIpChange(AllowedIpChangeKind.ReplaceAll, null));
                break;
            case "allowed_ip":
                bool remove = value.StartsWith('-');
                string text = remove ? value[1..] : value;
                // netip.ParsePrefix requires the "/bits" part, an address as netip.ParseAddr takes it
                // and no zone.
                int slash = text.LastIndexOf('/');
                if (slash < 0 || text.Contains('%') || !IpAddressText.TryParse(text[..slash], out _)
                    || !DecimalText.IsDigits(text[(slash + 1)..]) || !IpPrefix.TryParse(text, out var prefix, out _))
                {
                    throw new UapiException(UapiErrno.EINVAL, "failed to set allowed ip: not a CIDR prefix");
                }
                peer.AllowedIps.Add(new AllowedIpChange(remove ? AllowedIpChangeKind.Remove : AllowedIpChangeKind.Add, prefix));
                break;
            case "protocol_version":
                if (value != "1")
                {
                    throw new UapiException(UapiErrno.EINVAL, "invalid protocol version (only 1 is known)");
                }
                break;
            default:
                throw new UapiException(UapiErrno.EINVAL, $"invalid UAPI peer key{Quoted(key)}");
        }
    }

    private static WireGuardKey ParseKey(string key, string value)
    {
        if (!WireGuardKey.TryParseHex(value, out var parsed))
        {
            // Never echo the value: it may be a private or preshared key.
            throw new UapiException(UapiErrno.EINVAL, $"failed to set {key}: not 64 hex characters");
        }
        return parsed;
    }

    private static T ParseNumber<T>(string key, string value) where T : struct, INumber<T>
    {
        if (!DecimalText.IsDigits(value) || !T.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            throw new UapiException(UapiErrno.EINVAL, $"failed to parse {key}: not a number in range");
        }
        return number;
    }

    private static void ExpectTrue(string key, string value)
    {
        if (value != "true")
        {
            throw new UapiException(UapiErrno.EINVAL, $"failed to set {key}: the only valid value is true");
        }
    }

    /// <summary>
    /// Quotes a key name only when it is a plain identifier: a mistyped line may put a hex private
    /// key where the key name goes, and these messages are logged (see <see cref="SafeText"/>).
    /// </summary>
    private static string Quoted(string key) => SafeText.IsQuotableName(key) ? ": " + key : "";
}
