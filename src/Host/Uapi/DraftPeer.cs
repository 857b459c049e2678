using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Uapi;

/// <summary>A peer's configuration while a request is applied to it.</summary>
internal sealed class DraftPeer
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

    /// <summary>Removed by the request (a peer it creates again with the key gets a new draft).</summary>
    public bool Dropped { get; set; }

    public void AddAllowedIp(IpPrefix prefix) => _allowedIps[prefix] = _added++;

    public bool RemoveAllowedIp(IpPrefix prefix) => _allowedIps.Remove(prefix);

    public void ClearAllowedIps() => _allowedIps.Clear();

    public PeerConfig ToConfig() =>
        Config with { AllowedIps = _allowedIps.OrderBy(entry => entry.Value).Select(entry => entry.Key).ToArray() };
}
