using System.Globalization;
using System.Text;
using Firezone.Actors.Engine;
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
    public static string Format(DeviceStatus status, bool extensions)
    {
        var text = new StringBuilder(256 + status.Peers.Count * 256);
        if (status.PrivateKey is { IsZero: false } privateKey)
        {
            Line(text, "private_key", privateKey.ToHex());
        }
        if (extensions && status.PublicKey is { IsZero: false } publicKey)
        {
            Line(text, "fz_public_key", publicKey.ToHex());
        }
        if (status.ListenPort != 0)
        {
            Line(text, "listen_port", Number(status.ListenPort));
        }
        if (status.Fwmark != 0)
        {
            Line(text, "fwmark", Number(status.Fwmark));
        }
        if (extensions && status.BuffersOutstanding is int outstanding)
        {
            Line(text, "fz_buffers_outstanding", Number(outstanding));
        }
        foreach (var peer in status.Peers)
        {
            var config = peer.Config;
            Line(text, "public_key", config.PublicKey.ToHex());
            Line(text, "preshared_key", (config.PresharedKey ?? default).ToHex());
            Line(text, "protocol_version", "1");
            if (!peer.Endpoint.IsNone)
            {
                Line(text, "endpoint", EndpointText.Format(peer.Endpoint));
            }
            long nanoseconds = peer.LastHandshake is { } when ? (when - DateTimeOffset.UnixEpoch).Ticks * 100 : 0;
            Line(text, "last_handshake_time_sec", Number(nanoseconds / 1_000_000_000));
            Line(text, "last_handshake_time_nsec", Number(nanoseconds % 1_000_000_000));
            Line(text, "tx_bytes", Number(peer.TxBytes));
            Line(text, "rx_bytes", Number(peer.RxBytes));
            Line(text, "persistent_keepalive_interval", Number(config.PersistentKeepaliveSeconds));
            foreach (var prefix in config.AllowedIps)
            {
                Line(text, "allowed_ip", prefix.ToString());
            }
            if (extensions)
            {
                Line(text, "fz_ecn_mode", EcnModeName(config.EcnMode));
                Line(text, "fz_ect_sent", Number(peer.Ecn.EctSent));
                Line(text, "fz_ce_received", Number(peer.Ecn.CeReceived));
                Line(text, "fz_ce_propagated", Number(peer.Ecn.CePropagated));
                Line(text, "fz_ecn_drops", Number(peer.Ecn.EcnDrops));
                Line(text, "fz_ecn_alarms", Number(peer.Ecn.AlarmEvents));
            }
        }
        return text.ToString();
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

    private static string Number<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static void Line(StringBuilder text, string key, string value) => text.Append(key).Append('=').Append(value).Append('\n');
}
