using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Akka.Actor;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// The dedicated reader thread of an I/O actor (STYLE.md rule 8: no blocking call on the shared
/// dispatcher), shared by TunReader and SocketIO. Each pass rents up to a batch of pooled buffers,
/// reads what the device has queued (<see cref="IBatchReaderSteps.TryReadBatch"/>), routes every
/// filled buffer, keeps the unfilled ones for the next read and flushes the per-peer groups. The
/// thread blocks in <see cref="IBatchReaderSteps.WaitReadable"/> between passes.
///
/// Reply polling: when a read woke this thread from idle (it waited at least
/// <see cref="ReplyPoll.IdleBefore"/>), what it just sent or wrote is likely a request whose reply
/// comes back on the other device within a fraction of a millisecond: a ping's echo is queued on
/// the TUN device before the write that carried the request returns. Instead of letting the other
/// reader thread wake up for it (a wake-up from idle costs tens of microseconds on these VMs),
/// this thread polls the other device for up to <see cref="ReplyPoll"/>'s limit and
/// hands the reply on itself (<see cref="IPartnerReader.TryReadForPartner"/>). It stops at the
/// first reply, when its own device has something to read, or at the limit. Passes are made under
/// one lock per device, so the reads of a device stay one at a time and in order whichever thread
/// makes them; a partner makes one pass at a time and kicks the device's own thread when it left
/// packets in the device object. Traffic that never pauses for 1 ms does not poll; traffic with
/// longer pauses (a voice call's packet every 20 ms) polls after each packet, bounded by the limit.
///
/// A failure is told to the owning actor as <see cref="IoThreadFailed"/> (unless it is stopping),
/// which rethrows it so its supervisor escalates.
/// </summary>
internal sealed class BatchReaderThread<TSteps> : IPartnerReader where TSteps : struct, IBatchReaderSteps
{
    /// <summary>The most packets a partner reads of this device in one reply poll (one recvmmsg; the device's own reads take more).</summary>
    internal const int PartnerReadMost = 64;

    // A read after idle (the first of this thread after its wait, and a partner's read, which comes
    // after a packet woke the partner from idle) on a device that gives one packet per call
    // (IBatchReaderSteps.OnePacketPerCall) takes one packet. Such a read is most often of a lone
    // packet (a ping, a request, its reply), and reading on until the queue is empty costs one more
    // call before that packet is sealed or written; after a pause every call is slow here (its
    // kernel path is cold: README, "Why the ping target is not met"). Packets behind it are read by
    // the next pass at once: the device stays readable, and the device's own thread is kicked for a
    // super-packet's segments. A device that reads what is queued in one call (recvmmsg) reads as
    // before.
    private int FirstReadAfterIdleMost => _steps.OnePacketPerCall ? 1 : int.MaxValue;

    private int PartnerReadLimit => _steps.OnePacketPerCall ? 1 : PartnerReadMost;

    private static readonly long IdleTicks = (long)(ReplyPoll.IdleBefore.TotalSeconds * Stopwatch.Frequency);

    private static readonly long PausedNoticeTicks = (long)(ReadsPaused.Interval.TotalSeconds * Stopwatch.Frequency);

    private readonly PacketBuffer[] _buffers;
    private readonly ReadModeration _moderation;
    private readonly IWireGuardDevice _device;
    private readonly TunnelCounters _counters;
    private readonly IActorRef _owner;
    private readonly Thread _thread;
    private readonly ReaderPair? _pair;
    private readonly ReaderPair.Side _side;
    // One pass at a time on this device, by this thread or by the partner's (TryReadForPartner).
    private readonly Lock _gate = new();
    // Not readonly: the steps hold per-read state (groups) and must be called in place, never
    // copied. Used under _gate only, except WaitReadable and Kick, which touch none of that state
    // (WaitReadable reads the device's pending flag without the gate: at worst one extra pass).
    private TSteps _steps;
    private ReplyPoll _replyPoll;
    private int _held; // _buffers[0.._held) are rented and ours; under _gate
    private volatile bool _stopping;
    private bool _started;
    private long _pausedNoticeAt = long.MinValue; // when the owner was last told ReadsPaused

    public BatchReaderThread(string name, int batchSize, TSteps steps, IWireGuardDevice device, TunnelCounters counters, IActorRef owner,
        ReaderPair? pair = null, ReaderPair.Side side = default, TimeSpan replyPollMax = default, TimeSpan readModeration = default)
    {
        _buffers = new PacketBuffer[batchSize];
        _steps = steps;
        _device = device;
        _counters = counters;
        _owner = owner;
        _pair = pair;
        _side = side;
        _replyPoll = new ReplyPoll(pair is null ? TimeSpan.Zero : replyPollMax);
        _moderation = new ReadModeration(readModeration);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>Starts the thread; once only, and never after <see cref="Stop"/>.</summary>
    public void Start()
    {
        if (_started || _stopping)
        {
            return;
        }
        _started = true;
        _pair?.Join(_side, this);
        Interlocked.Increment(ref _counters.ReaderThreads);
        _thread.Start();
    }

    /// <summary>Wakes the blocked read and joins the thread; false if it did not end within <paramref name="timeout"/>.</summary>
    public bool Stop(TimeSpan timeout)
    {
        _stopping = true;
        _pair?.Leave(_side, this);
        _steps.Wake();
        return !_started || _thread.Join(timeout);
    }

    public int TryReadForPartner()
    {
        if (_stopping || !_gate.TryEnter())
        {
            return -1;
        }
        try
        {
            if (_stopping)
            {
                return -1;
            }
            int read = Math.Max(Pass(out _, PartnerReadLimit), 0);
            if (_steps.HasPending)
            {
                // This read left packets in the device object (a super-packet's segments, GRO
                // leftovers). This device's own thread is blocked in poll and would not see them
                // until the next packet arrives: kick it. One pass of at most PartnerReadLimit
                // packets here, so a partner never takes over a busy device.
                _steps.Kick();
            }
            return read;
        }
        catch (Exception e)
        {
            // This device failed on the partner's thread: report it to this device's actor, and
            // let the partner go on with its own device.
            ReportFailure(e);
            _stopping = true;
            return -1;
        }
        finally
        {
            _gate.Exit();
        }
    }

    private void Run()
    {
        try
        {
            while (!_stopping)
            {
                long waitStart = Stopwatch.GetTimestamp();
                if (!_steps.WaitReadable(-1))
                {
                    continue; // woken: stopping
                }
                bool fromIdle = Stopwatch.GetTimestamp() - waitStart >= IdleTicks;
                int read;
                long bytes;
                lock (_gate)
                {
                    if (_stopping)
                    {
                        break; // stopped, or failed in a pass on the partner's thread
                    }
                    read = Pass(out bytes, fromIdle ? FirstReadAfterIdleMost : int.MaxValue);
                }
                if (read < 0)
                {
                    // Every buffer is in flight: back-pressure instead of unbounded memory.
                    Interlocked.Increment(ref _counters.PoolExhausted);
                    NoticePaused();
                    Thread.Sleep(1);
                }
                else if (read > 0 && fromIdle && _replyPoll.Enabled && _pair?.PartnerOf(_side) is { } partner)
                {
                    PollForReply(partner);
                }
                else if (_moderation.ShouldPause(read, bytes, fromIdle))
                {
                    // A few bulk packets while a stream runs: let the next read find more (ReadModeration).
                    Native.MicroSleep.For(_moderation.Microseconds);
                }
            }
        }
        catch (Exception e)
        {
            ReportFailure(e);
        }
        finally
        {
            // A plain thread: an exception escaping here would end the process. Report it instead.
            try
            {
                lock (_gate)
                {
                    _stopping = true;
                    for (int i = 0; i < _held; i++)
                    {
                        _buffers[i]?.Return();
                        _buffers[i] = null!;
                    }
                    _held = 0;
                    _steps.Release();
                }
            }
            catch (Exception e)
            {
                ReportFailure(e);
            }
            Interlocked.Decrement(ref _counters.ReaderThreads);
        }
    }

    /// <summary>
    /// One read of at most <paramref name="most"/> packets and its hand-on, under <see cref="_gate"/>.
    /// Returns how many packets were read, or -1 when no buffer could be rented; <paramref name="bytes"/>: their length.
    /// </summary>
    private int Pass(out long bytes, int most = int.MaxValue)
    {
        bytes = 0;
        Refill();
        if (_held == 0)
        {
            return -1;
        }
        int read = _steps.TryReadBatch(_buffers.AsSpan(0, Math.Min(_held, most)));
        if (read <= 0)
        {
            return 0;
        }
        for (int i = 0; i < read; i++)
        {
            // Ownership moves to Route (a group, or back to the pool): the cleanup must not return
            // this buffer a second time. Route can only throw before it hands the buffer on
            // (lookups, renting a group), so on a throw it is still ours to return.
            var buffer = _buffers[i];
            _buffers[i] = null!;
            bytes += buffer.Length; // before Route: after it the buffer is someone else's
            try
            {
                _steps.Route(buffer);
            }
            catch
            {
                buffer.Return();
                throw;
            }
        }
        // Keep the unread buffers for the next read.
        int left = _held - read;
        Array.Copy(_buffers, read, _buffers, 0, left);
        Array.Clear(_buffers, left, read);
        _held = left;
        _steps.Flush();
        // Full again before the next wait: an idle reader holds a whole batch, the same number of
        // buffers whatever it read last (what a leak check compares against).
        Refill();
        return read;
    }

    private void Refill()
    {
        while (_held < _buffers.Length && _device.Pool.TryRent(out var buffer))
        {
            _buffers[_held++] = buffer;
        }
    }

    /// <summary>Busy-polls the partner's device for the reply to what this thread just handed on (see the class comment).</summary>
    private void PollForReply(IPartnerReader partner)
    {
        long start = Stopwatch.GetTimestamp();
        long limit = _replyPoll.Begin();
        while (!_stopping)
        {
            int read = partner.TryReadForPartner();
            if (read != 0)
            {
                if (read > 0)
                {
                    _replyPoll.Caught();
                }
                return; // handed on here, or the partner's own thread has it
            }
            if (Stopwatch.GetTimestamp() - start >= limit)
            {
                _replyPoll.Missed();
                return;
            }
            if (_steps.WaitReadable(0))
            {
                return; // our own device has work
            }
            // Let a thread that is runnable on this CPU go first: on two cores the thread that
            // produces the reply (another daemon, or the kernel's) may be waiting for this one.
            Thread.Yield();
        }
    }

    /// <summary>Tells the owner its reads wait for buffers (<see cref="ReadsPaused"/>), at most once per interval.</summary>
    private void NoticePaused()
    {
        long now = Stopwatch.GetTimestamp();
        if (_pausedNoticeAt != long.MinValue && now - _pausedNoticeAt < PausedNoticeTicks)
        {
            return;
        }
        _pausedNoticeAt = now;
        var pool = _device.Pool;
        _owner.Tell(new ReadsPaused(_thread.Name ?? "reader", pool.Outstanding, pool.MaxBuffers));
    }

    private void ReportFailure(Exception e)
    {
        if (!_stopping)
        {
            _owner.Tell(new IoThreadFailed(ExceptionDispatchInfo.Capture(e)));
        }
    }
}
