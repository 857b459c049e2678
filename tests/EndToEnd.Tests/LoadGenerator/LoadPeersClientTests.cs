using System.Net;
using Firezone.Actors.Benchmarks;

namespace Firezone.Actors.EndToEnd.Tests.LoadGenerator;

/// <summary>The keys file of load-peers: one Client a line, each with its own key, tunnel address and UDP port.</summary>
public sealed class LoadPeersClientTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"load-peers-keys-{Guid.NewGuid():N}");

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void ReadAll_EachLineIsOneClientWithItsOwnKeyAddressAndPort()
    {
        var keys = Enumerable.Range(0, 3).Select(_ => Key()).ToArray();
        File.WriteAllLines(_file, [$"{keys[0]} 10.78.1.1", "", $"{keys[1]}  10.78.1.2", $"{keys[2]} 10.78.1.3", ""]);

        var clients = LoadPeersClient.ReadAll(_file, 53000);

        Assert.Equal(3, clients.Count);
        Assert.Equal(keys, clients.Select(c => c.PrivateKey.ToBase64()));
        Assert.Equal(["10.78.1.1", "10.78.1.2", "10.78.1.3"], clients.Select(c => c.TunnelAddress.ToString()));
        Assert.Equal([53000, 53001, 53002], clients.Select(c => c.ListenPort));
    }

    [Fact]
    public void ReadAll_AnErrorNamesTheFilesOwnLineNumber_BlankLinesCounted()
    {
        File.WriteAllLines(_file, ["", $"{Key()} 10.78.1.1", "", "one-field"]);

        var error = Assert.Throws<ArgumentException>(() => LoadPeersClient.ReadAll(_file, 53000));

        Assert.StartsWith($"load-peers: {_file}:4: ", error.Message);
    }

    public static TheoryData<string, string> BadLines => new()
    {
        { "not-base64! 10.78.1.2", "key" },
        { "AAAA 10.78.1.2", "key" }, // 3 bytes
        { "KEY fd78::2", "IPv4" }, // the packet's source would be written as 0.0.0.0
        { "KEY nonsense", "IPv4" },
        { "KEY 10.78.1.2 extra", "expected" },
    };

    [Theory]
    [MemberData(nameof(BadLines))]
    public void ReadAll_RefusesABadLine_NamingFileAndLine(string line, string says)
    {
        File.WriteAllLines(_file, [$"{Key()} 10.78.1.1", line.Replace("KEY", Key(), StringComparison.Ordinal)]);

        var error = Assert.Throws<ArgumentException>(() => LoadPeersClient.ReadAll(_file, 53000));

        Assert.StartsWith($"load-peers: {_file}:2: ", error.Message);
        Assert.Contains(says, error.Message);
    }

    /// <summary>Two Clients with one key are one peer to the Gateway, roaming between two ports; two with one address are one source.</summary>
    [Fact]
    public void ReadAll_RefusesTheSameKeyOrAddressTwice()
    {
        var key = Key();
        File.WriteAllLines(_file, [$"{key} 10.78.1.1", $"{key} 10.78.1.2"]);
        Assert.StartsWith($"load-peers: {_file}:2: ", Assert.Throws<ArgumentException>(() => LoadPeersClient.ReadAll(_file, 53000)).Message);

        File.WriteAllLines(_file, [$"{Key()} 10.78.1.1", $"{Key()} 10.78.1.1"]);
        Assert.StartsWith($"load-peers: {_file}:2: ", Assert.Throws<ArgumentException>(() => LoadPeersClient.ReadAll(_file, 53000)).Message);
    }

    /// <summary>No Clients would measure nothing and still exit 0 ("0 of 0 sessions").</summary>
    [Fact]
    public void ReadAll_RefusesAFileWithoutClients()
    {
        File.WriteAllLines(_file, ["", "  "]);

        var error = Assert.Throws<ArgumentException>(() => LoadPeersClient.ReadAll(_file, 53000));

        Assert.Equal($"load-peers: {_file}: no Clients (lines \"PRIVATE-KEY-BASE64 TUNNEL-ADDRESS\")", error.Message);
    }

    [Fact]
    public void ReadAll_RefusesPortsPast65535()
    {
        File.WriteAllLines(_file, [$"{Key()} 10.78.1.1", $"{Key()} 10.78.1.2"]);

        Assert.Equal(65535, LoadPeersClient.ReadAll(_file, 65534)[1].ListenPort);
        var error = Assert.Throws<ArgumentException>(() => LoadPeersClient.ReadAll(_file, 65535));
        Assert.Contains("65535", error.Message);
    }

    internal static string Key() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
}
