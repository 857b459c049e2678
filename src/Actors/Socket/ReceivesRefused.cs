namespace Firezone.Actors.Actors.Socket;

/// <summary>
/// Told by SocketIO's receive thread to SocketIO when the kernel refused reads of the socket with an
/// errno that does not mean the socket is gone (ENOMEM...: see LinuxUdpSocket.ReceiveErrors.cs), with
/// the running count and the last errno; at most once per <see cref="Interval"/>, and not again until
/// the count moves. Logged at Warning: the reads go on (after a short pause each), but a tunnel whose
/// reads keep failing passes little or nothing, and the errno says why.
/// </summary>
internal sealed record ReceivesRefused(long Reads, int LastErrno)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    public const string LogTemplate = "UDP port {ListenPort}: {Reads} receives refused by the kernel so far, the last with {Error}; the socket is read again after a short pause and the tunnel goes on (this line at most every 10 s)";
}
