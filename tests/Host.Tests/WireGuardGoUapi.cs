using Firezone.Actors.Host.Uapi;
using Tmds.Linux;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Debian's wireguard-go serving an interface in a network namespace of its own, to send it the same
/// raw UAPI requests as our server. Dispose stops it by PID and deletes the namespace and socket.
/// </summary>
/// <remarks>
/// The PID comes from <c>ip netns pids</c>, not from the socket's SO_PEERCRED: wireguard-go's parent
/// opens the socket and hands it to the daemon it starts, then exits, so the socket names a dead PID.
/// </remarks>
internal sealed class WireGuardGoUapi : IAsyncDisposable
{
    private readonly NetworkNamespace _namespace;
    private readonly List<int> _pids = [];

    private WireGuardGoUapi(NetworkNamespace ns, string name)
    {
        _namespace = ns;
        Name = name;
    }

    public string Name { get; }

    public string SocketPath => UapiSocketPath.For(Name);

    public static async Task<WireGuardGoUapi> StartAsync()
    {
        var go = new WireGuardGoUapi(await NetworkNamespace.CreateAsync(), "fzg" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var result = await go._namespace.ExecAsync("wireguard-go", [go.Name], timeout: TimeSpan.FromSeconds(30));
            await go.FindPidsAsync();
            Assert.True(result.ExitCode == 0, result.Stderr);
            // The parent exits once it has started the daemon, which serves the socket a little later.
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            while (!File.Exists(go.SocketPath))
            {
                await Task.Delay(20, bound.Token);
            }
            return go;
        }
        catch
        {
            await go.DisposeAsync();
            throw;
        }
    }

    private async Task FindPidsAsync()
    {
        var pids = await ProcessRunner.RunAsync("ip", ["netns", "pids", _namespace.Name], timeout: TimeSpan.FromSeconds(15));
        foreach (var line in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            _pids.Add(int.Parse(line, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (int pid in _pids)
        {
            LibC.kill(pid, LibC.SIGTERM);
        }
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        foreach (int pid in _pids)
        {
            while (LibC.kill(pid, 0) == 0 && File.Exists($"/proc/{pid}/exe") && !bound.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None);
            }
            if (LibC.kill(pid, 0) == 0 && File.Exists($"/proc/{pid}/exe"))
            {
                LibC.kill(pid, LibC.SIGKILL); // still running after the bound (an ended PID may be another process's by now)
            }
        }
        File.Delete(SocketPath);
        await _namespace.DisposeAsync();
    }
}
