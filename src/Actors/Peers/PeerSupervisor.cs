using System.Globalization;
using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// Parent of every PeerConnection, one-for-one (STYLE.md rule 9): a peer that throws is restarted
/// with a fresh engine state (fresh handshake) while the others carry on; more than
/// <see cref="PeerSupervisorOptions.MaxFailures"/> failures within the window, or a configuration
/// the engine rejects, stops only that peer, with a log line naming its public key and the reason.
///
/// Owns the peer set: the registry (key -> PeerConnection, read by the receive threads) and the
/// device's allowed-IPs table. Also owns handshake initiations: mac1/mac2 admission (whitepaper
/// section 5.3, cookie replies under load) and routing by the initiator's decrypted static key.
/// </summary>
public sealed partial class PeerSupervisor : UntypedActor
{
    private readonly PeerConnection.Handovers _handovers;
    private readonly IWireGuardDevice _device;
    private readonly PeerRegistry _registry;
    private readonly IActorRef _socketIO;
    private readonly IActorRef _tunWriter;
    private readonly IMonotonicClock _clock;
    private readonly TunnelCounters _counters;
    private readonly PeerSupervisorOptions _options;
    // The live port (a new listen port moves the socket under the running tunnel, LinuxUdpSocket.TakeOver).
    private readonly Func<int> _listenPort;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<WireGuardKey, Entry> _peers = new();
    private readonly Dictionary<IActorRef, Entry> _byConnection = new();
    // Which peer's slot configuration holds each prefix (kept in step with the slots).
    private readonly Dictionary<IpPrefix, WireGuardKey> _prefixOwners = new();
    // Removed connections still stopping: when one terminates, a successor with the same key gets
    // its routes back (the engine peer removes its key's allowed IPs when disposed).
    private readonly Dictionary<IActorRef, WireGuardKey> _stopping = new();
    // Why supervision stopped a peer (DeviceStatus.Stopped), until it is configured or removed again.
    private readonly Dictionary<WireGuardKey, string> _stoppedWhy = new();
    private readonly Dictionary<IActorRef, InboundDatagrams> _groups = new(ReferenceEqualityComparer.Instance);
    private PeerMetrics? _metrics;
    private long _generation;
    private TimeSpan _loadWindowStart;
    private int _handshakesInWindow;
    private TimeSpan _underLoadUntil;
    private LogRateLimit _droppedInitiationLog;
    private CountedLogRateLimit _queueFullLog;
    private CountedLogRateLimit _cookieReplyLog;
    private LoadWatch _loadWatch;

    /// <summary>At most one line this often, for the whole tunnel, about initiations dropped before any peer (anyone can send them).</summary>
    private static readonly TimeSpan DroppedInitiationLogInterval = TimeSpan.FromSeconds(10);

    private sealed class Entry(PeerSlot slot, IActorRef connection)
    {
        public PeerSlot Slot { get; } = slot;
        public IActorRef Connection { get; } = connection;
        public Queue<TimeSpan> Failures { get; } = new();
    }

    public PeerSupervisor(IWireGuardDevice device, PeerRegistry registry, IActorRef socketIO, IActorRef tunWriter,
        IMonotonicClock clock, TunnelCounters counters, PeerSupervisorOptions options, Func<int> listenPort,
        PeerHandovers? handOverTo = null, PeerHandovers? takeOverFrom = null)
    {
        _handovers = new PeerConnection.Handovers(handOverTo, takeOverFrom);
        _device = device;
        _registry = registry;
        _socketIO = socketIO;
        _tunWriter = tunWriter;
        _clock = clock;
        _counters = counters;
        _options = options;
        _listenPort = listenPort;
    }

    public static Props Props(IWireGuardDevice device, PeerRegistry registry, IActorRef socketIO, IActorRef tunWriter,
        IMonotonicClock clock, TunnelCounters counters, PeerSupervisorOptions options, Func<int> listenPort,
        PeerHandovers? handOverTo = null, PeerHandovers? takeOverFrom = null) =>
        Akka.Actor.Props.Create(() => new PeerSupervisor(device, registry, socketIO, tunWriter, clock, counters, options, listenPort, handOverTo, takeOverFrom));

    protected override SupervisorStrategy SupervisorStrategy() => new PeerSupervisionStrategy(Decide);

    protected override void PreStart()
    {
        PeerMailbox.Register(Context.System);
        _metrics = new PeerMetrics(_counters);
    }

    protected override void PostStop()
    {
        _loadWatch.Check?.Cancel();
        _metrics?.Dispose();
        foreach (var pair in _groups)
        {
            pair.Value.Recycle();
        }
        _groups.Clear();
        foreach (var entry in _peers.Values)
        {
            _registry.Remove(entry.Slot.Key, entry.Slot);
            _device.RemoveAllowedIps(entry.Slot.Key);
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case InboundHandshakes batch:
                HandleInitiations(batch);
                break;
            case AddOrUpdatePeer add:
                Sender.Tell(AddOrUpdate(add.Config));
                break;
            case RemovePeer remove:
                Sender.Tell(new PeerRemoved(remove.PublicKey, Remove(remove.PublicKey)));
                break;
            case ApplyPeerChanges changes:
                Sender.Tell(Apply(changes));
                break;
            case RemoveAllPeers:
            {
                var keys = new List<WireGuardKey>(_peers.Keys);
                foreach (var key in keys)
                {
                    Remove(key);
                }
                _stoppedWhy.Clear(); // and the stopped ones, which have no entry (as ApplyPeerChanges with RemoveAll)
                Sender.Tell(new AllPeersRemoved(keys.Count));
                break;
            }
            case GetDeviceStatus:
                Sender.Tell(BuildDeviceStatus());
                break;
            case GetPeerStatus get:
                if (_peers.TryGetValue(get.PublicKey, out var peer))
                {
                    peer.Connection.Forward(get);
                }
                else
                {
                    Sender.Tell(new PeerNotFound(get.PublicKey));
                }
                break;
            case SendKeepalivesOnSessions:
                foreach (var each in _peers.Values)
                {
                    each.Connection.Tell(message);
                }
                break;
            case ConnectPeer connect:
                if (_peers.TryGetValue(connect.PublicKey, out var target))
                {
                    target.Connection.Forward(connect);
                }
                break;
            case Terminated terminated:
                OnConnectionTerminated(terminated.ActorRef);
                break;
            case LoadOverCheck:
                CheckLoadOver();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// A whole transaction: the metrics see the peer set once, and the log gets one summary line
    /// (one line per peer at Information would be 10,000 lines for one wg addconf).
    /// </summary>
    private PeerChangesApplied Apply(ApplyPeerChanges changes)
    {
        int removed = 0, created = 0, updated = 0, unchanged = 0;
        if (changes.RemoveAll)
        {
            var keys = new List<WireGuardKey>(_peers.Keys);
            foreach (var key in keys)
            {
                removed += Remove(key, publish: false) ? 1 : 0;
            }
            _stoppedWhy.Clear(); // and the stopped ones, which have no entry
        }
        else
        {
            foreach (var key in changes.Remove)
            {
                removed += Remove(key, publish: false) ? 1 : 0;
            }
        }
        foreach (var config in changes.Upsert)
        {
            var configured = AddOrUpdate(config, publish: false, changes.HandshakeAtStart?.Contains(config.PublicKey) == true,
                changes.EndpointNamed?.Contains(config.PublicKey) == true);
            if (configured.Created)
            {
                created++;
            }
            else if (configured.Unchanged)
            {
                unchanged++;
            }
            else
            {
                updated++;
            }
        }
        PublishMetricsPeers();
        if (changes.CarriedOver)
        {
            // A rebuilt tunnel's peers are the old one's, not new ones: "N added" read as a configuration change.
            _log.Info("peers carried over from the previous tunnel: {CarriedOver}; {PeerCount} configured", created + updated + unchanged, _peers.Count);
        }
        else if (created + updated + removed > 0)
        {
            _log.Info("peers changed: {Added} added, {Updated} updated, {Removed} removed, {Unchanged} unchanged; {PeerCount} configured",
                created, updated, removed, unchanged, _peers.Count);
        }
        else
        {
            // A periodic `wg syncconf` of an unchanged file: nothing for an operator to read at Information.
            _log.Debug("peers unchanged: {Unchanged} re-sent with the settings they had; {PeerCount} configured", unchanged, _peers.Count);
        }
        return new PeerChangesApplied(created, updated, removed, unchanged);
    }

    private PeerConfigured AddOrUpdate(PeerConfig config, bool publish = true, bool handshakeAtStart = false, bool endpointNamed = false)
    {
        var key = config.PublicKey;
        _stoppedWhy.Remove(key); // configured again: a new connection, a fresh start
        // This actor is the table's only writer. A prefix belongs to exactly one peer (whitepaper
        // section 2; wg moves it on `set`): strip it from every other slot's configuration too, or that
        // peer would claim it back whenever its slot config is re-applied.
        ReleaseFromOtherSlots(key, config.AllowedIps);
        if (_peers.TryGetValue(key, out var existing))
        {
            bool unchanged = SameSettings(existing.Slot.Config, config);
            // As Peer.Update decides: the engine goes to the configured endpoint when the request
            // named it or it is a new one. Until the connection has applied that, the status reports
            // the configured endpoint (PeerStatus.From), not the engine's old one.
            bool moves = !config.Endpoint.IsNone && (endpointNamed || config.Endpoint != existing.Slot.Config.Endpoint);
            Own(key, existing.Slot.Config.AllowedIps, config.AllowedIps);
            existing.Slot.Config = config;
            _device.SetAllowedIps(key, config.AllowedIps);
            if (endpointNamed)
            {
                existing.Slot.EndpointNamed();
            }
            existing.Connection.Tell(new UpdatePeerConfig(config, endpointNamed, moves ? existing.Slot.TellEndpointMove() : 0));
            return new PeerConfigured(key, Created: false, unchanged);
        }
        var slot = new PeerSlot(config);
        if (handshakeAtStart)
        {
            slot.HandshakeAtStart();
        }
        // A generation suffix: a peer removed and re-added at once must not collide with the
        // name of its predecessor, which may still be stopping.
        string name = "peer-" + key.ToHex()[..16] + "-" + (++_generation);
        var connection = Context.ActorOf(PeerConnection.Props(_device, slot, _socketIO, _tunWriter, _clock, _log, _handovers).WithMailbox(PeerMailbox.Id), name);
        slot.Connection = connection;
        Context.Watch(connection);
        var entry = new Entry(slot, connection);
        _peers.Add(key, entry);
        _byConnection.Add(connection, entry);
        Own(key, null, config.AllowedIps);
        // Registry first, then routes: a packet routed to the key must find its connection.
        _registry.Set(key, slot);
        _device.SetAllowedIps(key, config.AllowedIps);
        if (publish)
        {
            PublishMetricsPeers();
            _log.Info("peer {PublicKey} added ({AllowedIpCount} allowed IPs, endpoint {Endpoint}, ECN {EcnMode})", slot.KeyBase64, config.AllowedIps.Count, config.Endpoint, config.EcnMode);
        }
        else if (_log.IsDebugEnabled)
        {
            _log.Debug("peer {PublicKey} added ({AllowedIpCount} allowed IPs, endpoint {Endpoint}, ECN {EcnMode})", slot.KeyBase64, config.AllowedIps.Count, config.Endpoint, config.EcnMode);
        }
        return new PeerConfigured(key, Created: true);
    }

    /// <summary>
    /// The same settings: <see cref="PeerConfig"/>'s record equality for every field but the allowed
    /// IPs, which it compares by reference (a re-sent peer brings a new list), compared by content.
    /// </summary>
    private static bool SameSettings(PeerConfig old, PeerConfig config) =>
        old with { AllowedIps = config.AllowedIps } == config && old.AllowedIps.SequenceEqual(config.AllowedIps);

    /// <summary>
    /// Strips <paramref name="claimed"/> from the slots of the peers that hold them. The owner map
    /// finds those peers directly: scanning every slot made each add O(peers), and wg addconf of
    /// 10,000 peers quadratic.
    /// </summary>
    private void ReleaseFromOtherSlots(WireGuardKey key, IReadOnlyList<IpPrefix> claimed)
    {
        if (claimed.Count == 0)
        {
            return;
        }
        HashSet<WireGuardKey>? holders = null;
        foreach (var prefix in claimed)
        {
            if (_prefixOwners.TryGetValue(prefix, out var owner) && owner != key)
            {
                (holders ??= []).Add(owner);
            }
        }
        if (holders is null)
        {
            return;
        }
        var wanted = new HashSet<IpPrefix>(claimed);
        foreach (var holder in holders)
        {
            if (!_peers.TryGetValue(holder, out var entry))
            {
                continue;
            }
            var allowed = entry.Slot.Config.AllowedIps;
            var kept = new List<IpPrefix>(allowed.Count);
            foreach (var prefix in allowed)
            {
                if (!wanted.Contains(prefix))
                {
                    kept.Add(prefix);
                }
            }
            entry.Slot.Config = entry.Slot.Config with { AllowedIps = kept };
            _log.Info("peer {PublicKey}: {MovedAllowedIpCount} allowed IP(s) moved to another peer", entry.Slot.KeyBase64, allowed.Count - kept.Count);
        }
    }

    /// <summary>Records <paramref name="key"/> as the owner of its new prefixes and drops the ones it no longer has.</summary>
    private void Own(WireGuardKey key, IReadOnlyList<IpPrefix>? previous, IReadOnlyList<IpPrefix> current)
    {
        if (previous is not null)
        {
            Disown(key, previous);
        }
        foreach (var prefix in current)
        {
            _prefixOwners[prefix] = key;
        }
    }

    private void Disown(WireGuardKey key, IReadOnlyList<IpPrefix> prefixes)
    {
        foreach (var prefix in prefixes)
        {
            if (_prefixOwners.TryGetValue(prefix, out var owner) && owner == key)
            {
                _prefixOwners.Remove(prefix);
            }
        }
    }

    private bool Remove(WireGuardKey key, bool publish = true)
    {
        _stoppedWhy.Remove(key); // Forget, which also comes here, notes why after
        if (!_peers.Remove(key, out var entry))
        {
            return false;
        }
        Disown(key, entry.Slot.Config.AllowedIps);
        _byConnection.Remove(entry.Connection);
        // Routes first: the TUN reader stops choosing this peer before its connection goes away.
        _device.RemoveAllowedIps(key);
        _registry.Remove(key, entry.Slot);
        _stopping[entry.Connection] = key;
        Context.Stop(entry.Connection);
        if (publish)
        {
            PublishMetricsPeers();
            _log.Info("peer {PublicKey} removed", entry.Slot.KeyBase64);
        }
        else if (_log.IsDebugEnabled)
        {
            _log.Debug("peer {PublicKey} removed", entry.Slot.KeyBase64);
        }
        return true;
    }

    private void OnConnectionTerminated(IActorRef connection)
    {
        if (_stopping.Remove(connection, out var removedKey))
        {
            if (_peers.TryGetValue(removedKey, out var successor))
            {
                _device.SetAllowedIps(removedKey, successor.Slot.Config.AllowedIps);
            }
            return;
        }
        // A connection the strategy stopped (too many failures, or rejected configuration).
        if (!_byConnection.Remove(connection, out var entry))
        {
            return;
        }
        _peers.Remove(entry.Slot.Key);
        Disown(entry.Slot.Key, entry.Slot.Config.AllowedIps);
        _device.RemoveAllowedIps(entry.Slot.Key);
        _registry.Remove(entry.Slot.Key, entry.Slot);
        PublishMetricsPeers();
    }

    /// <summary>
    /// A peer the strategy stops leaves the table at once, as a removed one does (its connection
    /// goes to <c>_stopping</c>), not when its Terminated arrives: an add in between found the dying
    /// entry, answered "updated" and was lost with it. Now that add creates a new connection.
    /// </summary>
    private void Forget(Entry entry)
    {
        if (_peers.TryGetValue(entry.Slot.Key, out var current) && ReferenceEquals(current, entry))
        {
            Remove(entry.Slot.Key, publish: false);
            PublishMetricsPeers();
        }
    }

    /// <summary>The supervision decision, in this actor's context (see <see cref="PeerSupervisionStrategy"/>).</summary>
    private bool Decide(IActorRef child, Exception cause, bool restartable)
    {
        _byConnection.TryGetValue(child, out var entry);
        if (!restartable)
        {
            var reason = cause is ActorInitializationException { InnerException: { } inner } ? inner : cause;
            if (entry is null)
            {
                // A connection already removed (still stopping): only its actor name is left, and
                // it is not a key, so it does not go in PublicKey.
                _log.Error("peer {PeerActor} stopped: its configuration was rejected: {FaultType}: {Reason}", child.Path.Name, reason.GetType().Name, reason.Message);
            }
            else
            {
                _log.Error("peer {PublicKey} stopped: its configuration was rejected: {FaultType}: {Reason}", entry.Slot.KeyBase64, reason.GetType().Name, reason.Message);
                Forget(entry);
                _stoppedWhy[entry.Slot.Key] = $"its configuration was rejected: {reason.GetType().Name}: {reason.Message}";
            }
            return false;
        }
        if (entry is null)
        {
            return true;
        }
        var now = _clock.Now;
        var failures = entry.Failures;
        failures.Enqueue(now);
        while (failures.Count > 0 && now - failures.Peek() > _options.FailureWindow)
        {
            failures.Dequeue();
        }
        if (failures.Count > _options.MaxFailures)
        {
            _log.Error("peer {PublicKey} stopped: {FailureCount} failures within {FailureWindow}; last: {FaultType}: {Reason}",
                entry.Slot.KeyBase64, failures.Count, _options.FailureWindow, cause.GetType().Name, cause.Message);
            Forget(entry);
            _stoppedWhy[entry.Slot.Key] = string.Create(CultureInfo.InvariantCulture,
                $"{failures.Count} failures within {_options.FailureWindow.TotalSeconds} s; last: {cause.GetType().Name}: {cause.Message}");
            return false;
        }
        Interlocked.Increment(ref entry.Slot.Counters.Restarts);
        _log.Warning("peer {PublicKey} failed ({FaultType}: {Reason}); restarting it with a fresh handshake (failure {FailureCount} of at most {MaxFailures} within {FailureWindow})",
            entry.Slot.KeyBase64, cause.GetType().Name, cause.Message, failures.Count, _options.MaxFailures, _options.FailureWindow);
        return true;
    }

    private DeviceStatus BuildDeviceStatus()
    {
        var peers = new List<PeerStatus>(_peers.Count);
        foreach (var entry in _peers.Values)
        {
            peers.Add(PeerStatus.From(entry.Slot, _device.AllowedIpsOf(entry.Slot.Key)));
        }
        return new DeviceStatus(_device.PublicKey, _listenPort(), peers, DeviceDropCounts.From(_counters),
            _stoppedWhy.Count == 0 ? null : new Dictionary<WireGuardKey, string>(_stoppedWhy));
    }

    private void PublishMetricsPeers()
    {
        var slots = new PeerSlot[_peers.Count];
        int i = 0;
        foreach (var entry in _peers.Values)
        {
            slots[i++] = entry.Slot;
        }
        _metrics?.SetPeers(slots);
    }
}
