using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// The mailbox of a PeerConnection. Akka's default unbounded mailbox is a ConcurrentQueue whose
/// first segment holds 32 envelopes: about 1 KB per actor before any message arrives, the largest
/// single cost of an idle peer (issue 8 item 4: a Gateway configures 10,000 peers, most of them
/// idle). This queue starts empty and grows to the largest burst it has held; a peer's messages
/// are batches, so its lock is taken once per batch, not per packet.
/// </summary>
public sealed class PeerMailbox : MailboxType, IProducesMessageQueue<PeerMessageQueue>
{
    /// <summary>The mailbox id in the actor system's configuration.</summary>
    public const string Id = "firezone-peer-mailbox";

    /// <summary>Injected as a fallback (<see cref="Register"/>), so no host has to configure it.</summary>
    private static readonly Config Fallback = ConfigurationFactory.ParseString(
        Id + " { mailbox-type = \"" + typeof(PeerMailbox).FullName + ", " + typeof(PeerMailbox).Assembly.GetName().Name + "\" }");

    public PeerMailbox(Settings settings, Config config)
        : base(settings, config)
    {
    }

    /// <summary>Makes <see cref="Id"/> known to <paramref name="system"/> unless its configuration already names it.</summary>
    public static void Register(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        if (!system.Settings.Config.HasPath(Id))
        {
            system.Settings.InjectTopLevelFallback(Fallback);
        }
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new PeerMessageQueue();
}

/// <summary>An unbounded FIFO under a lock; empty until the first message (see <see cref="PeerMailbox"/>).</summary>
public sealed class PeerMessageQueue : IMessageQueue, IUnboundedMessageQueueSemantics
{
    private readonly Queue<Envelope> _queue = new();
    private int _count;

    public bool HasMessages => Volatile.Read(ref _count) > 0;

    public int Count => Volatile.Read(ref _count);

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        lock (_queue)
        {
            _queue.Enqueue(envelope);
            Volatile.Write(ref _count, _queue.Count);
        }
    }

    public bool TryDequeue(out Envelope envelope)
    {
        lock (_queue)
        {
            if (!_queue.TryDequeue(out envelope))
            {
                return false;
            }
            Volatile.Write(ref _count, _queue.Count);
            return true;
        }
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        // What a stopped peer still had goes to dead letters, where the BufferReclaimer returns its buffers.
        while (TryDequeue(out var envelope))
        {
            deadletters.Enqueue(owner, envelope);
        }
    }
}
