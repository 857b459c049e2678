using System.Runtime.ExceptionServices;
using Akka.Actor;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// The dedicated reader thread of an I/O actor (STYLE.md rule 8: no blocking call on the shared
/// dispatcher), shared by TunReader and SocketIO. Each pass rents up to a batch of pooled buffers,
/// blocks in <see cref="IBatchReaderSteps.ReadBatch"/>, routes every filled buffer, keeps the unfilled
/// ones for the next read and flushes the per-peer groups. A failure is told to the owning actor as
/// <see cref="IoThreadFailed"/> (unless it is stopping), which rethrows it so its supervisor escalates.
/// </summary>
internal sealed class BatchReaderThread<TSteps> where TSteps : struct, IBatchReaderSteps
{
    private readonly PacketBuffer[] _buffers;
    private readonly IWireGuardDevice _device;
    private readonly TunnelCounters _counters;
    private readonly IActorRef _owner;
    private readonly Thread _thread;
    // Not readonly: the steps hold per-read state (groups) and must be called in place, never copied.
    private TSteps _steps;
    private volatile bool _stopping;
    private bool _started;

    public BatchReaderThread(string name, int batchSize, TSteps steps, IWireGuardDevice device, TunnelCounters counters, IActorRef owner)
    {
        _buffers = new PacketBuffer[batchSize];
        _steps = steps;
        _device = device;
        _counters = counters;
        _owner = owner;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    public void Start()
    {
        _started = true;
        _thread.Start();
    }

    /// <summary>Wakes the blocked read and joins the thread; false if it did not end within <paramref name="timeout"/>.</summary>
    public bool Stop(TimeSpan timeout)
    {
        _stopping = true;
        _steps.Wake();
        return !_started || _thread.Join(timeout);
    }

    private void Run()
    {
        int held = 0; // _buffers[0..held) are rented and ours
        try
        {
            while (!_stopping)
            {
                while (held < _buffers.Length && _device.Pool.TryRent(out var buffer))
                {
                    _buffers[held++] = buffer;
                }
                if (held == 0)
                {
                    // Every buffer is in flight: back-pressure instead of unbounded memory.
                    Interlocked.Increment(ref _counters.PoolExhausted);
                    Thread.Sleep(1);
                    continue;
                }
                int read = _steps.ReadBatch(_buffers.AsSpan(0, held));
                if (read <= 0)
                {
                    continue;
                }
                for (int i = 0; i < read; i++)
                {
                    // Ownership moves to Route (a group, or back to the pool): the cleanup below must
                    // not return this buffer a second time. Route can only throw before it hands the
                    // buffer on (lookups, renting a group), so on a throw it is still ours to return.
                    var buffer = _buffers[i];
                    _buffers[i] = null!;
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
                int left = held - read;
                Array.Copy(_buffers, read, _buffers, 0, left);
                Array.Clear(_buffers, left, read);
                held = left;
                _steps.Flush();
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
                for (int i = 0; i < held; i++)
                {
                    _buffers[i]?.Return();
                    _buffers[i] = null!;
                }
                _steps.Release();
            }
            catch (Exception e)
            {
                ReportFailure(e);
            }
        }
    }

    private void ReportFailure(Exception e)
    {
        if (!_stopping)
        {
            _owner.Tell(new IoThreadFailed(ExceptionDispatchInfo.Capture(e)));
        }
    }
}
