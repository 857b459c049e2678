using Firezone.Actors.Benchmarks;

namespace Firezone.Actors.EndToEnd.Tests.LoadGenerator;

/// <summary>
/// The command line of load-peers: a value it cannot use as given is refused with a message naming
/// the option, before any socket is opened; none is silently changed into another (an IPv6 address
/// into 0.0.0.0, port 70000 into 4464, a misspelt option into its default).
/// </summary>
public sealed class LoadPeersOptionsTests
{
    private static readonly string GatewayKey = LoadPeersClientTests.Key();

    private static string[] Arguments(params string[] overrides)
    {
        var values = new Dictionary<string, string>
        {
            ["--endpoint"] = "10.78.0.2:51841", ["--gateway-key"] = GatewayKey, ["--keys"] = "/nonexistent/keys",
            ["--base-port"] = "53000", ["--destination"] = "10.78.0.1",
        };
        for (int i = 0; i < overrides.Length; i += 2)
        {
            values[overrides[i]] = overrides[i + 1];
        }
        return ["load-peers", .. values.SelectMany(kv => new[] { kv.Key, kv.Value })];
    }

    [Fact]
    public void Parse_TakesWhatPeersPyPasses()
    {
        var options = LoadPeersOptions.Parse(Arguments("--port", "9", "--seconds", "2.5", "--mtu", "1420", "--burst", "16", "--handshake-seconds", "3"));

        Assert.Equal("10.78.0.2:51841", options.Endpoint.ToString());
        Assert.Equal(GatewayKey, options.GatewayKey);
        Assert.Equal("/nonexistent/keys", options.KeysFile);
        Assert.Equal(53000, options.BasePort);
        Assert.Equal("10.78.0.1", options.Destination.ToString());
        Assert.Equal((9, 2.5, 1420, 16, 3.0), (options.Port, options.Seconds, options.Mtu, options.Burst, options.HandshakeSeconds));
    }

    [Fact]
    public void Parse_DefaultsAreTheDocumentedOnes()
    {
        var options = LoadPeersOptions.Parse(Arguments());

        Assert.Equal((9, 10.0, 1420, 32, 20.0), (options.Port, options.Seconds, options.Mtu, options.Burst, options.HandshakeSeconds));
    }

    [Theory]
    [InlineData("--endpoint", "nonsense", "--endpoint")]
    [InlineData("--endpoint", "10.78.0.2", "--endpoint")] // no port: it would send to port 0
    [InlineData("--endpoint", "[fd78::2]:51841", "--endpoint")] // its sockets are IPv4: every send would fail
    [InlineData("--gateway-key", "not base64!", "--gateway-key")]
    [InlineData("--gateway-key", "AAAA", "--gateway-key")] // 3 bytes, not 32
    [InlineData("--base-port", "x", "--base-port")]
    [InlineData("--base-port", "0", "--base-port")]
    [InlineData("--base-port", "65536", "--base-port")]
    [InlineData("--destination", "fd78::1", "--destination")] // its packets are IPv4: 0.0.0.0 would be written
    [InlineData("--destination", "nonsense", "--destination")]
    [InlineData("--port", "70000", "--port")] // would wrap to 4464
    [InlineData("--port", "-1", "--port")]
    [InlineData("--seconds", "0", "--seconds")]
    [InlineData("--seconds", "-1", "--seconds")]
    [InlineData("--seconds", "NaN", "--seconds")]
    [InlineData("--seconds", "ten", "--seconds")]
    [InlineData("--handshake-seconds", "0", "--handshake-seconds")]
    [InlineData("--mtu", "27", "--mtu")] // shorter than the IPv4 and UDP headers
    [InlineData("--mtu", "1985", "--mtu")] // more than one packet buffer holds after the transport header
    [InlineData("--mtu", "1e3", "--mtu")]
    [InlineData("--burst", "0", "--burst")]
    [InlineData("--burst", "1025", "--burst")] // more than one sendmmsg takes (UIO_MAXIOV)
    [InlineData("--second", "5", "--second")] // misspelt: would run the default 10 s
    public void Parse_RefusesAValueItCannotUse_NamingTheOption(string option, string value, string named)
    {
        var error = Assert.Throws<ArgumentException>(() => LoadPeersOptions.Parse(Arguments(option, value)));

        Assert.StartsWith("load-peers: ", error.Message);
        Assert.Contains(named, error.Message);
    }

    [Theory]
    [InlineData("--endpoint")]
    [InlineData("--gateway-key")]
    [InlineData("--keys")]
    [InlineData("--base-port")]
    [InlineData("--destination")]
    public void Parse_RefusesAMissingRequiredOption(string option)
    {
        var args = Arguments().ToList();
        int at = args.IndexOf(option);
        args.RemoveRange(at, 2);

        var error = Assert.Throws<ArgumentException>(() => LoadPeersOptions.Parse([.. args]));

        Assert.Equal($"load-peers: {option} is required", error.Message);
    }

    [Fact]
    public void Parse_RefusesAnOptionWithoutValue()
    {
        var error = Assert.Throws<ArgumentException>(() => LoadPeersOptions.Parse([.. Arguments(), "--mtu"]));

        Assert.Contains("--mtu", error.Message);
    }
}
