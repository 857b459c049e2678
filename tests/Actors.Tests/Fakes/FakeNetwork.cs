using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>
/// One datagram seen on the fake wire, with the ECN codepoint it was sent with and the one delivered,
/// and the local address the sender asked to send from (none: the kernel's choice).
/// </summary>
public sealed record WireDatagram(UdpEndpoint From, UdpEndpoint To, byte[] Data, Ecn SentEcn, Ecn DeliveredEcn, bool Delivered, string? SenderThread, UdpEndpoint SentFrom = default)
{
    public MessageType Type => MessageHeader.Classify(Data, out _);
}

/// <summary>
/// Connects fake sockets by endpoint (the role of wireguard-go's bindtest). Every datagram is
/// recorded; <see cref="RewriteEcn"/> plays a congested router (for example, marking CE) and
/// <see cref="Drop"/> a lossy path.
/// </summary>
public sealed class FakeNetwork
{
    private readonly object _gate = new();
    private readonly Dictionary<UdpEndpoint, FakeUdpSocket> _sockets = new();
    private readonly List<WireDatagram> _log = [];

    /// <summary>(datagram bytes, ECN as sent) -> ECN as delivered.</summary>
    public Func<byte[], Ecn, Ecn>? RewriteEcn { get; set; }

    public Func<byte[], bool>? Drop { get; set; }

    /// <summary>
    /// Destinations the sending socket refuses, as the kernel does with ENETUNREACH when there is no
    /// route: the datagram never reaches the wire and SendBatch reports it as not sent.
    /// </summary>
    public Func<UdpEndpoint, bool>? Refuse { get; set; }

    internal bool Refuses(UdpEndpoint destination)
    {
        lock (_gate)
        {
            return Refuse?.Invoke(destination) ?? false;
        }
    }

    /// <summary>May modify a datagram's bytes in flight (an attacker or a broken path).</summary>
    public Action<byte[]>? Tamper { get; set; }

    public FakeUdpSocket CreateSocket(UdpEndpoint endpoint)
    {
        var socket = new FakeUdpSocket(this, endpoint);
        lock (_gate)
        {
            _sockets.Add(endpoint, socket);
        }
        return socket;
    }

    public IReadOnlyList<WireDatagram> Log
    {
        get
        {
            lock (_gate)
            {
                return _log.ToArray();
            }
        }
    }

    public int Count(Func<WireDatagram, bool> predicate)
    {
        lock (_gate)
        {
            int n = 0;
            foreach (var d in _log)
            {
                if (predicate(d))
                {
                    n++;
                }
            }
            return n;
        }
    }

    internal void Send(UdpEndpoint from, PacketBuffer datagram)
    {
        var data = datagram.Data.ToArray();
        var sent = datagram.Ecn;
        FakeUdpSocket? destination;
        Ecn delivered;
        bool drop;
        lock (_gate)
        {
            delivered = RewriteEcn?.Invoke(data, sent) ?? sent;
            drop = Drop?.Invoke(data) ?? false;
            Tamper?.Invoke(data);
            _sockets.TryGetValue(datagram.Endpoint, out destination);
            _log.Add(new WireDatagram(from, datagram.Endpoint, data, sent, delivered, !drop && destination is not null, Thread.CurrentThread.Name, datagram.LocalAddress));
        }
        if (!drop)
        {
            destination?.Deliver(data, from, delivered);
        }
    }
}

/// <summary>A fake UDP socket on a <see cref="FakeNetwork"/>; WaitReadable blocks until datagrams, a wake (for good) or a failure.</summary>
public sealed class FakeUdpSocket : Firezone.Actors.Native.IUdpBatchSocket
{
    private readonly FakeNetwork _network;
    private readonly object _gate = new();
    private readonly Queue<(byte[] Data, UdpEndpoint From, Ecn Ecn)> _inbound = new();
    private readonly Queue<(byte[] Data, UdpEndpoint From, Ecn Ecn)> _quiet = new(); // arrived with WakeOnArrival off
    private bool _woken;
    private Exception? _failure;

    internal FakeUdpSocket(FakeNetwork network, UdpEndpoint endpoint)
    {
        _network = network;
        Endpoint = endpoint;
    }

    public UdpEndpoint Endpoint { get; }

    public int LocalPort => Endpoint.Port;

    public bool Disposed { get; private set; }

    /// <summary>False: a datagram that arrives is not seen by <see cref="WaitReadable"/> and wakes no one; only <see cref="TryReceiveBatch"/> (a thread that polls) finds it.</summary>
    public bool WakeOnArrival { get; set; } = true;

    /// <summary>Set: every <see cref="SendBatch"/> waits until it is (a socket whose buffer stays full; the test releases it).</summary>
    public ManualResetEventSlim? SendGate { get; set; }

    public void Fail(Exception error)
    {
        lock (_gate)
        {
            _failure = error;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Delivers a datagram as if it arrived from <paramref name="from"/>.</summary>
    public void Deliver(byte[] data, UdpEndpoint from, Ecn ecn)
    {
        lock (_gate)
        {
            if (WakeOnArrival)
            {
                _inbound.Enqueue((data, from, ecn));
                Monitor.PulseAll(_gate);
            }
            else
            {
                _quiet.Enqueue((data, from, ecn));
            }
        }
    }

    public bool HasPendingDatagrams => false;

    /// <summary>As a real socket would count datagrams too large for any buffer (set by a test).</summary>
    public long ReceiveTruncated { get; set; }

    public long SourcesDropped { get; set; }

    /// <summary>As a real socket would count reads whose control data the kernel cut (set by a test).</summary>
    public long ReceiveControlTruncated { get; set; }

    /// <summary>As a real socket would count reads the kernel refused with an errno that leaves it usable (set by a test).</summary>
    public long ReceiveErrors { get; set; }

    public int LastReceiveErrno { get; set; }

    public bool WaitReadable(int timeoutMs)
    {
        lock (_gate)
        {
            if (!MonitorWait.While(_gate, () => _inbound.Count == 0 && !_woken && _failure is null, timeoutMs))
            {
                return false;
            }
            if (_failure is not null)
            {
                throw _failure;
            }
            return !_woken;
        }
    }

    public int TryReceiveBatch(Span<PacketBuffer> buffers)
    {
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw _failure;
            }
            int n = 0;
            while (n < buffers.Length && (_quiet.TryDequeue(out var datagram) || _inbound.TryDequeue(out datagram)))
            {
                var buffer = buffers[n++];
                datagram.Data.CopyTo(buffer.Writable);
                buffer.Length = datagram.Data.Length;
                buffer.Endpoint = datagram.From;
                buffer.LocalAddress = Endpoint; // the address it arrived at, as IP_PKTINFO reports it
                buffer.Ecn = datagram.Ecn;
            }
            return n;
        }
    }

    public int SendBatch(ReadOnlySpan<PacketBuffer> datagrams, Span<int> unsent)
    {
        SendGate?.Wait();
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw _failure;
            }
        }
        int sent = 0;
        for (int i = 0; i < datagrams.Length; i++)
        {
            if (_network.Refuses(datagrams[i].Endpoint))
            {
                if (!unsent.IsEmpty)
                {
                    unsent[i] = 101; // ENETUNREACH
                }
                continue;
            }
            _network.Send(Endpoint, datagrams[i]);
            sent++;
        }
        return sent;
    }

    public void KickReceiver()
    {
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }
    }

    public void WakeReceiver()
    {
        lock (_gate)
        {
            _woken = true;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>As the host's RearmAfterStop: a stopped tunnel's wake is cleared for the tunnel rebuilt on this device.</summary>
    public void RearmAfterStop()
    {
        lock (_gate)
        {
            _woken = false;
        }
    }

    public void Dispose() => Disposed = true;
}
