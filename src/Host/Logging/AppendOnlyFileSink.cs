using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Firezone.Actors.Native;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;
using Tmds.Linux;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// The log file, opened with O_APPEND and written with one write(2) per event. The kernel puts
/// every such write at the file's end as it is at that moment, so a truncation (`truncate -s 0`,
/// logrotate's copytruncate) makes the next line start at offset 0 instead of after a run of NUL
/// bytes, and another writer's lines (a second daemon started by mistake, an echo) end up between
/// whole lines instead of being overwritten. Serilog's file sink does neither, shared or not: it
/// opens without O_APPEND and writes with pwrite at an offset it computed before (strace shows
/// <c>openat(..., O_WRONLY|O_CREAT|O_CLOEXEC)</c> then <c>pwrite64(fd, ..., offset)</c>), and its
/// cross-process mutex lives in a per-session, per-/tmp directory that a setsid()'d daemon or a
/// PrivateTmp= unit does not share. A written line is in the page cache at once, so a reader
/// (jq, tail -f) sees it and a crash of the daemon loses none.
/// </summary>
internal sealed unsafe class AppendOnlyFileSink : ILogEventSink, IDisposable
{
    /// <summary>
    /// 0640 (less the umask): the log names peers' public keys and endpoints, which `wg show` shows
    /// only to root, so not every local user reads them (syslog files are 0640 too). A file that
    /// exists keeps its mode.
    /// </summary>
    private const int CreateMode = 0x1a0;

    private readonly SafeFileDescriptorHandle _file;
    private readonly ITextFormatter _formatter;
    private readonly StringWriter _text = new(CultureInfo.InvariantCulture);
    private readonly Lock _gate = new();
    private byte[] _bytes = new byte[4096];
    private bool _disposed;

    private AppendOnlyFileSink(string path, SafeFileDescriptorHandle file, ITextFormatter formatter)
    {
        Path = path;
        _file = file;
        _formatter = formatter;
    }

    public string Path { get; }

    /// <summary>Opens (creates) <paramref name="path"/> for appending.</summary>
    /// <exception cref="IOException">One line naming the file and the reason (EACCES, ENOENT, ...).</exception>
    public static AppendOnlyFileSink Open(string path, ITextFormatter formatter)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* p = name)
        {
            do
            {
                fd = LibC.open(p, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_APPEND | LibC.O_CLOEXEC, CreateMode);
            }
            while (fd < 0 && LibC.errno == LibC.EINTR);
        }
        if (fd < 0)
        {
            throw new IOException($"{path}: cannot open the log file: {Marshal.GetPInvokeErrorMessage(LibC.errno)}");
        }
        return new AppendOnlyFileSink(path, new SafeFileDescriptorHandle(fd), formatter);
    }

    public void Emit(LogEvent logEvent)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            var text = _text.GetStringBuilder();
            text.Clear();
            _formatter.Format(logEvent, _text);
            string line = text.ToString();
            int length = Encoding.UTF8.GetByteCount(line);
            if (length > _bytes.Length)
            {
                _bytes = new byte[Math.Max(length, _bytes.Length * 2)];
            }
            Encoding.UTF8.GetBytes(line, _bytes);
            WriteAll(length);
        }
    }

    /// <summary>
    /// One write(2) for the whole event, so it lands in one piece; a short write (a full disk)
    /// continues with the rest, still appended.
    /// </summary>
    private void WriteAll(int length)
    {
        bool added = false;
        try
        {
            _file.DangerousAddRef(ref added);
            fixed (byte* start = _bytes)
            {
                int written = 0;
                while (written < length)
                {
                    long result = LibC.write(_file.Fd, start + written, length - written);
                    if (result < 0)
                    {
                        int errno = LibC.errno;
                        if (errno == LibC.EINTR)
                        {
                            continue;
                        }
                        // Serilog catches a sink's exception and reports it on its SelfLog; the daemon carries on.
                        throw new IOException($"{Path}: cannot write the log: {Marshal.GetPInvokeErrorMessage(errno)}");
                    }
                    written += (int)result;
                }
            }
        }
        finally
        {
            if (added)
            {
                _file.DangerousRelease();
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _file.Dispose();
            _text.Dispose();
        }
    }
}
