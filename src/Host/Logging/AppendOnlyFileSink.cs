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
/// (jq, tail -f) sees it and a crash of the daemon loses none. A write that fails (a full disk)
/// is said once on stderr, and the file gets the count of its missing lines once writing works again.
/// </summary>
internal sealed unsafe class AppendOnlyFileSink : ILogEventSink, IDisposable
{
    /// <summary>
    /// 0640 (less the umask): the log names peers' public keys and endpoints, which `wg show` shows
    /// only to root, so not every local user reads them (syslog files are 0640 too). A file that
    /// exists keeps its mode.
    /// </summary>
    private const int CreateMode = 0x1a0;

    private SafeFileDescriptorHandle _file;
    private readonly ITextFormatter _formatter;
    private readonly StringWriter _text = new(CultureInfo.InvariantCulture);
    private readonly Lock _gate = new();
    private byte[] _bytes = new byte[4096];
    private bool _disposed;

    private readonly TextWriter? _problems;

    private AppendOnlyFileSink(string path, SafeFileDescriptorHandle file, bool created, ITextFormatter formatter, TextWriter? problems)
    {
        _problems = problems;
        Path = path;
        _file = file;
        Created = created;
        _formatter = formatter;
    }

    public string Path { get; }

    /// <summary>How often a line first checks that the path still names the open file (see Emit).</summary>
    internal TimeSpan RecheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether this open created the file (O_CREAT|O_EXCL succeeded), rather than found it.</summary>
    public bool Created { get; }

    /// <summary>
    /// Opens (creates) <paramref name="path"/> for appending. A symbolic link there is refused
    /// (O_NOFOLLOW): in a directory others may write to (/tmp), one planted at the path made the
    /// root daemon append to whatever it pointed at. So is anything but a regular file or a
    /// character device (/dev/null, for no log): a FIFO made the open wait for a reader for ever
    /// (O_NONBLOCK now answers ENXIO at once) and then fed it the log.
    /// </summary>
    /// <exception cref="IOException">One line naming the file and the reason (EACCES, ENOENT, a symbolic link, ...).</exception>
    public static AppendOnlyFileSink Open(string path, ITextFormatter formatter, TextWriter? problems = null)
    {
        var file = OpenDescriptor(path, out bool created, out bool regular);
        return new AppendOnlyFileSink(path, file, created, formatter, problems) { _regular = regular };
    }

    /// <summary>The open of <see cref="Open"/>, also for a reopen after a rotation by rename.</summary>
    private static SafeFileDescriptorHandle OpenDescriptor(string path, out bool created, out bool regular)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        created = false;
        regular = false;
        fixed (byte* p = name)
        {
            int flags = LibC.O_WRONLY | LibC.O_APPEND | LibC.O_CLOEXEC | LibC.O_NOFOLLOW | LibC.O_NONBLOCK;
            // Create it only if it is not there (a symbolic link counts as there), else open what is:
            // so the daemon knows whether the file is its own (Discard). A file removed between the
            // two opens (a rotation) is created on the next round.
            for (int round = 0; ; round++)
            {
                fd = OpenRetrying(p, flags | LibC.O_CREAT | LibC.O_EXCL, CreateMode);
                if (fd >= 0)
                {
                    created = true;
                    break;
                }
                if (LibC.errno != LibC.EEXIST)
                {
                    break;
                }
                fd = OpenRetrying(p, flags, 0);
                if (fd >= 0 || LibC.errno != LibC.ENOENT || round == 2)
                {
                    break;
                }
            }
            if (fd < 0)
            {
                int errno = LibC.errno;
                // ELOOP: the last component is a symbolic link (or a path of too many links);
                // ENXIO: a FIFO without a reader, or a socket. lstat tells which.
                string? kind = errno == LibC.ELOOP || errno == LibC.ENXIO ? KindAt(p) : null;
                throw new IOException($"{path}: cannot open the log file: {kind switch
                {
                    SymbolicLink => SymbolicLinkProblem,
                    not null => $"it is {kind}, not a regular file",
                    null => Marshal.GetPInvokeErrorMessage(errno),
                }}");
            }
        }
        var file = new SafeFileDescriptorHandle(fd);
        try
        {
            stat status;
            if (LibC.fstat(fd, &status) != 0)
            {
                throw new IOException($"{path}: cannot open the log file: {Marshal.GetPInvokeErrorMessage(LibC.errno)}");
            }
            int type = (int)status.st_mode & (int)LibC.S_IFMT;
            if (type != (int)LibC.S_IFREG && type != (int)LibC.S_IFCHR)
            {
                // A FIFO with a reader, which O_NONBLOCK opens.
                throw new IOException($"{path}: cannot open the log file: it is {Describe(type)}, not a regular file");
            }
            // Blocking writes again (to a terminal, say): F_SETFL with O_APPEND alone clears O_NONBLOCK.
            if (LibC.fcntl(fd, LibC.F_SETFL, LibC.O_APPEND) < 0)
            {
                throw new IOException($"{path}: cannot open the log file: {Marshal.GetPInvokeErrorMessage(LibC.errno)}");
            }
            regular = type == (int)LibC.S_IFREG;
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return file;
    }

    private static int OpenRetrying(byte* path, int flags, mode_t mode)
    {
        int fd;
        do
        {
            fd = LibC.open(path, flags, mode);
        }
        while (fd < 0 && LibC.errno == LibC.EINTR);
        return fd;
    }

    /// <summary>
    /// Closes the file and, when this open created it and the path still names it (not a file a
    /// rotation put there since), removes it: for a start that was refused before anything of the
    /// daemon's ran, whose reason the caller already has on stderr.
    /// </summary>
    public void Discard()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            if (Created)
            {
                byte[] name = Encoding.UTF8.GetBytes(Path + "\0");
                stat open, named;
                fixed (byte* p = name)
                {
                    if (LibC.fstat(_file.Fd, &open) == 0 && LibC.lstat(p, &named) == 0
                        && open.st_dev == named.st_dev && open.st_ino == named.st_ino)
                    {
                        _ = LibC.unlink(p);
                    }
                }
            }
            _disposed = true;
            _file.Dispose();
            _text.Dispose();
        }
    }

    private const string SymbolicLink = "a symbolic link";

    internal const string SymbolicLinkProblem = "it is a symbolic link, which the daemon does not write through (give the path of the file itself)";

    /// <summary>What is at <paramref name="path"/> itself (not following a link), or null for a regular file or nothing.</summary>
    private static string? KindAt(byte* path)
    {
        stat status;
        if (LibC.lstat(path, &status) != 0)
        {
            return null;
        }
        int type = (int)status.st_mode & (int)LibC.S_IFMT;
        return type == (int)LibC.S_IFREG ? null : Describe(type);
    }

    private static string Describe(int type) =>
        type == (int)LibC.S_IFLNK ? SymbolicLink
        : type == (int)LibC.S_IFIFO ? "a FIFO"
        : type == (int)LibC.S_IFSOCK ? "a socket"
        : type == (int)LibC.S_IFBLK ? "a block device"
        : type == (int)LibC.S_IFDIR ? "a directory"
        : "not a regular file";

    public void Emit(LogEvent logEvent)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            FollowRotation();
            if (_lostLines > 0)
            {
                // The gap first, so the file says where its lines are missing.
                int gapErrno = Write(new LogEvent(logEvent.Timestamp, LogEventLevel.Warning, null, LostLinesTemplate,
                    [new LogEventProperty("LostLines", new ScalarValue(_lostLines)), new LogEventProperty("Problem", new ScalarValue(_lostReason))]));
                if (gapErrno != 0)
                {
                    _lostLines++;
                    return;
                }
                SayProblem($"writing the log again; {_lostLines.ToString(CultureInfo.InvariantCulture)} line(s) were lost");
                _lostLines = 0;
            }
            int errno = Write(logEvent);
            if (errno != 0)
            {
                // Serilog swallows a sink's exception (its SelfLog is off): said here, once a streak.
                _lostReason = Marshal.GetPInvokeErrorMessage(errno);
                _lostLines = 1;
                SayProblem($"cannot write the log: {_lostReason}; its lines are lost until a write succeeds");
            }
        }
    }

    /// <summary>Whether the open file is a regular file (a rotation can rename it), not /dev/null.</summary>
    private bool _regular;

    /// <summary>When (<see cref="Environment.TickCount64"/>) the path is next compared with the open file.</summary>
    private long _nextRecheck;

    /// <summary>A reopen failed and was said on stderr: not again until one succeeds.</summary>
    private bool _reopenFailed;

    /// <summary>
    /// A rotation by rename (logrotate's default `create`, `mv` and a new file) or a removal of the
    /// log: the path no longer names the open file, so this opens (creates) the file at the path
    /// and closes the old one, at most once per <see cref="RecheckInterval"/> (an lstat and an
    /// fstat before a line). Without it the daemon wrote on to the renamed file for its life (after
    /// a compressing rotation to a deleted one, whose space stayed taken) and the path stayed
    /// empty. copytruncate keeps the file (same inode): nothing to do. A path that cannot be opened
    /// now (a symbolic link put there, a removed directory) is said once on stderr and the lines go
    /// on to the open file.
    /// </summary>
    private void FollowRotation()
    {
        if (!_regular)
        {
            return;
        }
        long now = Environment.TickCount64;
        if (now < _nextRecheck)
        {
            return;
        }
        _nextRecheck = now + (long)RecheckInterval.TotalMilliseconds;
        byte[] name = Encoding.UTF8.GetBytes(Path + "\0");
        stat open, named;
        fixed (byte* p = name)
        {
            if (LibC.fstat(_file.Fd, &open) != 0)
            {
                return;
            }
            if (LibC.lstat(p, &named) == 0)
            {
                if (open.st_dev == named.st_dev && open.st_ino == named.st_ino)
                {
                    return;
                }
            }
            else if (LibC.errno != LibC.ENOENT)
            {
                return;
            }
        }
        try
        {
            var fresh = OpenDescriptor(Path, out _, out bool regular);
            var old = _file;
            _file = fresh;
            _regular = regular;
            _reopenFailed = false;
            old.Dispose();
        }
        catch (IOException e)
        {
            if (!_reopenFailed)
            {
                _reopenFailed = true;
                (_problems ?? Console.Error).WriteLine(JournalErrorWriter.NoticeLine(
                    $"firezone-tunnel: {e.Message} (the log file was renamed or removed); the log goes on in the file it had open"));
            }
        }
    }

    private static readonly MessageTemplate LostLinesTemplate =
        new Serilog.Parsing.MessageTemplateParser().Parse("{LostLines} log line(s) were not written to this file: {Problem:l}");

    /// <summary>Lines not written since the last that was (a full disk, EIO), and why the first was not.</summary>
    private int _lostLines;

    private string _lostReason = "";

    /// <summary>A write that failed after part of a line: the next write starts a new line first.</summary>
    private bool _partialLine;

    /// <summary>
    /// One line on stderr (the journal under the unit, where the console log goes on), at the
    /// journal's warning priority: the daemon runs on.
    /// </summary>
    private void SayProblem(string problem) =>
        (_problems ?? Console.Error).WriteLine(JournalErrorWriter.NoticeLine($"firezone-tunnel: {Path}: {problem}"));

    /// <summary>Formats and writes one event; 0, or the errno of the write that failed.</summary>
    private int Write(LogEvent logEvent)
    {
        var text = _text.GetStringBuilder();
        text.Clear();
        if (_partialLine)
        {
            text.Append('\n');
        }
        _formatter.Format(logEvent, _text);
        string line = text.ToString();
        int length = Encoding.UTF8.GetByteCount(line);
        if (length > _bytes.Length)
        {
            _bytes = new byte[Math.Max(length, _bytes.Length * 2)];
        }
        Encoding.UTF8.GetBytes(line, _bytes);
        int written = WriteAll(length, out int errno);
        if (errno != 0)
        {
            _partialLine |= written > 0;
        }
        else
        {
            _partialLine = false;
        }
        return errno;
    }

    /// <summary>
    /// One write(2) for the whole event, so it lands in one piece; a short write (a full disk)
    /// continues with the rest, still appended. Returns the bytes written; <paramref name="errno"/>
    /// is that of a write that failed, else 0.
    /// </summary>
    private int WriteAll(int length, out int errno)
    {
        errno = 0;
        bool added = false;
        int written = 0;
        try
        {
            _file.DangerousAddRef(ref added);
            fixed (byte* start = _bytes)
            {
                while (written < length)
                {
                    long result = LibC.write(_file.Fd, start + written, length - written);
                    if (result < 0)
                    {
                        if (LibC.errno == LibC.EINTR)
                        {
                            continue;
                        }
                        errno = LibC.errno;
                        break;
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
        return written;
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
