using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Service mode: a peer a UAPI request creates gets the ECN mode the configuration file names for
/// it, as the file reads then (<see cref="FileEcnModes"/>). The UAPI has no key for it and wg strips
/// the <c>#!</c> directives, so before, <c>wg setconf</c> (remove and re-create every peer) put a
/// compatibility-mode peer back to normal, and a peer a reload added ignored its own directive.
/// </summary>
public sealed class FileEcnModesTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"fzecn-{Guid.NewGuid():N}.conf");
    private readonly WireGuardKey _a = TestKeys.New();
    private readonly WireGuardKey _b = TestKeys.New();
    private readonly WireGuardKey _c = TestKeys.New();
    private readonly InMemoryTunnelControl _control = new();
    private readonly ListLogger _logger = new();

    public void Dispose() => File.Delete(_path);

    private string ConfigText(string extraPeers = "") => $"""
        [Interface]
        PrivateKey = {TestKeys.New().ToBase64()}
        #! EcnMode = compatibility

        [Peer]
        PublicKey = {_a.ToBase64()}
        AllowedIPs = 10.0.0.2/32
        #! EcnMode = off

        [Peer]
        PublicKey = {_b.ToBase64()}
        AllowedIPs = 10.0.0.3/32
        {extraPeers}
        """;

    private async Task<FileEcnModes> StartAsync()
    {
        await File.WriteAllTextAsync(_path, ConfigText());
        var config = new WgQuickConfigParser().ParseFile(_path);
        await TunnelConfigApplier.ApplyAsync(config, _control, CancellationToken.None);
        return new FileEcnModes(config, _logger);
    }

    private Task SetAsync(Func<NewPeerEcnMode> modes, params string[] lines) =>
        UapiSetApplier.ApplyAsync(UapiSetParser.Parse(lines), _control, modes, CancellationToken.None);

    private async Task<EcnMode> ModeAsync(WireGuardKey key) =>
        (await _control.GetStatusAsync(CancellationToken.None)).Peers.Single(p => p.Config.PublicKey == key).Config.EcnMode;

    [Fact]
    public async Task Wg_setconf_re_creates_every_peer_in_the_mode_the_file_gives_it()
    {
        var modes = await StartAsync();
        Assert.Equal(EcnMode.Off, await ModeAsync(_a));
        Assert.Equal(EcnMode.Compatibility, await ModeAsync(_b));

        // What `wg setconf IF <(wg-quick strip IF)` sends: replace_peers, every peer, no directives.
        await SetAsync(modes.Read, "replace_peers=true", $"public_key={_a.ToHex()}", "allowed_ip=10.0.0.2/32",
            $"public_key={_b.ToHex()}", "allowed_ip=10.0.0.3/32", $"public_key={_c.ToHex()}", "allowed_ip=10.0.0.4/32");

        Assert.Equal(EcnMode.Off, await ModeAsync(_a));
        Assert.Equal(EcnMode.Compatibility, await ModeAsync(_b));
        Assert.Equal(EcnMode.Compatibility, await ModeAsync(_c)); // not in the file: the [Interface]'s
        Assert.Empty(_logger.At(LogLevel.Warning));
    }

    [Fact]
    public async Task A_peer_a_reload_adds_gets_its_own_directive_from_the_file_as_it_reads_now()
    {
        var modes = await StartAsync();
        await File.WriteAllTextAsync(_path, ConfigText($"""

            [Peer]
            PublicKey = {_c.ToBase64()}
            AllowedIPs = 10.0.0.4/32
            #! EcnMode = off
            """));

        // What `systemctl reload` (wg syncconf) sends for the new peer.
        await SetAsync(modes.Read, $"public_key={_c.ToHex()}", "allowed_ip=10.0.0.4/32");

        Assert.Equal(EcnMode.Off, await ModeAsync(_c));
    }

    [Fact]
    public async Task A_peer_the_request_changes_but_does_not_create_keeps_its_mode_and_the_file_is_not_read()
    {
        var modes = await StartAsync();
        int reads = 0;
        NewPeerEcnMode Counted()
        {
            reads++;
            return modes.Read();
        }
        await File.WriteAllTextAsync(_path, ConfigText().Replace("#! EcnMode = off", "#! EcnMode = normal", StringComparison.Ordinal));

        await SetAsync(Counted, $"public_key={_a.ToHex()}", "persistent_keepalive_interval=25");

        Assert.Equal(EcnMode.Off, await ModeAsync(_a)); // a directive changed since the start waits for the restart
        Assert.Equal(0, reads);
        await SetAsync(Counted, $"public_key={_a.ToHex()}", "remove=true");
        await SetAsync(Counted, $"public_key={_a.ToHex()}", "allowed_ip=10.0.0.2/32", $"public_key={_c.ToHex()}", "allowed_ip=10.0.0.4/32");
        Assert.Equal(1, reads); // once a request, however many peers it creates
        Assert.Equal(EcnMode.Normal, await ModeAsync(_a)); // re-created: the file's mode now
    }

    [Fact]
    public async Task A_file_that_no_longer_reads_gives_the_modes_it_named_at_the_start_with_a_warning()
    {
        var modes = await StartAsync();
        await File.WriteAllTextAsync(_path, "[Interface]\nPrivateKey = not a key\n");

        await SetAsync(modes.Read, "replace_peers=true", $"public_key={_a.ToHex()}", $"public_key={_c.ToHex()}");

        Assert.Equal(EcnMode.Off, await ModeAsync(_a));
        Assert.Equal(EcnMode.Compatibility, await ModeAsync(_c));
        var warning = Assert.Single(_logger.At(LogLevel.Warning));
        Assert.Contains(_path + ":2:", warning, StringComparison.Ordinal);

        // The same problem again (a script's loop of `wg set`) is not another Warning.
        await SetAsync(modes.Read, $"public_key={_b.ToHex()}", "remove=true");
        await SetAsync(modes.Read, $"public_key={_b.ToHex()}");
        Assert.Single(_logger.At(LogLevel.Warning));
        Assert.Single(_logger.At(LogLevel.Debug));
    }
}
