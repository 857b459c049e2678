using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// Makes a send or receive system call fail with a chosen errno, on one thread only: a seccomp filter
/// (SECCOMP_RET_ERRNO) installed on a thread of its own, which runs the action and ends, taking the
/// filter with it (filters belong to the thread that installs them and to threads it starts later).
/// The errnos a test wants (ENOMEM, and others the kernel gives rarely) cannot be provoked on
/// loopback at will. x86-64 and arm64.
/// </summary>
internal static unsafe partial class SyscallErrnoInjection
{
    private const int PR_SET_NO_NEW_PRIVS = 38;
    private const int PR_SET_SECCOMP = 22;
    private const int SECCOMP_MODE_FILTER = 2;
    private const uint SECCOMP_RET_ALLOW = 0x7fff0000;
    private const uint SECCOMP_RET_ERRNO = 0x00050000;

    // BPF opcodes (linux/bpf_common.h).
    private const ushort LdWAbs = 0x20; // BPF_LD | BPF_W | BPF_ABS
    private const ushort JeqK = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    private const ushort RetK = 0x06; // BPF_RET | BPF_K

    // struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
    private const uint NrOffset = 0, ArchOffset = 4, ArgsOffset = 16;

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFilter
    {
        public ushort Code;
        public byte Jt;
        public byte Jf;
        public uint K;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Length;
        public SockFilter* Filter;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    public enum Call
    {
        /// <summary>sendmmsg(2) with exactly the given vlen (its third argument); other vlens go through.</summary>
        SendMmsgOfLength,

        /// <summary>Every sendmsg(2).</summary>
        SendMsg,

        /// <summary>Every recvmmsg(2).</summary>
        RecvMmsg,

        /// <summary>Every recvmsg(2).</summary>
        RecvMsg,
    }

    /// <summary>Runs <paramref name="action"/> on a fresh thread on which <paramref name="call"/> fails with <paramref name="errno"/>.</summary>
    public static void Run(Call call, int errno, Action action, uint vlen = 0)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Install(call, errno, vlen);
                action();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        });
        thread.Start();
        thread.Join();
        failure?.Throw();
    }

    private static void Install(Call call, int errno, uint vlen)
    {
        bool arm = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        uint audit = arm ? 0xC00000B7u : 0xC000003Eu; // AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64
        uint nr = call switch
        {
            Call.SendMmsgOfLength => arm ? 269u : 307u,
            Call.SendMsg => arm ? 211u : 46u,
            Call.RecvMmsg => arm ? 243u : 299u,
            _ => arm ? 212u : 47u, // recvmsg
        };
        Span<SockFilter> program = stackalloc SockFilter[8];
        int n = 0;
        program[n++] = new SockFilter { Code = LdWAbs, K = ArchOffset };
        program[n++] = new SockFilter { Code = JeqK, K = audit, Jt = 0, Jf = call == Call.SendMmsgOfLength ? (byte)5 : (byte)3 };
        program[n++] = new SockFilter { Code = LdWAbs, K = NrOffset };
        program[n++] = new SockFilter { Code = JeqK, K = nr, Jt = 0, Jf = call == Call.SendMmsgOfLength ? (byte)3 : (byte)1 };
        if (call == Call.SendMmsgOfLength)
        {
            program[n++] = new SockFilter { Code = LdWAbs, K = ArgsOffset + 2 * 8 }; // args[2], low half (little-endian)
            program[n++] = new SockFilter { Code = JeqK, K = vlen, Jt = 0, Jf = 1 };
        }
        program[n++] = new SockFilter { Code = RetK, K = SECCOMP_RET_ERRNO | (uint)errno };
        program[n++] = new SockFilter { Code = RetK, K = SECCOMP_RET_ALLOW };
        fixed (SockFilter* filter = program)
        {
            var fprog = new SockFprog { Length = (ushort)n, Filter = filter };
            // Without CAP_SYS_ADMIN seccomp wants no_new_privs; it too is per thread.
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (nuint)(&fprog), 0, 0) < 0)
            {
                throw new InvalidOperationException($"installing the seccomp filter failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
    }
}
