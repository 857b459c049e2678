namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// The size the tunnel's UDP socket asks for its receive queue: 1 MiB (<see
/// cref="Native.UdpBatchSocketOptions.DefaultReceiveBufferBytes"/>, the kernel books twice that), or the
/// network namespace's <c>net.core.rmem_default</c> when an operator set that higher. The queue is
/// every peer's, so a small one keeps an idle peer's packets from waiting behind busy peers' bulk
/// (README "The socket's receive queue"); a host whose fast NIC needs a deeper one (to ride out a
/// longer stall of the reader) gets it with the setting it would use for any other program, as
/// Debian's wireguard-go (which sets no size) does.
/// </summary>
public static class UdpReceiveQueue
{
    private const string RmemDefaultPath = "/proc/sys/net/core/rmem_default";

    /// <summary>The bytes to ask for in this process's network namespace.</summary>
    public static int Bytes()
    {
        string? text;
        try
        {
            text = File.ReadAllText(RmemDefaultPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            text = null;
        }
        return BytesFor(text);
    }

    /// <summary>1 MiB, or <paramref name="rmemDefault"/> (the file's text) when that is a larger number.</summary>
    public static int BytesFor(string? rmemDefault)
    {
        const int least = Native.UdpBatchSocketOptions.DefaultReceiveBufferBytes;
        return int.TryParse(rmemDefault?.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int bytes) && bytes > least
            ? bytes
            : least;
    }
}
