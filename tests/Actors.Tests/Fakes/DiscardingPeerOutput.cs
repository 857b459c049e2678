using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>A step's output that goes nowhere: every batch goes back to its pool.</summary>
public sealed class DiscardingPeerOutput : PeerOutput
{
    protected override void Send(SendDatagrams batch) => batch.Recycle();

    protected override void Write(WritePackets batch) => batch.Recycle();
}
