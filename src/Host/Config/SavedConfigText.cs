using System.Globalization;
using System.Text;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// The file wg-quick's save_config writes on <c>wg-quick down</c> with <c>SaveConfig = true</c>: an
/// [Interface] header of the interface's live addresses, the DNS, the MTU (only when the file had
/// one), Table, SaveConfig and the hooks, then what <c>wg showconf</c> prints after its own
/// <c>[Interface]</c> line (ListenPort, FwMark, PrivateKey, every peer), the same keys in the same
/// order, so a file saved by firezone-tunnel and one saved by wg-quick read the same. Written by
/// hand: it is a shell function of wg-quick and wireguard-tools' showconf.c, which no library offers.
/// Two additions: the engine's <c>#!</c> directives (Role, EcnMode), which wg-quick would drop, and
/// DNS search domains, which wg-quick's save drops (it keeps only resolvconf's nameserver lines).
/// </summary>
public static class SavedConfigText
{
    /// <param name="addresses">The interface's addresses as <c>ip -brief address show</c> lists them ("10.0.0.1/24").</param>
    /// <param name="mtu">The link's MTU; written only when the file had an MTU key, as wg-quick.</param>
    public static string Format(TunnelConfig config, DeviceStatus status, IReadOnlyList<string> addresses, int mtu)
    {
        var device = config.Interface;
        var text = new StringBuilder(512 + status.Peers.Count * 256);
        text.Append("[Interface]\n");
        foreach (string address in addresses)
        {
            Line(text, "Address", address);
        }
        foreach (string server in device.Dns)
        {
            Line(text, "DNS", server);
        }
        foreach (string domain in device.DnsSearch)
        {
            Line(text, "DNS", domain);
        }
        if (device.Mtu is not null)
        {
            Line(text, "MTU", Number(mtu));
        }
        if (device.Table.Mode != RouteTableMode.Auto)
        {
            Line(text, "Table", device.Table.Name);
        }
        if (device.SaveConfig)
        {
            Line(text, "SaveConfig", "true");
        }
        foreach (var stage in (WgQuickHookStage[])[WgQuickHookStage.PreUp, WgQuickHookStage.PostUp, WgQuickHookStage.PreDown, WgQuickHookStage.PostDown])
        {
            foreach (var hook in device.Hooks)
            {
                if (hook.Stage == stage)
                {
                    Line(text, stage.ToString(), hook.Command);
                }
            }
        }
        if (device.Role == HostRole.Gateway)
        {
            text.Append("#! Role = gateway\n");
        }
        if (device.DefaultEcnMode != EcnMode.Normal)
        {
            text.Append("#! EcnMode = ").Append(UapiGetFormatter.EcnModeName(device.DefaultEcnMode)).Append('\n');
        }

        // wg showconf (showconf.c), from here on.
        if (status.ListenPort != 0)
        {
            Line(text, "ListenPort", Number(status.ListenPort));
        }
        if (status.Fwmark != 0)
        {
            Line(text, "FwMark", "0x" + status.Fwmark.ToString("x", CultureInfo.InvariantCulture));
        }
        if (status.PrivateKey is { IsZero: false } privateKey)
        {
            Line(text, "PrivateKey", privateKey.ToBase64());
        }
        text.Append('\n');
        // The #! directives count as the file reads now: a peer the file names gets the file's ECN
        // mode, not the one it still runs in (a peer keeps its mode until the restart, so with
        // SaveConfig = true the stop of `systemctl restart` saved the old mode over the edit the
        // restart was to apply). A peer only the UAPI added keeps the mode it runs in.
        var fileEcnModes = new Dictionary<WireGuardKey, EcnMode>(config.Peers.Count);
        foreach (var filePeer in config.Peers)
        {
            fileEcnModes[filePeer.PublicKey] = filePeer.EcnMode;
        }
        foreach (var peer in status.Peers)
        {
            var peerConfig = peer.Config;
            text.Append("[Peer]\n");
            Line(text, "PublicKey", peerConfig.PublicKey.ToBase64());
            if (peerConfig.PresharedKey is { IsZero: false } presharedKey)
            {
                Line(text, "PresharedKey", presharedKey.ToBase64());
            }
            if (peerConfig.AllowedIps.Count > 0)
            {
                text.Append("AllowedIPs = ").AppendJoin(", ", peerConfig.AllowedIps).Append('\n');
            }
            // An endpoint on port 0 (the UAPI takes it, as wireguard-go does) reaches nothing, and the
            // parser refuses it as a typo: saved, the next start would refuse the file.
            if (!peer.Endpoint.IsNone && peer.Endpoint.Port != 0)
            {
                Line(text, "Endpoint", EndpointText.FormatAsWg(peer.Endpoint));
            }
            if (peerConfig.PersistentKeepaliveSeconds != 0)
            {
                Line(text, "PersistentKeepalive", Number(peerConfig.PersistentKeepaliveSeconds));
            }
            EcnMode ecnMode = fileEcnModes.GetValueOrDefault(peerConfig.PublicKey, peerConfig.EcnMode);
            if (ecnMode != device.DefaultEcnMode)
            {
                text.Append("#! EcnMode = ").Append(UapiGetFormatter.EcnModeName(ecnMode)).Append('\n');
            }
            text.Append('\n');
        }
        // wg-quick writes showconf's output through $(...), which drops the trailing blank lines,
        // and echo, which ends it with one line end.
        while (text.Length > 1 && text[^1] == '\n' && text[^2] == '\n')
        {
            text.Length--;
        }
        return text.ToString();
    }

    private static string Number<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static void Line(StringBuilder text, string key, string value) => text.Append(key).Append(" = ").Append(value).Append('\n');
}
