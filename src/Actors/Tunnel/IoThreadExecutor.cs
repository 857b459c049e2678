using Akka.Dispatch;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// One dedicated thread that runs the mailbox of one I/O actor (SocketIO or TunWriter). Unlike the
/// single-thread pool Akka's PinnedDispatcher uses (Helios DedicatedThreadPool), an idle thread here
/// blocks in Monitor.Wait at once instead of spinning in sched_yield first: with one wake-up per
/// batch that spinning was about a fifth of the daemon's CPU time (perf, issue 8) and took the two
/// cores from the reader threads. No allocation per Execute (Queue grows only to the peak depth).
/// </summary>
public sealed class IoThreadExecutor : ExecutorService
{
    private readonly Queue<IRunnable> _queue = new();
    private readonly Thread _thread;
    private bool _waiting;
    private bool _shutdown;

    public IoThreadExecutor(string id) : base(id)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = id };
        _thread.Start();
    }

    public override void Execute(IRunnable run)
    {
        lock (_queue)
        {
            if (_shutdown)
            {
                // Akka runs a mailbox scheduled after shutdown elsewhere; here it has no thread left.
                throw new RejectedExecutionException($"I/O thread {Id} is shut down");
            }
            _queue.Enqueue(run);
            if (_waiting)
            {
                Monitor.Pulse(_queue);
            }
        }
    }

    public override void Shutdown()
    {
        lock (_queue)
        {
            _shutdown = true;
            Monitor.Pulse(_queue);
        }
    }

    private void Loop()
    {
        while (true)
        {
            IRunnable run;
            lock (_queue)
            {
                while (_queue.Count == 0)
                {
                    if (_shutdown)
                    {
                        return;
                    }
                    _waiting = true;
                    Monitor.Wait(_queue);
                    _waiting = false;
                }
                run = _queue.Dequeue();
            }
            // A mailbox run handles its own actor's failures (supervision); anything escaping here
            // is a dispatcher bug, as on any Akka executor.
            run.Run();
        }
    }
}
