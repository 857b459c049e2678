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
        var status = await control.GetStatusAsync(cancellationToken).ConfigureAwait(false);
        var deviceChanges = new List<string>();
        if (request.PrivateKey is { } requestedKey && (requestedKey.IsZero ? status.PrivateKey is not null : status.PrivateKey != requestedKey))
        {
            deviceChanges.Add("private key");
        }

        var draft = new Dictionary<WireGuardKey, DraftPeer>();
        // Who holds each prefix, so that moving one (below) is a lookup, not a scan of every peer:
        // a scan made wg addconf of 10,000 peers quadratic.
        var owners = new Dictionary<IpPrefix, DraftPeer>();
        foreach (var peer in status.Peers)
        {
            var existing = new DraftPeer(peer.Config, existed: true);
            draft[peer.Config.PublicKey] = existing;
            foreach (var prefix in existing.AllowedIps)
            {
                owners[prefix] = existing;
            }
        }
        var removed = new HashSet<WireGuardKey>();
        if (request.ReplacePeers)
        {
            foreach (var key in draft.Keys)
            {
                removed.Add(key);
            }
            draft.Clear();
            owners.Clear();
        }

        // The device's own public key after this request: wireguard-go removes a peer that has it
        // when the private key changes (SetPrivateKey) and ignores one configured with it (a "dummy").
        var own = status.PublicKey;
        if (request.PrivateKey is { } newKey)
        {
            own = newKey.IsZero ? null : Curve25519.PublicKeyOf(newKey);
            if (own is { } ownKey && draft.Remove(ownKey, out var self))
            {
                removed.Add(ownKey);
                Disown(self, owners);
            }
        }
        foreach (var change in request.Peers)
        {
            if (own is { } ownKey && ownKey == change.PublicKey)
            {
                continue;
            }
            bool exists = draft.TryGetValue(change.PublicKey, out var peer);
            if (change.Remove)
            {
                if (exists)
                {
                    draft.Remove(change.PublicKey);
                    removed.Add(change.PublicKey);
                    Disown(peer!, owners);
                }
                continue;
            }
            if (!exists)
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
                peer = new DraftPeer(new PeerConfig { PublicKey = change.PublicKey, EcnMode = newPeerEcnMode(change.PublicKey) }, existed: false)
                {
                    Recreated = removed.Contains(change.PublicKey),
                };
                draft[change.PublicKey] = peer;
            }
            Apply(change, peer!, owners);
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
            uint now = (await control.GetStatusAsync(cancellationToken).ConfigureAwait(false)).Fwmark;
            if (now != status.Fwmark)
            {
                // Turned off as wg says it (wg set wg0 fwmark off), not "fwmark 0x0".
                deviceChanges.Add(now == 0 ? "fwmark off" : "fwmark 0x" + now.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        var remove = new List<WireGuardKey>();
        if (!request.ReplacePeers)
        {
            foreach (var key in removed)
            {
                if (!draft.TryGetValue(key, out var back) || back.Recreated)
                {
                    remove.Add(key);
                }
            }
        }
        var upsert = new List<PeerConfig>();
        var endpointNamed = new HashSet<WireGuardKey>();
        foreach (var peer in draft.Values)
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

    private static void Disown(DraftPeer peer, Dictionary<IpPrefix, DraftPeer> owners)
    {
        foreach (var prefix in peer.AllowedIps)
        {
            if (owners.TryGetValue(prefix, out var owner) && ReferenceEquals(owner, peer))
            {
                owners.Remove(prefix);
            }
        }
    }

    private static void Apply(UapiPeerChange change, DraftPeer peer, Dictionary<IpPrefix, DraftPeer> owners)
    {
        peer.Touched = true;
        if (change.PresharedKey is { } psk)
        {
            peer.Config = peer.Config with { PresharedKey = psk.IsZero ? null : psk };
        }
        if (change.Endpoint is { } endpoint)
        {
            // Named, it applies even unchanged: the peer may have roamed away from it since
            // (wg set ... endpoint, or wg syncconf of the file, sends it back there, as in wireguard-go).
            peer.Config = peer.Config with { Endpoint = endpoint };
            peer.EndpointNamed = true;
        }
        if (change.PersistentKeepaliveSeconds is { } keepalive)
        {
            peer.Config = peer.Config with { PersistentKeepaliveSeconds = keepalive };
        }
        foreach (var allowed in change.AllowedIps)
        {
            switch (allowed.Kind)
            {
                case AllowedIpChangeKind.ReplaceAll:
                    Disown(peer, owners);
                    peer.ClearAllowedIps();
                    break;
                case AllowedIpChangeKind.Remove:
                    if (peer.RemoveAllowedIp(allowed.Prefix!) && owners.TryGetValue(allowed.Prefix!, out var holder) && ReferenceEquals(holder, peer))
                    {
                        owners.Remove(allowed.Prefix!);
                    }
                    break;
                case AllowedIpChangeKind.Add:
                    // A prefix belongs to one peer (cryptokey routing, whitepaper section 2): adding
                    // it here takes it from whoever had it.
                    if (owners.TryGetValue(allowed.Prefix!, out var other) && !ReferenceEquals(other, peer)
                        && other.RemoveAllowedIp(allowed.Prefix!))
                    {
                        other.Touched = true;
                    }
                    owners[allowed.Prefix!] = peer;
                    peer.AddAllowedIp(allowed.Prefix!);
                    break;
            }
        }
    }

    /// <summary>A peer's configuration while a request is applied to it.</summary>
    private sealed class DraftPeer
    {
        /// <summary>
        /// The allowed IPs, each with when it was added: a set, so each line of a request costs the
        /// same however many the peer has (a list's Contains and Remove made 40,000 allowed_ip lines
        /// for one peer take 3 s, wireguard-go 0.02 s), kept in the order they were added: a prefix
        /// added again goes last, as wireguard-go's insert and the kernel's list_move_tail put it
        /// (`wg show allowed-ips`, `wg showconf` and a saved file list them in that order).
        /// </summary>
        private readonly Dictionary<IpPrefix, long> _allowedIps;
        private long _added;

        public DraftPeer(PeerConfig config, bool existed)
        {
            Config = config;
            Existed = existed;
            _allowedIps = new Dictionary<IpPrefix, long>(config.AllowedIps.Count);
            foreach (var prefix in config.AllowedIps)
            {
                AddAllowedIp(prefix);
            }
        }

        public PeerConfig Config { get; set; }
        public IEnumerable<IpPrefix> AllowedIps => _allowedIps.Keys;
        public bool Existed { get; }
        public bool Touched { get; set; }
        public bool Recreated { get; init; }
        public bool EndpointNamed { get; set; }

        public void AddAllowedIp(IpPrefix prefix) => _allowedIps[prefix] = _added++;

        public bool RemoveAllowedIp(IpPrefix prefix) => _allowedIps.Remove(prefix);

        public void ClearAllowedIps() => _allowedIps.Clear();

        public PeerConfig ToConfig() =>
            Config with { AllowedIps = _allowedIps.OrderBy(entry => entry.Value).Select(entry => entry.Key).ToArray() };
    }
}
