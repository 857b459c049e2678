using Firezone.Actors.Benchmarks;
using Firezone.Actors.EndToEnd.Tests.Harness;

namespace Firezone.Actors.EndToEnd.Tests.LoadGenerator;

/// <summary>
/// load-peers as a user runs it: a mistake in its arguments or keys file is one line on stderr and
/// exit code 2 (STYLE.md "Errors for people"), never a stack trace. Every case fails before a socket
/// is opened (the keys file does not exist, or an option is refused first), so no namespace is needed.
/// </summary>
public sealed class LoadPeersUsageTests
{
    public static TheoryData<string[], string> Mistakes => new()
    {
        { [], "--endpoint is required" },
        { ["--mtu", "abc"], "--mtu" },
        { ["--endpoint", "10.78.0.2"], "--endpoint" },
        { ["--keys", "/nonexistent/load-peers-keys"], "/nonexistent/load-peers-keys" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void AMistakeIsOneLineAndExitCode2_NoStackTrace(string[] overrides, string says)
    {
        var values = overrides.Length == 0 ? new Dictionary<string, string>() : new Dictionary<string, string>
        {
            ["--endpoint"] = "127.0.0.1:9", ["--gateway-key"] = LoadPeersClientTests.Key(), ["--keys"] = "/nonexistent/load-peers-keys",
            ["--base-port"] = "53000", ["--destination"] = "10.78.0.1",
        };
        for (int i = 0; i < overrides.Length; i += 2)
        {
            values[overrides[i]] = overrides[i + 1];
        }
        string[] arguments = [typeof(LoadPeers).Assembly.Location, "load-peers", .. values.SelectMany(kv => new[] { kv.Key, kv.Value })];

        var run = ProcessRunner.Run(LoadPeersTests.Dotnet, arguments, TimeSpan.FromSeconds(30));

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.StandardOutput);
        var lines = run.StandardError.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("load-peers: ", lines[0]);
        Assert.Contains(says, lines[0]);
    }
}
