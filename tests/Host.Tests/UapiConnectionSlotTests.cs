using System.Net.Sockets;
using System.Text;
using Firezone.Actors.Host.Uapi;
using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The UAPI server serves at most <see cref="UapiServer.MaxConnectionSlots"/> connections at once,
/// fewer under a low open-file limit; a client past them waits until one ends. The Warning that
/// says so names the reason: at a high limit it is the server's own bound, and raising the limit
/// (which it advised) changes nothing.
/// </summary>
public sealed class UapiConnectionSlotTests
{
    [Fact]
    public async Task Connections_past_the_servers_own_bound_wait_and_the_warning_does_not_blame_the_open_file_limit()
    {
        // The test host's limit (20,000 here, 65,536 on CI) leaves room for all of them.
        Assert.Equal(UapiServer.MaxConnectionSlots, UapiServer.ConnectionSlots(OpenFileLimit.Current(), OpenFileLimit.OpenNow()));
        var logger = new ListLogger();
        await using var fixture = UapiServerFixture.Start(logger);
        var held = new List<Socket>();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (held.Count < UapiServer.MaxConnectionSlots + 1)
            {
                var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await client.ConnectAsync(new UnixDomainSocketEndPoint(fixture.SocketPath));
                    held.Add(client);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain)
                {
                    // The listen backlog (16) is full until the accept loop takes them: again.
                    client.Dispose();
                    Assert.True(DateTime.UtcNow < deadline, $"{held.Count} connections made in time");
                    await Task.Delay(5);
                }
            }
            while (!logger.At(LogLevel.Warning).Any())
            {
                Assert.True(DateTime.UtcNow < deadline, "no Warning that the connection slots are all taken");
                await Task.Delay(20);
            }
        }
        finally
        {
            foreach (var client in held)
            {
                client.Dispose();
            }
        }
        string warning = Assert.Single(logger.At(LogLevel.Warning));
        Assert.Equal($"UAPI: {UapiServer.MaxConnectionSlots} connections open on {fixture.SocketPath}, the most it serves at once; the next client waits until one ends", warning);

        // Once they end, the next client is served.
        using var next = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await next.ConnectAsync(new UnixDomainSocketEndPoint(fixture.SocketPath));
        await next.SendAsync(Encoding.ASCII.GetBytes("get=1\n\n"));
        var reply = new byte[4096];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read = await next.ReceiveAsync(reply, SocketFlags.None, bound.Token);
        Assert.Contains("errno=0", Encoding.ASCII.GetString(reply, 0, read) + ReadRest(next, bound.Token));
    }

    private static string ReadRest(Socket socket, CancellationToken token)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (!token.IsCancellationRequested && socket.Poll(TimeSpan.FromMilliseconds(200), SelectMode.SelectRead))
        {
            int n = socket.Receive(buffer);
            if (n == 0)
            {
                break;
            }
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return text.ToString();
    }
}
