namespace Firezone.Actors.Host.Tests;

/// <summary>A network namespace with a unique name, deleted on dispose (also when the test failed).</summary>
internal sealed class NetworkNamespace : IAsyncDisposable
{
    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    public static async Task<NetworkNamespace> CreateAsync()
    {
        var ns = new NetworkNamespace("fzt-ns-" + Guid.NewGuid().ToString("N")[..8]);
        var result = await ProcessRunner.RunAsync("ip", ["netns", "add", ns.Name], timeout: TimeSpan.FromSeconds(15));
        Assert.True(result.ExitCode == 0, result.Stderr);
        await ProcessRunner.RunAsync("ip", ["-n", ns.Name, "link", "set", "lo", "up"], timeout: TimeSpan.FromSeconds(15));
        return ns;
    }

    public Task<ProcessRunner.Result> ExecAsync(string file, IEnumerable<string> arguments, IDictionary<string, string>? environment = null, TimeSpan? timeout = null, string? stdin = null) =>
        ProcessRunner.RunAsync("ip", ["netns", "exec", Name, file, .. arguments], stdin: stdin, environment: environment, timeout: timeout);

    public async Task<bool> HasLinkAsync(string name) =>
        (await ProcessRunner.RunAsync("ip", ["-n", Name, "link", "show", name], timeout: TimeSpan.FromSeconds(15))).ExitCode == 0;

    public async ValueTask DisposeAsync() =>
        await ProcessRunner.RunAsync("ip", ["netns", "delete", Name], timeout: TimeSpan.FromSeconds(15));
}
