using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Tmds.Linux;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A network namespace made for one test (unique name, so tests on this machine can run side by
/// side) and always deleted on dispose. <see cref="RunInside{T}"/> runs code on a fresh thread that
/// has joined the namespace with setns(2); a TUN device opened there stays in the namespace, and
/// its descriptor may be used from any thread afterwards.
/// </summary>
internal sealed unsafe class NetworkNamespace : IDisposable
{
    public NetworkNamespace()
    {
        Name = "fzn" + UniqueSuffix();
        Command.Check("ip", "netns", "add", Name);
        try
        {
            Command.Check("ip", "-n", Name, "link", "set", "lo", "up");
        }
        catch
        {
            Command.Run("ip", "netns", "del", Name);
            throw;
        }
    }

    public string Name { get; }

    /// <summary>Six hex digits: interface names must stay within 15 bytes.</summary>
    public static string UniqueSuffix() => Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    public T RunInside<T>(Func<T> action)
    {
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                EnterNamespace();
                result = action();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        });
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException($"code inside namespace {Name} did not finish in 30 s");
        }
        failure?.Throw();
        return result;
    }

    /// <summary>`ip netns exec NAME ...` with a time bound.</summary>
    public (int ExitCode, string Output) Exec(TimeSpan timeout, params string[] command) =>
        Command.Run(timeout, "ip", ["netns", "exec", Name, .. command]);

    private void EnterNamespace()
    {
        string path = $"/var/run/netns/{Name}";
        int fd;
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0"))
        {
            fd = LibC.open(p, LibC.O_RDONLY | LibC.O_CLOEXEC);
        }
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {LibC.errno}");
        }
        try
        {
            // setns affects only the calling thread, which ends when the action does.
            if (LibC.setns(fd, LibC.CLONE_NEWNET) < 0)
            {
                throw new IOException($"setns {path}: errno {LibC.errno}");
            }
        }
        finally
        {
            LibC.close(fd);
        }
    }

    public void Dispose()
    {
        Command.Run("ip", "netns", "del", Name);
    }
}
