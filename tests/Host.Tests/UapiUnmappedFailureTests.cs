using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Logging.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A set whose tunnel rebuild throws something other than TunnelControlException (a StartupException
/// from reopening the TUN device while another process held the name, as a concurrency review
/// showed): the client gets an errno (EIO), and the server still stops cleanly. Before, the
/// connection closed unanswered (wg: "Protocol error") and the faulted connection made the
/// server's stop throw, leaving its socket file behind and the daemon exiting 1 with a stack trace.
/// </summary>
public sealed class UapiUnmappedFailureTests
{
    private sealed class RebuildFails : ITunnelControl
    {
        private readonly InMemoryTunnelControl _inner = new();
        public Task<DeviceStatus> GetStatusAsync(CancellationToken c) => _inner.GetStatusAsync(c);
        public Task SetPrivateKeyAsync(WireGuardKey? k, CancellationToken c) =>
            throw new StartupException("TUN device name x is already in use (another process has it open)");
        public Task SetListenPortAsync(ushort p, CancellationToken c) => _inner.SetListenPortAsync(p, c);
        public Task SetFwmarkAsync(uint f, CancellationToken c) => _inner.SetFwmarkAsync(f, c);
        public Task AddOrUpdatePeerAsync(PeerConfig p, CancellationToken c) => _inner.AddOrUpdatePeerAsync(p, c);
        public Task RemovePeerAsync(WireGuardKey k, CancellationToken c) => _inner.RemovePeerAsync(k, c);
        public Task RemoveAllPeersAsync(CancellationToken c) => _inner.RemoveAllPeersAsync(c);
    }

    [Fact]
    public async Task A_failed_rebuild_is_answered_with_an_errno_and_the_server_still_stops_cleanly()
    {
        string name = UapiServerFixture.UniqueName();
        var server = UapiServer.Start(UapiSocketPath.For(name), new RebuildFails(), NullLogger.Instance);
        try
        {
            string reply = UapiRawClient.Exchange(server.SocketPath, "set=1\nprivate_key=" + new string('1', 64) + "\n\n");
            var stop = await Record.ExceptionAsync(async () => await server.DisposeAsync());
            Assert.Null(stop); // was: the StartupException again (AcceptLoopAsync awaits the faulted connection)
            Assert.False(File.Exists(server.SocketPath)); // was: left behind
            Assert.Equal(-5, UapiRawClient.Errno(reply)); // EIO; was: none (closed unanswered)
        }
        finally
        {
            File.Delete(server.SocketPath);
        }
    }
}
