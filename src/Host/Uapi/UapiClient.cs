using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Uapi;

/// <summary>A minimal UAPI client: what <c>firezone-tunnel show</c> uses to ask a running daemon.</summary>
public static class UapiClient
{
    /// <summary>Sends <c>fz_get=1</c> and parses the reply; <see cref="UapiException"/> on an errno reply.</summary>
    public static async Task<DeviceStatus> GetAsync(string socketPath, CancellationToken cancellationToken)
    {
        var lines = await RequestAsync(socketPath, "fz_get=1\n\n", cancellationToken).ConfigureAwait(false);
        return UapiGetParser.Parse(lines);
    }

    /// <summary>Sends <c>fz_save=1</c>: the daemon writes its configuration file; its path.</summary>
    public static async Task<string> SaveAsync(string socketPath, CancellationToken cancellationToken)
    {
        var lines = await RequestAsync(socketPath, "fz_save=1\n\n", cancellationToken).ConfigureAwait(false);
        return lines.FirstOrDefault(l => l.StartsWith("fz_saved=", StringComparison.Ordinal))?["fz_saved=".Length..]
            ?? throw new UapiException(UapiErrno.EPROTO, "the daemon did not say where it saved");
    }

    /// <summary>Sends one request and returns the reply lines before <c>errno=</c>; throws when errno is not 0.</summary>
    public static async Task<IReadOnlyList<string>> RequestAsync(string socketPath, string request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request), cancellationToken).ConfigureAwait(false);
        var reader = new UapiLineReader(stream);
        var lines = new List<string>();
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.StartsWith("errno=", StringComparison.Ordinal))
            {
                int errno = int.Parse(line.AsSpan(6), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                if (errno != 0)
                {
                    // Our own operations (fz_save) name the reason in an fz_error line first.
                    string? reason = lines.LastOrDefault(l => l.StartsWith("fz_error=", StringComparison.Ordinal))?["fz_error=".Length..];
                    throw new UapiException(Math.Abs(errno), reason ?? $"the daemon answered errno={errno}");
                }
                return lines;
            }
            lines.Add(line);
        }
        throw new UapiException(UapiErrno.EPROTO, "the daemon closed the connection without an errno line") { NoReply = lines.Count == 0 };
    }
}
