using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// What a UAPI set says at Information: the device settings it changed that no other line reports
/// (the private key, the fwmark). A reload (wg syncconf) sends the whole file again, so a set that
/// changes nothing is logged at Debug only; peer changes are the peers' supervisor's to log.
/// </summary>
public sealed class UapiSetLogTests : IAsyncLifetime
{
    private readonly ListLogger _log = new();
    private UapiServerFixture _server = null!;

    public Task InitializeAsync()
    {
        _server = UapiServerFixture.Start(_log);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private void Set(string body) => Assert.Equal(0, UapiRawClient.Errno(UapiRawClient.Exchange(_server.SocketPath, "set=1\n" + body + "\n")));

    private IEnumerable<string> Sets(LogLevel level) => _log.At(level).Where(m => m.StartsWith("UAPI set:", StringComparison.Ordinal));

    [Fact]
    public void A_set_that_changes_the_key_or_fwmark_says_so_at_information_and_one_that_changes_nothing_only_at_debug()
    {
        string key = TestKeys.New().ToHex(), peer = TestKeys.New().ToHex();
        Set($"private_key={key}\nlisten_port=0\npublic_key={peer}\nallowed_ip=10.0.0.1/32\n");
        Assert.Equal(["UAPI set: private key changed; 1 peer(s) in the request"], Sets(LogLevel.Information));

        // What wg syncconf of an unchanged file sends.
        Set($"private_key={key}\nreplace_peers=true\npublic_key={peer}\nreplace_allowed_ips=true\nallowed_ip=10.0.0.1/32\n");
        Set($"fwmark=0\npublic_key={peer}\npersistent_keepalive_interval=0\n");
        Assert.Single(Sets(LogLevel.Information));
        Assert.Equal(["UAPI set: no device change; 1 peer(s) in the request", "UAPI set: no device change; 1 peer(s) in the request"], Sets(LogLevel.Debug));

        Set("fwmark=7\n");
        // Turned off: as wg says it (wg set wg0 fwmark off), not "fwmark 0x0".
        Set("fwmark=0\n");
        Set($"private_key={new string('0', 64)}\n");
        Assert.Equal(
        [
            "UAPI set: private key changed; 1 peer(s) in the request",
            "UAPI set: fwmark 0x7 changed; 0 peer(s) in the request",
            "UAPI set: fwmark off changed; 0 peer(s) in the request",
            "UAPI set: private key changed; 0 peer(s) in the request",
        ], Sets(LogLevel.Information));
    }
}
