using System.Net.Sockets;
using System.Text;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A UAPI client that writes raw bytes (in the chunks it is told, to see partial reads) and reads
/// whatever comes back until the reply's blank line or the server closes, within a time bound.
/// </summary>
internal static class UapiRawClient
{
    public static string Exchange(string socketPath, string request, IReadOnlyList<int>? chunks = null, bool shutdownWrite = false, int replies = 1)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.ReceiveTimeout = 5000;
        socket.SendTimeout = 5000;
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        byte[] bytes = Encoding.Latin1.GetBytes(request);
        int offset = 0;
        for (int i = 0; offset < bytes.Length; i++)
        {
            int size = chunks is { Count: > 0 } ? Math.Max(1, chunks[i % chunks.Count]) : bytes.Length;
            size = Math.Min(size, bytes.Length - offset);
            try
            {
                socket.Send(bytes, offset, size, SocketFlags.None);
            }
            catch (SocketException)
            {
                // The server may answer and close before the rest of a bad request is sent.
                break;
            }
            offset += size;
        }
        if (shutdownWrite)
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        var reply = new StringBuilder();
        var buffer = new byte[65536];
        while (CountReplies(reply) < replies)
        {
            int read;
            try
            {
                read = socket.Receive(buffer);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
            {
                reply.Append("<timeout>");
                break;
            }
            catch (SocketException)
            {
                break;
            }
            if (read == 0)
            {
                break;
            }
            reply.Append(Encoding.Latin1.GetString(buffer, 0, read));
        }
        return reply.ToString();
    }

    /// <summary>Replies end with an "errno=N" line and a blank line.</summary>
    private static int CountReplies(StringBuilder text)
    {
        string s = text.ToString();
        int count = 0;
        int at = 0;
        while ((at = s.IndexOf("errno=", at, StringComparison.Ordinal)) >= 0)
        {
            int end = s.IndexOf("\n\n", at, StringComparison.Ordinal);
            if (end < 0)
            {
                break;
            }
            count++;
            at = end + 2;
        }
        return count;
    }

    /// <summary>The errno of the first reply, or null when there was none.</summary>
    public static int? Errno(string reply)
    {
        int at = reply.IndexOf("errno=", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        int end = reply.IndexOf('\n', at);
        return end < 0 ? null : int.Parse(reply.AsSpan(at + 6, end - at - 6), System.Globalization.CultureInfo.InvariantCulture);
    }
}
