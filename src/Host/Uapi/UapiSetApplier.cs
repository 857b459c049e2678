using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Carries out a parsed <c>set=1</c> request against <see cref="ITunnelControl"/>. The request is
/// first applied to a copy of the current peer configurations (the incremental UAPI operations:
/// replace_peers, remove, update_only, replace_allowed_ips, allowed_ip=-...), then the result is sent
/// as whole-peer updates, so a request that fails to parse changes nothing and the actors only ever
/// see complete peer configurations.
/// </summary>
public static class UapiSetApplier
{
    public static Task<IReadOnlyList<string>> ApplyAsync(UapiSetRequest request, ITunnelControl control, CancellationToken cancellationToken) =>
        ApplyAsync(request, control, Normal, cancellationToken);

    /// <summary>Outside service mode: every peer a request creates runs in normal mode.</summary>
    public static NewPeerEcnMode Normal() => static _ => EcnMode.Normal;

    /// <param name="newPeerEcnModes">
    /// The ECN modes of the peers the request creates, which the UAPI has no key for (service mode:
    /// the file's, <see cref="Config.FileEcnModes"/>); asked once, and only when the request creates one.
    /// </param>
    /// <returns>
    /// The device settings the request changed that no other line reports ("private key",
    /// "fwmark 0x7"): a new listen port and peer changes are logged where they are applied, and a
    /// reload (wg syncconf) sends every setting again unchanged.
    /// </returns>
    public static Task<IReadOnlyList<string>> ApplyAsync(UapiSetRequest request, ITunnelControl control, Func<NewPeerEcnMode> newPeerEcnModes, CancellationToken cancellationToken) =>
        ApplyAsync(request, control, newPeerEcnModes, Control.DeviceLimits.MaxPeers, cancellationToken);

    /// <summary>As above, with at most <paramref name="maxPeers"/> peers (tests use a small bound); a request past it is refused with EINVAL, as wireguard-go's NewPeer ("too many peers").</summary>
    internal static async Task<IReadOnlyList<string>> ApplyAsync(UapiSetRequest request, ITunnelControl control, Func<NewPeerEcnMode> newPeerEcnModes, int maxPeers,
        CancellationToken cancellationToken)
    {
        NewPeerEcnMode? newPeerEcnMode = null;
        var status = await control.GetConfigurationAsync(cancellationToken).ConfigureAwait(false);
        var deviceChanges = new List<string>();
        if (request.PrivateKey is { } requestedKey && (requestedKey.IsZero ? status.PrivateKey is not null : status.PrivateKey != requestedKey))
        {
            deviceChanges.Add("private key");
        }

        var draft = new UapiSetDraft(status.Peers);
        if (request.ReplacePeers)
        {
            draft.RemoveAll();
        }

        // The device's own public key after this request: wireguard-go removes a peer that has it
        // when the private key changes (SetPrivateKey) and ignores one configured with it (a "dummy").
        var own = status.PublicKey;
        if (request.PrivateKey is { } newKey)
        {
            own = newKey.IsZero ? null : Curve25519.PublicKeyOf(newKey);
            if (own is { } ownKey && draft.Find(ownKey) is { } self)
            {
                draft.Remove(self);
            }
        }
        foreach (var change in request.Peers)
        {
            if (own is { } ownKey && ownKey == change.PublicKey)
            {
                continue;
            }
            var peer = draft.Find(change.PublicKey);
            if (change.Remove)
            {
                if (peer is not null)
                {
                    draft.Remove(peer);
                }
                continue;
            }
            if (peer is null)
            {
                if (change.UpdateOnly)
                {
                    continue;
                }
                if (draft.Count >= maxPeers)
                {
                    throw new UapiException(UapiErrno.EINVAL, $"failed to create new peer: too many peers (at most {maxPeers})");
                }
                // A peer removed earlier in this request comes back fresh (no session), as in wireguard-go.
                newPeerEcnMode ??= newPeerEcnModes();
                peer = draft.Create(new PeerConfig { PublicKey = change.PublicKey, EcnMode = newPeerEcnMode(change.PublicKey) });
            }
            draft.Apply(change, peer);
        }

        // Port before key (both are device settings, order-free in the protocol): a tunnel that starts
        // when it gets its key then starts once, on the requested port (wg setconf sends both).
        if (request.ListenPort is { } port)
        {
            await control.SetListenPortAsync(port, cancellationToken).ConfigureAwait(false);
        }
        if (request.PrivateKey is { } privateKey)
        {
            await control.SetPrivateKeyAsync(privateKey.IsZero ? null : privateKey, cancellationToken).ConfigureAwait(false);
        }
        if (request.Fwmark is { } fwmark)
        {
            await control.SetFwmarkAsync(fwmark, cancellationToken).ConfigureAwait(false);
            // What the tunnel kept: it may keep a mark its policy rules need (0 then changes nothing).
            uint now = (await control.GetConfigurationAsync(cancellationToken).ConfigureAwait(false)).Fwmark;
            if (now != status.Fwmark)
            {
                // Turned off as wg says it (wg set wg0 fwmark off), not "fwmark 0x0".
                deviceChanges.Add(now == 0 ? "fwmark off" : "fwmark 0x" + now.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        var remove = new List<WireGuardKey>();
        if (!request.ReplacePeers)
        {
            foreach (var key in draft.Removed)
            {
                if (draft.Find(key) is not { Recreated: false })
                {
                    remove.Add(key);
                }
            }
        }
        var upsert = new List<PeerConfig>();
        var endpointNamed = new HashSet<WireGuardKey>();
        foreach (var peer in draft.Peers)
        {
            if (peer.Touched || (request.ReplacePeers && !peer.Existed))
            {
                upsert.Add(peer.ToConfig());
            }
            if (peer.EndpointNamed)
            {
                endpointNamed.Add(peer.Config.PublicKey);
            }
        }
        if (request.ReplacePeers || remove.Count > 0 || upsert.Count > 0)
        {
            // One call for the whole transaction: the actors apply it as one message.
            await control.ApplyPeerChangesAsync(request.ReplacePeers, remove, upsert, endpointNamed, cancellationToken).ConfigureAwait(false);
        }
        return deviceChanges;
    }
}
