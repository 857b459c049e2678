using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// The peers as a <c>set=1</c> request leaves them, over the configuration it started from. A peer
/// gets a draft only when the request names it or takes a prefix from it, so a one-peer `wg set` on
/// a daemon with 10,000 peers costs what one peer costs: drafting every peer (each with a set of its
/// allowed IPs) took 6 to 9 ms of such a set (2026-11-29). Who holds a prefix is looked up in the
/// starting configuration (an index built at the first lookup) unless the request moved it.
/// </summary>
internal sealed class UapiSetDraft
{
    private readonly Dictionary<WireGuardKey, PeerConfig> _baseline;
    private readonly Dictionary<WireGuardKey, DraftPeer> _drafts = new();
    // The drafts in the order they were made, the removed ones flagged: a Dictionary puts an entry
    // into the place a removed one freed, so a peer created after a removal came before the peers
    // created earlier in the request (the upserts' order is the order new peers are listed in).
    private readonly List<DraftPeer> _order = [];
    // A prefix's holder as this request left it (null: nobody), over _baselineOwners.
    private readonly Dictionary<IpPrefix, DraftPeer?> _owners = new();
    private Dictionary<IpPrefix, WireGuardKey>? _baselineOwners;
    private bool _baselineGone;

    public UapiSetDraft(IReadOnlyList<PeerConfig> peers)
    {
        _baseline = new Dictionary<WireGuardKey, PeerConfig>(peers.Count);
        foreach (var config in peers)
        {
            _baseline[config.PublicKey] = config;
        }
        Count = peers.Count;
    }

    /// <summary>The peers this request created or changed, and those it looked at, in that order.</summary>
    public IEnumerable<DraftPeer> Peers => _order.Where(static peer => !peer.Dropped);

    /// <summary>Keys removed by this request (also those it created again afterwards).</summary>
    public HashSet<WireGuardKey> Removed { get; } = [];

    /// <summary>How many peers there are as the request stands.</summary>
    public int Count { get; private set; }

    /// <summary>replace_peers=true: every peer the request started with is removed.</summary>
    public void RemoveAll()
    {
        foreach (var key in _baseline.Keys)
        {
            Removed.Add(key);
        }
        foreach (var key in _drafts.Keys)
        {
            Removed.Add(key);
        }
        _drafts.Clear();
        _order.Clear();
        _owners.Clear();
        _baselineGone = true;
        Count = 0;
    }

    /// <summary>The peer with <paramref name="key"/> as the request stands, drafted on first use; null when there is none.</summary>
    public DraftPeer? Find(WireGuardKey key)
    {
        if (_drafts.TryGetValue(key, out var draft))
        {
            return draft;
        }
        if (_baselineGone || Removed.Contains(key) || !_baseline.TryGetValue(key, out var config))
        {
            return null;
        }
        draft = new DraftPeer(config, existed: true);
        _drafts[key] = draft;
        _order.Add(draft);
        return draft;
    }

    public DraftPeer Create(PeerConfig config)
    {
        var draft = new DraftPeer(config, existed: false) { Recreated = Removed.Contains(config.PublicKey) };
        _drafts[config.PublicKey] = draft;
        _order.Add(draft);
        Count++;
        return draft;
    }

    public void Remove(DraftPeer peer)
    {
        Disown(peer);
        var key = peer.Config.PublicKey;
        _drafts.Remove(key);
        peer.Dropped = true;
        Removed.Add(key);
        Count--;
    }

    /// <summary>Applies one peer's lines of the request to <paramref name="peer"/>.</summary>
    public void Apply(UapiPeerChange change, DraftPeer peer)
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
                    Disown(peer);
                    peer.ClearAllowedIps();
                    break;
                case AllowedIpChangeKind.Remove:
                    if (ReferenceEquals(OwnerOf(allowed.Prefix!), peer))
                    {
                        _owners[allowed.Prefix!] = null;
                    }
                    peer.RemoveAllowedIp(allowed.Prefix!);
                    break;
                case AllowedIpChangeKind.Add:
                    // A prefix belongs to one peer (cryptokey routing, whitepaper section 2): adding
                    // it here takes it from whoever had it.
                    if (OwnerOf(allowed.Prefix!) is { } other && !ReferenceEquals(other, peer) && other.RemoveAllowedIp(allowed.Prefix!))
                    {
                        other.Touched = true;
                    }
                    _owners[allowed.Prefix!] = peer;
                    peer.AddAllowedIp(allowed.Prefix!);
                    break;
            }
        }
    }

    private void Disown(DraftPeer peer)
    {
        foreach (var prefix in peer.AllowedIps)
        {
            if (ReferenceEquals(OwnerOf(prefix), peer))
            {
                _owners[prefix] = null;
            }
        }
    }

    private DraftPeer? OwnerOf(IpPrefix prefix)
    {
        if (_owners.TryGetValue(prefix, out var owner))
        {
            return owner;
        }
        if (_baselineGone)
        {
            return null;
        }
        if (_baselineOwners is null)
        {
            _baselineOwners = new Dictionary<IpPrefix, WireGuardKey>();
            foreach (var config in _baseline.Values)
            {
                foreach (var held in config.AllowedIps)
                {
                    _baselineOwners[held] = config.PublicKey;
                }
            }
        }
        return _baselineOwners.TryGetValue(prefix, out var key) ? Find(key) : null;
    }
}
