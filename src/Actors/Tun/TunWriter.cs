using Akka.Actor;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tun;

/// <summary>
/// Writes the batches of decrypted packets that PeerConnection actors produce (the socket reader
/// thread writes the ones it decrypts itself) to the TUN device and returns their buffers (the last
/// owner, STYLE.md rule 6). A TUN write does not block for long (the kernel queues or drops), so
/// it runs in the handler. A <see cref="TunDeviceException"/> fails the actor; TunnelActor escalates.
/// </summary>
public sealed class TunWriter : UntypedActor
{
    private readonly ITunDevice _tun;
    private readonly TunnelCounters _counters;
    private WritePackets? _current;

    public TunWriter(ITunDevice tun, TunnelCounters counters)
    {
        _tun = tun;
        _counters = counters;
    }

    public static Props Props(ITunDevice tun, TunnelCounters counters) => Akka.Actor.Props.Create(() => new TunWriter(tun, counters));

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case WritePackets batch:
                _current = batch;
                _tun.WriteBatch(batch.AsSpan());
                _counters.CountWritten(batch.Count);
                batch.Backlog?.ExitBacklog(batch.BacklogPackets);
                _current = null;
                batch.Recycle();
                break;
            case GetTunWriterStatus:
                Sender.Tell(new TunWriterStatus(_counters.TunPacketsWrittenCount));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop()
    {
        // A batch whose write threw is still ours.
        _current?.Recycle();
        _current = null;
    }
}

/// <summary>Ask the TunWriter for <see cref="TunWriterStatus"/>.</summary>
public sealed class GetTunWriterStatus
{
    public static readonly GetTunWriterStatus Instance = new();
    private GetTunWriterStatus() { }
}

public sealed record TunWriterStatus(long PacketsWritten);
