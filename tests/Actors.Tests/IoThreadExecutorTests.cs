using Akka.Dispatch;
using Firezone.Actors.Actors.Tunnel;

namespace Firezone.Actors.Actors.Tests;

/// <summary>The I/O dispatcher's thread: one thread, FIFO, drains what was queued before it stops.</summary>
public sealed class IoThreadExecutorTests
{
    private sealed class Recorder(List<int> order, List<int> threads, CountdownEvent done, int index) : IRunnable
    {
        public void Run()
        {
            lock (order)
            {
                order.Add(index);
                threads.Add(Environment.CurrentManagedThreadId);
            }
            done.Signal();
        }

        // IRunnable is also a thread-pool work item on .NET 6+.
        public void Execute() => Run();
    }

    [Fact]
    public void Runs_every_runnable_in_order_on_one_dedicated_thread_and_rejects_after_shutdown()
    {
        const int count = 200;
        var order = new List<int>();
        var threads = new List<int>();
        using var done = new CountdownEvent(count);
        var executor = new IoThreadExecutor("io-thread-test");
        for (int i = 0; i < count; i++)
        {
            executor.Execute(new Recorder(order, threads, done, i));
        }
        executor.Shutdown();
        Assert.True(done.Wait(TimeSpan.FromSeconds(10)), "queued runnables ran before the thread stopped");
        Assert.Equal(Enumerable.Range(0, count), order);
        Assert.Single(threads.Distinct());
        Assert.NotEqual(Environment.CurrentManagedThreadId, threads[0]);
        Assert.Throws<RejectedExecutionException>(() => executor.Execute(new Recorder(order, threads, done, count)));
    }
}
