using System.Net.Sockets;
using System.Text;
using Firezone.Actors.Engine;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Serves the cross-platform userspace API on a unix stream socket, one connection at a time per
/// client and one operation at a time for the device (wireguard-go's ipcMutex). Operations:
/// <c>get=1</c>, <c>set=1</c> (https://www.wireguard.com/xplatform/) and our <c>fz_get=1</c>.
/// A bad request gets an <c>errno=</c> reply; the daemon keeps serving. The socket file is root-only
/// (0600 in a 0755 directory, as wireguard-go's UAPIOpen) and removed on dispose.
/// </summary>
public sealed class UapiServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ITunnelControl _control;
    private readonly ILogger _logger;
    private readonly Func<NewPeerEcnMode> _newPeerEcnModes;
    private readonly Func<CancellationToken, Task<string>>? _save;
    private readonly SemaphoreSlim _operationLock = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TransientMemory _transientMemory;
    private readonly Task _acceptLoop;
    private readonly Task _removalWatch;
    private readonly Func<string, FileSystemWatcher> _watch;
    private readonly TaskCompletionSource _socketRemoved = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HangUpWatcher? _hangUps;
    private int _disposed;

    /// <summary>
    /// Connections served at once, at most: a quarter of the descriptors the open-file limit left
    /// free when the server started (see <see cref="ConnectionSlots"/>). A client past them waits in
    /// the listen backlog, as wg waits for an answer, until one ends.
    /// </summary>
    private readonly SemaphoreSlim _connectionSlots;
    private readonly int _connectionSlotCount;

    /// <summary>When the Warning that all connection slots are taken may be logged again (Environment.TickCount64).</summary>
    private long _nextSlotsWarning;

    /// <summary>How long the accept loop waits after accept(2) failed (EMFILE, ENFILE, ENOBUFS) before it tries again.</summary>
    internal static readonly TimeSpan AcceptRetryInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The most connections served at once, with the limit for the whole daemon's UAPI and the descriptors it then had open (null: unknown).</summary>
    internal static int ConnectionSlots(long? openFileLimit, int? openNow) =>
        openFileLimit is { } limit && openNow is { } open ? (int)Math.Clamp((limit - open) / 4, 1, MaxConnectionSlots) : MaxConnectionSlots;

    internal const int MaxConnectionSlots = 256;

    private UapiServer(string socketPath, Socket listener, ITunnelControl control, ILogger logger, Func<string, FileSystemWatcher> watch, Func<NewPeerEcnMode> newPeerEcnModes,
        Func<CancellationToken, Task<string>>? save, Action<MemoryReturn>? returnMemory)
    {
        _save = save;
        _transientMemory = new TransientMemory(returnMemory ?? TransientMemory.Collect, _stopping.Token);
        SocketPath = socketPath;
        _listener = listener;
        _control = control;
        _logger = logger;
        _newPeerEcnModes = newPeerEcnModes;
        _watch = watch;
        _connectionSlotCount = ConnectionSlots(OpenFileLimit.Current(), OpenFileLimit.OpenNow());
        _connectionSlots = new SemaphoreSlim(_connectionSlotCount);
        try
        {
            _hangUps = new HangUpWatcher();
        }
        catch (IOException e)
        {
            // Out of descriptors: gets then wait for their answer whatever becomes of their client, as before there was a watch.
            logger.LogWarning("Cannot watch UAPI clients for hang-ups ({Problem}); a get whose client leaves is answered anyway", e.Message);
        }
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _removalWatch = Task.Run(WatchRemovalAsync);
    }

    public string SocketPath { get; }

    /// <summary>Completes when someone deletes the socket file: wireguard-go's signal to shut down.</summary>
    public Task SocketRemoved => _socketRemoved.Task;

    /// <summary>Creates the directory and socket and starts accepting; <see cref="StartupException"/> when it cannot.</summary>
    /// <param name="newPeerEcnModes">The ECN modes of the peers a <c>set=1</c> creates (see <see cref="UapiSetApplier"/>); null: normal.</param>
    /// <param name="save">
    /// Service mode's save (ConfigSaver: writes the configuration file from the interface's state,
    /// returns its path), for <c>fz_save=1</c>; null when the interface has no file.
    /// </param>
    public static UapiServer Start(string socketPath, ITunnelControl control, ILogger logger, Func<NewPeerEcnMode>? newPeerEcnModes = null,
        Func<CancellationToken, Task<string>>? save = null) =>
        Start(socketPath, control, logger, WatchDirectory, newPeerEcnModes, save);

    /// <summary>
    /// As above, with the inotify watch of the socket file made by <paramref name="watch"/> (tests
    /// supply one that fails, to see the fallback to polling) and the collections after large
    /// requests made by <paramref name="returnMemory"/> (tests record them; null: <see cref="TransientMemory.Collect"/>).
    /// </summary>
    internal static UapiServer Start(string socketPath, ITunnelControl control, ILogger logger, Func<string, FileSystemWatcher> watch, Func<NewPeerEcnMode>? newPeerEcnModes = null,
        Func<CancellationToken, Task<string>>? save = null, Action<MemoryReturn>? returnMemory = null)
    {
        string directory = Path.GetDirectoryName(socketPath)!;
        try
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{directory}: cannot create the socket directory: {e.Message}", e);
        }
        EnsureAvailable(socketPath);
        // The socket appears under its name only once it listens: wg(8) unlinks a NAME.sock it
        // cannot connect to (ECONNREFUSED, "the process is gone"), so a `wg show` or `wg-quick`
        // run between bind and listen would delete a socket bound under its final name. Bound
        // under a name wg passes over, then linked (link(2) fails rather than replace a socket
        // another daemon published meanwhile).
        string bound = $"{socketPath}.{Environment.ProcessId}.tmp";
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            File.Delete(bound);
            BindOwnerOnly(listener, bound);
            File.SetUnixFileMode(bound, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(16);
            HardLink.Create(bound, socketPath);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Dispose();
            File.Delete(bound);
            throw new StartupException(e is IOException io && io.HResult == Tmds.Linux.LibC.EEXIST
                ? $"{socketPath}: socket in use (is another daemon serving this interface?)"
                : $"{socketPath}: cannot listen: {e.Message}", e);
        }
        File.Delete(bound);
        logger.LogInformation("UAPI listening on {SocketPath}", socketPath);
        return new UapiServer(socketPath, listener, control, logger, watch, newPeerEcnModes ?? UapiSetApplier.Normal, save, returnMemory);
    }

    /// <summary>
    /// Binds <paramref name="listener"/> under umask 077, as wireguard-go's UAPIOpen does, so the
    /// socket file is never created with the caller's umask (0777 under umask 0, 0775 under 002)
    /// before the chmod to 0600. connect(2) checks the mode only when it connects: a local user who
    /// connected in between would keep a connection that reads the private key (get=1) and replaces
    /// it (set=1). The umask is the process's; a file another thread creates meanwhile only gets
    /// fewer permissions.
    /// </summary>
    internal static void BindOwnerOnly(Socket listener, string socketPath)
    {
        var previous = Tmds.Linux.LibC.umask(0x3f);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.SocketError && BindErrno(socketPath) is var errno and not 0)
        {
            // An errno .NET has no SocketError for (EROFS: a read-only /run/wireguard; EDQUOT,
            // ENOSPC) is "Unknown socket error", which named no problem; wireguard-go says
            // "read-only file system". The errno, from a bind(2) of our own to the same path.
            throw new IOException(Native.Errno.Describe(errno), e);
        }
        finally
        {
            Tmds.Linux.LibC.umask(previous);
        }
    }

    /// <summary>The errno of bind(2) of a new unix stream socket to <paramref name="socketPath"/> (0: it bound, and the file is removed again).</summary>
    internal static unsafe int BindErrno(string socketPath)
    {
        int fd = Tmds.Linux.LibC.socket(Tmds.Linux.LibC.AF_UNIX, Tmds.Linux.LibC.SOCK_STREAM | Tmds.Linux.LibC.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            return 0;
        }
        try
        {
            byte[] path = Encoding.UTF8.GetBytes(socketPath);
            var address = default(Tmds.Linux.sockaddr_un);
            if (path.Length >= 108)
            {
                return 0;
            }
            address.sun_family = (ushort)Tmds.Linux.LibC.AF_UNIX;
            path.CopyTo(new Span<byte>(address.sun_path, 108));
            if (Tmds.Linux.LibC.bind(fd, (Tmds.Linux.sockaddr*)&address, (uint)sizeof(Tmds.Linux.sockaddr_un)) == 0)
            {
                File.Delete(socketPath);
                return 0;
            }
            return Tmds.Linux.LibC.errno;
        }
        finally
        {
            Tmds.Linux.LibC.close(fd);
        }
    }

    /// <summary>
    /// Throws <see cref="StartupException"/> when a live daemon serves <paramref name="socketPath"/>;
    /// removes a stale file (the same test as wireguard-go's UAPIOpen: a live daemon answers). The
    /// daemon calls it before creating anything, so a taken name leaves nothing behind.
    /// What is at the path is removed as wireguard-go's os.Remove does (checked against
    /// /usr/bin/wireguard-go): a file or socket no daemon answers on, a symlink (the link itself,
    /// never what it points to; a symlink to a live daemon's socket is "in use") and an empty
    /// directory; a directory with something in it is left as it is, and said to be one.
    /// </summary>
    public static void EnsureAvailable(string socketPath)
    {
        bool isLink = IsSymlink(socketPath);
        if (!isLink && Directory.Exists(socketPath))
        {
            RemoveEmptyDirectory(socketPath);
            return;
        }
        // File.Exists follows a symlink: one to a directory (or to nothing) is still probed and unlinked.
        if (!isLink && !File.Exists(socketPath))
        {
            return;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException)
        {
            File.Delete(socketPath);
            return;
        }
        throw new StartupException($"{socketPath}: socket in use (is another daemon serving this interface?)");
    }

    /// <summary>True when <paramref name="path"/> itself is a symlink (readlink(2)); false when it is not, is absent or cannot be read.</summary>
    private static bool IsSymlink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget is not null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // the probe and link(2) that follow meet the same problem and report it
        }
    }

    /// <summary>
    /// A directory at the socket path (no symlink: checked by the caller, and rmdir does not follow
    /// one put there since): removed when empty, as wireguard-go's UAPIOpen removes it (connect
    /// refused, then os.Remove, whose rmdir takes an empty directory); otherwise a
    /// <see cref="StartupException"/> that says it is a directory. It said "socket in use" (link(2)
    /// found the name taken), which sent the operator looking for a daemon that was not there.
    /// </summary>
    private static void RemoveEmptyDirectory(string socketPath)
    {
        int errno = EmptyDirectory.TryRemove(socketPath);
        if (errno == 0 || errno == Tmds.Linux.LibC.ENOENT || errno == Tmds.Linux.LibC.ENOTDIR)
        {
            return; // removed, or gone or replaced meanwhile: the bind and link that follow decide
        }
        throw new StartupException(errno == Tmds.Linux.LibC.ENOTEMPTY || errno == Tmds.Linux.LibC.EEXIST
            ? $"{socketPath}: is a directory, not a socket, and not empty: left as it is (remove it, or choose another interface name)"
            : $"{socketPath}: is a directory, not a socket, and cannot be removed: {Native.Errno.Describe(errno)}");
    }

    private async Task AcceptLoopAsync()
    {
        var connections = new List<Task>();
        string? acceptFailing = null;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                // Each connection holds a descriptor: with the open-file limit reached, accept(2)
                // fails (EMFILE), and so do the runtime's own descriptors (a thread's, a pipe's), and
                // the runtime aborts the process ("Out of memory."). So a bounded number at once.
                if (!_connectionSlots.Wait(0))
                {
                    WarnSlotsTaken();
                    await _connectionSlots.WaitAsync(_stopping.Token).ConfigureAwait(false);
                }
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (SocketException e) when (!_stopping.IsCancellationRequested && e.SocketErrorCode != SocketError.OperationAborted)
                {
                    // Was the end of the loop, taken for a stop: the daemon ran on, and every wg
                    // after waited for an answer that never came, with nothing in the log. The
                    // client waits in the backlog meanwhile, as wireguard-go's would not (it exits).
                    _connectionSlots.Release();
                    if (acceptFailing is null)
                    {
                        // .NET maps EMFILE and ENFILE both to TooManyOpenSockets, whose message is
                        // ENFILE's ("in system"): the process's own limit is the likelier one.
                        acceptFailing = e.SocketErrorCode == SocketError.TooManyOpenSockets ? "Too many open files" : e.Message;
                        _logger.LogWarning("UAPI: cannot accept a connection on {SocketPath}: {Problem} ({OpenFiles}); wg waits, tried again every {RetryMilliseconds} ms",
                            SocketPath, acceptFailing, DescribeOpenFiles(), (int)AcceptRetryInterval.TotalMilliseconds);
                    }
                    await Task.Delay(AcceptRetryInterval, _stopping.Token).ConfigureAwait(false);
                    continue;
                }
                if (acceptFailing is not null)
                {
                    _logger.LogInformation("UAPI: accepting connections on {SocketPath} again (they failed with: {Problem})", SocketPath, acceptFailing);
                    acceptFailing = null;
                }
                connections.RemoveAll(static t => t.IsCompleted);
                connections.Add(Task.Run(async () =>
                {
                    try
                    {
                        await ServeAsync(client).ConfigureAwait(false);
                    }
                    finally
                    {
                        _connectionSlots.Release();
                    }
                }));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopping.
        }
        await Task.WhenAll(connections).ConfigureAwait(false);
    }

    /// <summary>"the open-file limit is N, M open" (or what of it is known), for a Warning about descriptors.</summary>
    internal static string DescribeOpenFiles() => (OpenFileLimit.Current(), OpenFileLimit.OpenNow()) switch
    {
        ({ } limit, { } open) => $"open-file limit {(limit == long.MaxValue ? "unlimited" : limit.ToString(System.Globalization.CultureInfo.InvariantCulture))}, {open} descriptors open",
        ({ } limit, null) => $"open-file limit {limit}",
        _ => "open-file limit unknown",
    };

    private void WarnSlotsTaken()
    {
        long now = Environment.TickCount64;
        if (now < Volatile.Read(ref _nextSlotsWarning))
        {
            _logger.LogDebug("UAPI: all connection slots taken; the next client waits until one ends");
            return;
        }
        Volatile.Write(ref _nextSlotsWarning, now + (long)SlotsWarningInterval.TotalMilliseconds);
        if (_connectionSlotCount >= MaxConnectionSlots)
        {
            // The server's own bound, not the limit's: raising the limit would change nothing.
            _logger.LogWarning("UAPI: {Connections} connections open on {SocketPath}, the most it serves at once; the next client waits until one ends",
                _connectionSlotCount, SocketPath);
            return;
        }
        _logger.LogWarning("UAPI: {Connections} connections open on {SocketPath}, as many as the open-file limit leaves room for ({OpenFiles}); the next client waits until one ends (raise LimitNOFILE= or ulimit -n for more)",
            _connectionSlotCount, SocketPath, DescribeOpenFiles());
    }

    /// <summary>At most one Warning that the connection slots are all taken this often.</summary>
    internal static readonly TimeSpan SlotsWarningInterval = TimeSpan.FromSeconds(60);

    /// <summary>A watch of the name changes of <paramref name="socketPath"/> in its directory (inotify), not yet raising events.</summary>
    internal static FileSystemWatcher WatchDirectory(string socketPath)
        => new(Path.GetDirectoryName(socketPath)!, Path.GetFileName(socketPath)) { NotifyFilter = NotifyFilters.FileName };

    private async Task WatchRemovalAsync()
    {
        // inotify on the socket's directory (FileSystemWatcher), as wireguard-go watches its socket
        // (ipc/uapi_linux.go): nothing runs until the directory changes, so an idle daemon does not
        // wake for it. Polling (a stat every 250 ms) only when inotify is unavailable, such as when
        // the user's inotify instances are used up.
        FileSystemWatcher? watcher = null;
        // Not disposed: a handler may still run on the watcher's thread after the loop ended.
        var changed = new SemaphoreSlim(0);
        string? watchFailed = null;
        try
        {
            watcher = _watch(SocketPath);
            watcher.Deleted += (_, _) => changed.Release();
            watcher.Renamed += (_, _) => changed.Release();
            // An overflow or a lost watch ends the watcher's event loop for good: fall back to polling.
            watcher.Error += (_, e) =>
            {
                Volatile.Write(ref watchFailed, e.GetException().Message);
                changed.Release();
            };
            watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            _logger.LogWarning("Cannot watch the UAPI socket {SocketPath} with inotify ({Problem}); checking every 250 ms instead", SocketPath, e.Message);
            watcher?.Dispose();
            watcher = null;
        }
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                // Checked before each wait: a removal before the watch started is seen too.
                if (!File.Exists(SocketPath))
                {
                    _logger.LogInformation("UAPI socket {SocketPath} was removed; shutting down", SocketPath);
                    _socketRemoved.TrySetResult();
                    return;
                }
                if (watcher is not null && Volatile.Read(ref watchFailed) is { } problem)
                {
                    _logger.LogWarning("The inotify watch of the UAPI socket {SocketPath} failed ({Problem}); checking every 250 ms instead", SocketPath, problem);
                    watcher.Dispose();
                    watcher = null;
                }
                if (watcher is null)
                {
                    await Task.Delay(250, _stopping.Token).ConfigureAwait(false);
                }
                else
                {
                    await changed.WaitAsync(_stopping.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            watcher?.Dispose();
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var stream = new NetworkStream(client, ownsSocket: true);
        var reader = new UapiLineReader(stream);
        var token = _stopping.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                string? operation = await reader.ReadLineAsync(token).ConfigureAwait(false);
                if (operation is null)
                {
                    return;
                }
                string reply;
                bool close = false;
                switch (operation)
                {
                    case "set=1":
                        int lines;
                        (reply, lines, close) = await SetAsync(reader, token).ConfigureAwait(false);
                        if (lines >= LargeSetLines)
                        {
                            _transientMemory.Request(MemoryReturn.Compacting);
                        }
                        break;
                    case "get=1":
                    case "fz_get=1":
                    case "fz_save=1":
                        // As wireguard-go's IpcHandle (device/uapi.go) reads get's end: one byte, which
                        // must be the blank line's '\n'. Any other is refused at once, without waiting
                        // for a line end that may never come, and what follows it is read as the next
                        // operation. Our fz_save ends the same way, so one reader serves all three.
                        int next = await reader.ReadByteAsync(token).ConfigureAwait(false);
                        if (next < 0)
                        {
                            return; // the client stopped writing: wireguard-go closes without a reply
                        }
                        if (next != '\n')
                        {
                            reply = Errno(UapiErrno.EINVAL, operation == "fz_save=1" ? "trailing character in UAPI fz_save" : "trailing character in UAPI get");
                            break;
                        }
                        if (operation == "fz_save=1")
                        {
                            reply = await SaveAsync(token).ConfigureAwait(false);
                            break;
                        }
                        var (status, failed) = await GetAsync(operation, client, token).ConfigureAwait(false);
                        if (status is null)
                        {
                            reply = failed!;
                            break;
                        }
                        // Written as it is formatted, outside the lock: a client that reads slowly
                        // holds up nobody else's request.
                        await UapiGetFormatter.WriteAsync(status, extensions: operation == "fz_get=1", stream, token).ConfigureAwait(false);
                        if (status.Peers.Count >= LargeGetPeers)
                        {
                            // The status snapshot of thousands of peers (some 600 bytes each) outlives
                            // the collections its formatting makes: hand it back without stopping the
                            // packet path (monitoring polls gets).
                            _transientMemory.Request(MemoryReturn.Background);
                        }
                        continue;
                    default:
                        // wireguard-go closes silently; we answer first, so a person poking the socket sees why.
                        reply = Errno(UapiErrno.EINVAL, "invalid UAPI operation");
                        close = true;
                        break;
                }
                // A save's reply is written even when the server began to stop meanwhile: the file was
                // written (or not), and the command should say which. UTF-8: fz_saved= and fz_error=
                // carry the file's path as it was given (as ASCII each such character was a '?');
                // get's and set's replies are ASCII, the same bytes either way.
                await stream.WriteAsync(Encoding.UTF8.GetBytes(reply), operation == "fz_save=1" ? CancellationToken.None : token).ConfigureAwait(false);
                if (close)
                {
                    return;
                }
            }
        }
        catch (UapiException e)
        {
            await TryWriteAsync(stream, Errno(e.Errno, e.Message)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Client went away or we are stopping.
        }
        catch (Exception e)
        {
            // Never a faulted connection task: the accept loop awaits them all at shutdown, and the
            // socket file must still be removed.
            _logger.LogError(e, "UAPI connection failed: {Problem}", e.Message.ReplaceLineEndings(" "));
        }
    }

    /// <summary>
    /// A set this large (wg addconf of thousands of peers) leaves tens of megabytes of request text,
    /// drafts and messages behind; <see cref="TransientMemory"/> hands them back to the system.
    /// </summary>
    private const int LargeSetLines = 4096;

    /// <summary>A get of this many peers leaves a status snapshot of some megabytes behind.</summary>
    private const int LargeGetPeers = 1000;

    /// <summary>
    /// A <c>set=1</c>: parsed line by line as it arrives and applied whole after the blank line, so a
    /// request that fails changes nothing. A line that does not parse is answered at once and the
    /// connection closed, as wireguard-go does (the rest of the body cannot be told from the next
    /// request), so a request does not hold memory for lines it will refuse anyway.
    /// </summary>
    private async Task<(string Reply, int Lines, bool Close)> SetAsync(UapiLineReader reader, CancellationToken token)
    {
        var parser = new UapiSetParser();
        int lines = 0;
        while (true)
        {
            string? line = await reader.ReadLineAsync(token, keepPartialLastLine: true).ConfigureAwait(false);
            if (line is not null && line.EndsWith('\r'))
            {
                // wireguard-go reads a set's body with bufio.Scanner, whose ScanLines drops the '\r' of a CRLF.
                line = line[..^1];
            }
            if (line is null || line.Length == 0)
            {
                break;
            }
            lines++;
            try
            {
                parser.Add(line);
            }
            catch (UapiException e)
            {
                return (Errno(e.Errno, e.Message), lines, true);
            }
        }
        var request = parser.Request;
        // Not given up when the client hangs up, unlike a get: a set read to its end is applied
        // whole, as wireguard-go applies what it read from a connection whatever became of its
        // client, so a script that writes a set and closes (`nc -q0`) changes the device every time.
        // Given up instead, it would apply or not depending on how soon the hang-up was noticed, or
        // apply half: its port, key and fwmark are separate steps before its peer changes. Nor is
        // its wait for the tunnel's confirmation cut short: the next request's status is answered
        // by the tunnel only after this set's changes anyway (one mailbox, in order), so the lock
        // would pass on sooner but nothing would answer sooner.
        await _operationLock.WaitAsync(token).ConfigureAwait(false);
        try
        {
            var deviceChanges = await UapiSetApplier.ApplyAsync(request, _control, _newPeerEcnModes, token).ConfigureAwait(false);
            if (deviceChanges.Count > 0)
            {
                // The request's peers, not changes: wg syncconf names every peer of the file, and what
                // changed for them is the peers' supervisor's "peers changed" line.
                _logger.LogInformation("UAPI set: {DeviceChanges:l} changed; {RequestPeers} peer(s) in the request", string.Join(", ", deviceChanges), request.Peers.Count);
            }
            else
            {
                // Peer changes are logged by the peers' supervisor at Information when there are any;
                // a reload that sends the same file again changes nothing and says so only here.
                _logger.LogDebug("UAPI set: no device change; {RequestPeers} peer(s) in the request", request.Peers.Count);
            }
            return ("errno=0\n\n", lines, false);
        }
        catch (UapiException e)
        {
            return (Errno(e.Errno, e.Message), lines, false);
        }
        catch (TunnelControlException e)
        {
            return (Errno(e.Errno, e.Message), lines, false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
        {
            // Not a refusal of the request: applying it failed (a tunnel rebuild that could not
            // reopen the TUN device, an actor that did not answer). wg gets an errno, not a closed
            // connection ("Protocol error"), and the log says what failed.
            return (InternalFailure("set", e), lines, false);
        }
        finally
        {
            _operationLock.Release();
        }
    }

    /// <summary>
    /// <c>fz_save=1</c> (<c>firezone-tunnel save</c>): <c>fz_saved=PATH</c>, or <c>fz_error=</c> with
    /// the reason before the errno line, so the command can say why.
    /// </summary>
    private async Task<string> SaveAsync(CancellationToken token)
    {
        if (_save is null)
        {
            return "fz_error=not started from a configuration file (firezone-tunnel up FILE): there is no file to save to\n"
                + Errno(UapiErrno.EOPNOTSUPP, "fz_save without a configuration file");
        }
        await _operationLock.WaitAsync(token).ConfigureAwait(false);
        try
        {
            // Not the server's stopping token: a save that began finishes (it has a time bound of its
            // own), so its reply tells the truth when the daemon stops meanwhile.
            string path = await _save(CancellationToken.None).ConfigureAwait(false);
            return $"fz_saved={path}\nerrno=0\n\n";
        }
        catch (Exception e)
        {
            string problem = e is OperationCanceledException ? "did not finish in time" : e.Message.ReplaceLineEndings(" ");
            // At Error, not through Errno's rate-limited Warning: a file that was not saved matters.
            _logger.LogError("firezone-tunnel save: not saved: {Problem}", problem);
            return $"fz_error={problem}\nerrno=-{UapiErrno.EIO}\n\n";
        }
        finally
        {
            _operationLock.Release();
        }
    }

    /// <summary>
    /// The status a <c>get=1</c> or <c>fz_get=1</c> answers with (the caller formats it as it writes
    /// it, after the lock is freed), or the reply of its failure; given up (<see cref="OperationCanceledException"/>, the
    /// connection closed unanswered) when its client hangs up while it waits for its turn or for the
    /// tunnel's status: the answer can take seconds (10,000 peers, a busy tunnel), and each get
    /// queued behind one whose client was gone (Ctrl-C on `wg show`, a monitoring agent that gave up
    /// and asked again) asked the tunnel and held the lock for nobody. A get changes nothing, so
    /// giving it up at any point leaves nothing half done.
    /// </summary>
    private async Task<(DeviceStatus? Status, string? Failed)> GetAsync(string operation, Socket client, CancellationToken stopping)
    {
        using var watch = WatchHangUp(client);
        using var waiting = watch is null ? null : CancellationTokenSource.CreateLinkedTokenSource(stopping, watch.HungUp);
        var token = waiting?.Token ?? stopping;
        try
        {
            await _operationLock.WaitAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (watch is not null && watch.HungUp.IsCancellationRequested)
        {
            _logger.LogDebug("UAPI {Operation}: the client hung up while it waited for its turn; not answered", operation[..^2]);
            throw;
        }
        try
        {
            return (await _control.GetStatusAsync(token).ConfigureAwait(false), null);
        }
        catch (TunnelControlException e)
        {
            return (null, Errno(e.Errno, e.Message));
        }
        catch (OperationCanceledException) when (watch is not null && watch.HungUp.IsCancellationRequested)
        {
            _logger.LogDebug("UAPI {Operation}: the client hung up while it waited for the tunnel's status; not answered", operation[..^2]);
            throw;
        }
        catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
        {
            return (null, InternalFailure("get", e));
        }
        finally
        {
            _operationLock.Release();
        }
    }

    /// <summary>
    /// A watch of <paramref name="client"/> for its hang-up; null when none can be made: the request
    /// then waits as it did before there was one.
    /// </summary>
    private HangUpWatch? WatchHangUp(Socket client)
    {
        try
        {
            return _hangUps?.Watch(client.SafeHandle);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return null; // epoll refused it (max_user_watches), or the server is stopping
        }
    }

    /// <summary>A request the daemon failed to carry out: logged at Error (not rate-limited, unlike refusals), answered EIO.</summary>
    private string InternalFailure(string operation, Exception e)
    {
        _logger.LogError(e, "UAPI {Operation} failed: {Problem}", operation, e.Message.ReplaceLineEndings(" "));
        return $"errno=-{UapiErrno.EIO}\n\n";
    }

    private string Errno(int errno, string message)
    {
        // One Warning per RefusalLogInterval at most, the others at Debug: a client that sends bad
        // requests in a loop must not flood the log (the socket is root's, but scripts loop).
        long now = Environment.TickCount64;
        bool warn;
        long suppressed;
        lock (_refusalGate)
        {
            warn = now >= _nextRefusalWarning;
            suppressed = _refusalsSuppressed;
            if (warn)
            {
                _nextRefusalWarning = now + (long)RefusalLogInterval.TotalMilliseconds;
                _refusalsSuppressed = 0;
            }
            else
            {
                _refusalsSuppressed++;
            }
        }
        if (warn && suppressed > 0)
        {
            _logger.LogWarning("UAPI request refused (errno {Errno}): {Problem} ({Suppressed} more refused since the last such warning)", errno, message, suppressed);
        }
        else if (warn)
        {
            // The first, or the first after a quiet interval: no count of "0 more" to give.
            _logger.LogWarning("UAPI request refused (errno {Errno}): {Problem}", errno, message);
        }
        else
        {
            _logger.LogDebug("UAPI request refused (errno {Errno}): {Problem}", errno, message);
        }
        return $"errno=-{errno}\n\n";
    }

    /// <summary>At most one Warning about refused requests this often.</summary>
    internal static readonly TimeSpan RefusalLogInterval = TimeSpan.FromSeconds(10);

    private readonly Lock _refusalGate = new();
    private long _nextRefusalWarning;
    private long _refusalsSuppressed;

    private static async Task TryWriteAsync(Stream stream, string reply)
    {
        try
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(reply)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _stopping.Cancel();
        _listener.Dispose();
        try
        {
            await Task.WhenAll(_acceptLoop, _removalWatch).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("UAPI connections still open at shutdown");
        }
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
        // Not _operationLock: a save that began before the stop still releases it when it ends.
        // A get still waiting past the second above disposes its watch on a watcher that is gone: harmless.
        _hangUps?.Dispose();
        _stopping.Dispose();
    }
}
