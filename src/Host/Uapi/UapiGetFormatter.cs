using System.Buffers;
using System.Globalization;
using System.Text;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Writes a <see cref="DeviceStatus"/> as the body of a <c>get=1</c> reply, in wireguard-go's order
/// (device/uapi.go IpcGetOperation). The <c>fz_get=1</c> variant adds <c>fz_</c> lines with the
/// engine's ECN state; it is a separate verb so that <c>get=1</c> stays byte-for-byte what every
/// UAPI client expects.
/// </summary>
public static class UapiGetFormatter
{
    /// <summary>
    /// How much of a reply <see cref="WriteAsync"/> gathers before it writes: tens of peers a write,
    /// instead of one string of the whole reply (10,000 peers are 3.3 MB of text, which as a string,
    /// its copy with the errno line and its bytes took some 20 MB of the large-object heap a get).
    /// </summary>
    internal const int ChunkBytes = 32 * 1024;

    /// <summary>
    /// The longest fz_stopped value, in characters (a longer reason is cut, ending "..."): the reason
    /// is an exception's message, and a line of 64 KiB or more failed the whole reply
    /// (<see cref="UapiLineReader.MaxLineLength"/>; `firezone-tunnel show` answered EIO).
    /// </summary>
    internal const int StoppedMaxChars = 1024;

    /// <summary>The whole body as one string (tests, and callers that want the text).</summary>
    public static string Format(DeviceStatus status, bool extensions)
    {
        var text = new ArrayBufferWriter<byte>(256 + status.Peers.Count * 256);
        WriteDevice(text, status, extensions);
        foreach (var peer in status.Peers)
        {
            WritePeer(text, peer, extensions);
        }
        return Encoding.UTF8.GetString(text.WrittenSpan);
    }

    /// <summary>
    /// The body and the closing <c>errno=0</c> written to <paramref name="stream"/> as they are
    /// formatted, a chunk of <see cref="ChunkBytes"/> at a time, so that a get of thousands of peers
    /// needs one small buffer and the client reads its first peers while the rest are formatted.
    /// </summary>
    public static async Task WriteAsync(DeviceStatus status, bool extensions, Stream stream, CancellationToken cancellationToken)
    {
        var chunk = new ArrayBufferWriter<byte>(ChunkBytes + 4096);
        try
        {
            WriteDevice(chunk, status, extensions);
            foreach (var peer in status.Peers)
            {
                WritePeer(chunk, peer, extensions);
                if (chunk.WrittenCount >= ChunkBytes)
                {
                    await stream.WriteAsync(chunk.WrittenMemory, cancellationToken).ConfigureAwait(false);
                    chunk.Clear(); // zeroed, not only reset: chunks hold private and preshared keys
                }
            }
            Line(chunk, "errno"u8, 0);
            chunk.Write("\n"u8);
            await stream.WriteAsync(chunk.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            chunk.Clear();
        }
    }

    private static void WriteDevice(IBufferWriter<byte> text, DeviceStatus status, bool extensions)
    {
        if (status.PrivateKey is { IsZero: false } privateKey)
        {
            Line(text, "private_key"u8, privateKey);
        }
        if (extensions && status.PublicKey is { IsZero: false } publicKey)
        {
            Line(text, "fz_public_key"u8, publicKey);
        }
        if (status.ListenPort != 0)
        {
            Line(text, "listen_port"u8, status.ListenPort);
        }
        if (status.Fwmark != 0)
        {
            Line(text, "fwmark"u8, status.Fwmark);
        }
        if (extensions && status.BuffersOutstanding is int outstanding)
        {
            Line(text, "fz_buffers_outstanding"u8, outstanding);
        }
        if (extensions && status.Drops is { } drops)
        {
            Line(text, "fz_tun_packets_no_route"u8, drops.TunPacketsNoRoute);
            Line(text, "fz_tun_packets_no_route_multicast"u8, drops.TunPacketsNoRouteMulticast);
            Line(text, "fz_tun_packets_invalid"u8, drops.TunPacketsInvalid);
            Line(text, "fz_datagrams_invalid"u8, drops.DatagramsInvalid);
            Line(text, "fz_datagrams_unknown_receiver"u8, drops.DatagramsUnknownReceiver);
            Line(text, "fz_handshakes_rejected"u8, drops.HandshakesRejected);
            Line(text, "fz_handshakes_unknown_peer"u8, drops.HandshakesUnknownPeer);
            Line(text, "fz_handshakes_rate_limited"u8, drops.HandshakesRateLimited);
            Line(text, "fz_handshakes_queue_full"u8, drops.HandshakesQueueFull);
            Line(text, "fz_cookie_replies_sent"u8, drops.CookieRepliesSent);
            Line(text, "fz_pool_exhausted"u8, drops.PoolExhausted);
        }
    }

    private static void WritePeer(IBufferWriter<byte> text, PeerStatus peer, bool extensions)
    {
        var config = peer.Config;
        Line(text, "public_key"u8, config.PublicKey);
        Line(text, "preshared_key"u8, config.PresharedKey ?? default);
        Line(text, "protocol_version"u8, 1);
        if (!peer.Endpoint.IsNone)
        {
            Line(text, "endpoint"u8, EndpointText.Format(peer.Endpoint));
        }
        long nanoseconds = peer.LastHandshake is { } when ? (when - DateTimeOffset.UnixEpoch).Ticks * 100 : 0;
        Line(text, "last_handshake_time_sec"u8, nanoseconds / 1_000_000_000);
        Line(text, "last_handshake_time_nsec"u8, nanoseconds % 1_000_000_000);
        Line(text, "tx_bytes"u8, peer.TxBytes);
        Line(text, "rx_bytes"u8, peer.RxBytes);
        Line(text, "persistent_keepalive_interval"u8, config.PersistentKeepaliveSeconds);
        foreach (var prefix in config.AllowedIps)
        {
            // Go's text for the address (wireguard-go's get), not .NET's (IpPrefix.ToString).
            Line(text, "allowed_ip"u8, EndpointText.FormatAddress(prefix.Address) + "/" + prefix.Length.ToString(CultureInfo.InvariantCulture));
        }
        if (extensions)
        {
            Line(text, "fz_ecn_mode"u8, EcnModeName(config.EcnMode));
            Line(text, "fz_ect_sent"u8, peer.Ecn.EctSent);
            Line(text, "fz_ce_received"u8, peer.Ecn.CeReceived);
            Line(text, "fz_ce_propagated"u8, peer.Ecn.CePropagated);
            Line(text, "fz_ecn_drops"u8, peer.Ecn.EcnDrops);
            Line(text, "fz_ecn_alarms"u8, peer.Ecn.AlarmEvents);
            // Only the counts that are not zero: most peers dropped nothing, and a Gateway's
            // `firezone-tunnel show` reads thousands of peers.
            var drops = peer.Drops;
            NonZero(text, "fz_packets_queue_full"u8, drops.QueueFull);
            NonZero(text, "fz_datagrams_not_sent"u8, drops.NotSent);
            NonZero(text, "fz_packets_source_not_allowed"u8, drops.SourceNotAllowed);
            NonZero(text, "fz_datagrams_refused"u8, drops.Refused);
            NonZero(text, "fz_packets_outbound_refused"u8, drops.OutboundRefused);
            NonZero(text, "fz_restarts"u8, drops.Restarts);
            NonZero(text, "fz_restart_drops"u8, drops.RestartDrops);
            if (peer.Stopped is { } why)
            {
                Line(text, "fz_stopped"u8, StoppedText(why));
            }
        }
    }

    private static void NonZero(IBufferWriter<byte> text, ReadOnlySpan<byte> key, ulong value)
    {
        if (value != 0)
        {
            Line(text, key, value);
        }
    }

    public static string EcnModeName(EcnMode mode) => mode switch
    {
        EcnMode.Compatibility => "compatibility",
        EcnMode.Off => "off",
        _ => "normal",
    };

    /// <summary>The inverse of <see cref="EcnModeName"/>, in any case (a file's <c>#! EcnMode</c>, <c>--ecn-mode</c>).</summary>
    public static bool TryParseEcnModeName(string text, out EcnMode mode)
    {
        switch (text.ToLowerInvariant())
        {
            case "normal":
                mode = EcnMode.Normal;
                return true;
            case "compatibility":
                mode = EcnMode.Compatibility;
                return true;
            case "off":
                mode = EcnMode.Off;
                return true;
            default:
                mode = EcnMode.Normal;
                return false;
        }
    }

    /// <summary>
    /// <paramref name="why"/> as one line (an exception message may have several) of at most
    /// <see cref="StoppedMaxChars"/> characters (a message of any length must not fail the reply).
    /// </summary>
    internal static string StoppedText(string why)
    {
        string line = why.ReplaceLineEndings(" ");
        if (line.Length <= StoppedMaxChars)
        {
            return line;
        }
        int keep = StoppedMaxChars - 3;
        if (char.IsHighSurrogate(line[keep - 1]))
        {
            keep--; // not half a character
        }
        return string.Concat(line.AsSpan(0, keep), "...");
    }

    private static void Line(IBufferWriter<byte> text, ReadOnlySpan<byte> key, string value)
    {
        var line = text.GetSpan(key.Length + Encoding.UTF8.GetMaxByteCount(value.Length) + 2);
        int length = Key(line, key);
        length += Encoding.UTF8.GetBytes(value, line[length..]);
        line[length++] = (byte)'\n';
        text.Advance(length);
    }

    private static void Line<T>(IBufferWriter<byte> text, ReadOnlySpan<byte> key, T value) where T : IUtf8SpanFormattable
    {
        var line = text.GetSpan(key.Length + 24); // '=', 20 digits of a ulong, '\n' (a long's sign)
        int length = Key(line, key);
        if (!value.TryFormat(line[length..], out int written, default, CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException($"UapiGetFormatter.cs: {typeof(T).Name} {value} did not fit its line"); // cannot happen: a number of at most 20 digits
        }
        length += written;
        line[length++] = (byte)'\n';
        text.Advance(length);
    }

    private static void Line(IBufferWriter<byte> text, ReadOnlySpan<byte> key, WireGuardKey value)
    {
        var line = text.GetSpan(key.Length + 2 * WireGuardKey.Size + 2);
        int length = Key(line, key);
        value.TryFormatHex(line[length..], out int written); // the span holds the 64 characters
        length += written;
        line[length++] = (byte)'\n';
        text.Advance(length);
    }

    private static int Key(Span<byte> line, ReadOnlySpan<byte> key)
    {
        key.CopyTo(line);
        line[key.Length] = (byte)'=';
        return key.Length + 1;
    }
}
