using System.Net.Sockets;
using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A daemon the test did not start itself (detached by the parent, or started by wg-quick), known by
/// the PID that SO_PEERCRED reports for its UAPI socket: the credentials of the process that called
/// listen() (unix(7)). Dispose stops it the way wireguard-go's users do (remove the socket), waits a
/// bounded time, and then kills it by that PID, so a failing test leaves no daemon behind.
/// </summary>
internal sealed class DetachedDaemon : IAsyncDisposable
{
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(15);

    private DetachedDaemon(int pid, string socketPath)
    {
        Pid = pid;
        SocketPath = socketPath;
    }

    public int Pid { get; }

    public string SocketPath { get; }

    /// <summary>The daemon that listens on <paramref name="socketPath"/>.</summary>
    public static DetachedDaemon FromSocket(string socketPath)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        Span<byte> credentials = stackalloc byte[12];
        int length = socket.GetRawSocketOption(LibC.SOL_SOCKET, LibC.SO_PEERCRED, credentials);
        Assert.Equal(12, length);
        int pid = MemoryMarshal.Read<int>(credentials);
        Assert.True(pid > 0);
        return new DetachedDaemon(pid, socketPath);
    }

    /// <summary>
    /// A wireguard-go daemon serving <paramref name="socketPath"/> in <paramref name="inside"/>.
    /// wireguard-go's parent opens the socket and hands it to the daemon it starts, then exits, so
    /// SO_PEERCRED names a dead PID: then the daemon is the process of that namespace whose last
    /// argument is the interface (it runs as <c>wireguard-go IFNAME</c>).
    /// </summary>
    public static async Task<DetachedDaemon> FromWireGuardGoSocketAsync(string socketPath, NetworkNamespace inside)
    {
        var launcher = FromSocket(socketPath);
        if (launcher.IsRunning)
        {
            return launcher;
        }
        string name = Path.GetFileNameWithoutExtension(socketPath);
        var pids = await ProcessRunner.RunAsync("ip", ["netns", "pids", inside.Name], timeout: TimeSpan.FromSeconds(15));
        foreach (var line in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int pid = int.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
            try
            {
                string[] arguments = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
                if (arguments.Length > 0 && arguments[^1] == name)
                {
                    return new DetachedDaemon(pid, socketPath);
                }
            }
            catch (IOException)
            {
                // ended meanwhile
            }
        }
        return launcher;
    }

    /// <summary>True while the process runs (signal 0 checks existence; a zombie is not our child and is reaped by init).</summary>
    public bool IsRunning => LibC.kill(Pid, 0) == 0 && !IsZombie();

    private bool IsZombie()
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{Pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] == 'Z';
        }
        catch (IOException)
        {
            return true; // gone between the two checks
        }
    }

    /// <summary>Waits (bounded) for the process to end; true when it did.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        while (IsRunning)
        {
            if (cts.IsCancellationRequested)
            {
                return false;
            }
            await Task.Delay(50, CancellationToken.None);
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (!IsRunning)
        {
            return;
        }
        File.Delete(SocketPath);
        if (!await WaitForExitAsync(StopBound))
        {
            LibC.kill(Pid, LibC.SIGKILL);
            await WaitForExitAsync(StopBound);
        }
    }
}
