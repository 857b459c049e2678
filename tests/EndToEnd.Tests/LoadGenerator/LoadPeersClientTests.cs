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

    internal static string Key() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
}
