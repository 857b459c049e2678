using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.Socket;

namespace Firezone.Actors.Actors.Batches;

/// <summary>
/// Returns the buffers of batches that could not be delivered: a Tell to an actor that has stopped
/// (or that stops with messages still in its mailbox) ends in dead letters, and without this those
/// buffers would leak. Subscribes to <see cref="AllDeadLetters"/> on the event stream. Sealed
/// datagrams that never reached the socket also come off their peers' transfer (SendDatagrams.Discard).
/// </summary>
public sealed class BufferReclaimer : UntypedActor
{
    private long _reclaimedBatches;

    public static Props Props() => Akka.Actor.Props.Create(() => new BufferReclaimer());

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(AllDeadLetters));

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case AllDeadLetters { Message: SendDatagrams datagrams }:
                _reclaimedBatches++;
                datagrams.Discard();
                break;
            case AllDeadLetters { Message: PacketBatch batch }:
                _reclaimedBatches++;
                batch.Recycle();
                break;
            case GetReclaimedCount:
                Sender.Tell(_reclaimedBatches);
                break;
        }
    }

    /// <summary>Ask: how many batches were reclaimed (a long).</summary>
    public sealed class GetReclaimedCount
    {
        public static readonly GetReclaimedCount Instance = new();
        private GetReclaimedCount() { }
    }
}
