using Akka.Actor;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// The PeerConnection actor's output: batches go to SocketIO and the TunWriter, whose dedicated
/// threads do the system calls (STYLE.md rule 8: no blocking I/O on the shared dispatcher). Each
/// batch counts in the peer's backlog until it is sent or written (<see cref="PeerSlot.HasBacklog"/>).
/// </summary>
internal sealed class ActorPeerOutput(PeerSlot slot, IActorRef socketIO, IActorRef tunWriter, IActorRef self) : PeerOutput
{
    protected override void Send(SendDatagrams batch)
    {
        slot.EnterBacklog(batch);
        socketIO.Tell(batch, self);
    }

    protected override void Write(WritePackets batch)
    {
        slot.EnterBacklog(batch);
        tunWriter.Tell(batch, self);
    }
}
