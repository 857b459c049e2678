using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// A reader thread's output: it sends and writes the results of the steps it ran itself, on its own
/// thread (the one wake-up a packet costs in each direction, see <see cref="PeerDataPath"/>).
/// The socket's SendBatch and the device's WriteBatch are safe to call from several threads.
/// A failure of either propagates to the reader thread, which reports it to its actor.
/// </summary>
internal sealed class DirectPeerOutput(IUdpBatchSocket socket, ITunDevice tun, TunnelCounters counters) : PeerOutput
{
    protected override void Send(SendDatagrams batch)
    {
        try
        {
            int sent = batch.SendOn(socket);
            counters.CountSent(sent, batch.Count - sent);
        }
        finally
        {
            batch.Recycle();
        }
    }

    protected override void Write(WritePackets batch)
    {
        try
        {
            tun.WriteBatch(batch.AsSpan());
            counters.CountWritten(batch.Count);
        }
        finally
        {
            batch.Recycle();
        }
    }
}
