using Tmds.Linux;

namespace Firezone.Actors.Native.Tests;

/// <summary>Runs alone, after the parallel collections: its tests lower the process's descriptor limit.</summary>
[CollectionDefinition(nameof(DescriptorLimitCollection), DisableParallelization = true)]
public sealed class DescriptorLimitCollection;

/// <summary>
/// A constructor that fails part-way closes what it opened: the socket's and the TUN device's second
/// eventfd failing (EMFILE) left the first open until a GC finalized it (found by a review of the
/// native layer, 2026-11-27). The tests fill the descriptor table under a lowered RLIMIT_NOFILE,
/// so they run alone (<see cref="DescriptorLimitCollection"/>).
/// </summary>
[Collection(nameof(DescriptorLimitCollection))]
public sealed class ConstructorFailureTests
{
    /// <summary>
    /// The constructor's catch disposes only the socket: when the second eventfd (_kick) cannot be
    /// made (EMFILE), the first (_wake) stays open until a GC finalizes it. The same pattern is in
    /// LinuxTunDevice's constructor. The failure is the documented UdpSocketException (it was a plain
    /// IOException, which the host's callers do not catch: `wg set listen-port` under EMFILE).
    /// </summary>
    [Fact]
    public void A_udp_socket_constructor_that_fails_at_its_second_eventfd_closes_the_first() =>
        Assert.IsType<UdpSocketException>(AConstructorThatFailsAtItsSecondEventFdClosesTheFirst(() => new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = 0 }).Dispose()));

    /// <summary>The same in LinuxTunDevice's constructor (LinuxTunDevice.cs:94-100): _wake stays open when _kick fails.</summary>
    [Fact]
    public void A_tun_device_constructor_that_fails_at_its_second_eventfd_closes_the_first()
    {
        using var ns = new NetworkNamespace();
        var failure = AConstructorThatFailsAtItsSecondEventFdClosesTheFirst(() => ns.RunInside(() =>
        {
            new LinuxTunDevice(new TunDeviceOptions { Name = "fzevtun0", Offloads = false }).Dispose();
            return 0;
        }));
        Assert.IsType<TunDeviceException>(failure);
    }

    private static unsafe Exception AConstructorThatFailsAtItsSecondEventFdClosesTheFirst(Action create)
    {
        // Descriptors of earlier tests' objects that a finalizer would close during the window below
        // would leave room for the second eventfd (CI once saw the constructor succeed): close them now.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Rlimit saved;
        Assert.Equal(0, getrlimit(RlimitNofile, &saved));
        var fillers = new List<int>();
        int eventfdsBefore = CountEventFds();
        Exception? failure = null;
        try
        {
            int highest = Directory.GetFiles("/proc/self/fd").Select(f => int.Parse(Path.GetFileName(f))).Max();
            var limited = new Rlimit { Cur = (ulong)(highest + 64), Max = saved.Max };
            Assert.Equal(0, setrlimit(RlimitNofile, &limited));
            // dup of a descriptor of our own: stdin may be closed where the tests run.
            int source;
            fixed (byte* devNull = "/dev/null\0"u8)
            {
                source = LibC.open(devNull, LibC.O_RDONLY | LibC.O_CLOEXEC);
            }
            Assert.True(source >= 0, "cannot open /dev/null");
            fillers.Add(source);
            while (true)
            {
                int fd = LibC.dup(source);
                if (fd < 0)
                {
                    break;
                }
                fillers.Add(fd);
            }
            // Room for the socket and one eventfd: the second eventfd fails.
            for (int i = 0; i < 2; i++)
            {
                LibC.close(fillers[^1]);
                fillers.RemoveAt(fillers.Count - 1);
            }
            try
            {
                create();
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
        finally
        {
            foreach (int fd in fillers)
            {
                LibC.close(fd);
            }
            Assert.Equal(0, setrlimit(RlimitNofile, &saved));
        }
        Assert.NotNull(failure); // the constructor did fail (at eventfd)
        Assert.Contains("eventfd", failure!.Message);
        Assert.Equal(eventfdsBefore, CountEventFds()); // one was left open before
        return failure;
    }

    private const int RlimitNofile = 7;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Rlimit
    {
        public ulong Cur;
        public ulong Max;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern unsafe int getrlimit(int resource, Rlimit* limit);

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern unsafe int setrlimit(int resource, Rlimit* limit);

    private static int CountEventFds()
    {
        int count = 0;
        foreach (string path in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(path).LinkTarget == "anon_inode:[eventfd]")
                {
                    count++;
                }
            }
            catch (IOException)
            {
            }
        }
        return count;
    }
}
