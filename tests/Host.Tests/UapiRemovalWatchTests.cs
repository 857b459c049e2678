using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Removing the UAPI socket file stops the daemon (wireguard-go's signal). The removal is watched
/// with inotify; when the watch cannot be made (no watcher, or EnableRaisingEvents throws, as when
/// the user's inotify instances are used up) or fails later (an overflow), the server checks the
/// file every 250 ms instead, logs why, and still notices the removal.
/// </summary>
public sealed class UapiRemovalWatchTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>A watcher whose failure the test raises (FileSystemWatcher.OnError is protected).</summary>
    private sealed class FailingWatcher(string path) : FileSystemWatcher(System.IO.Path.GetDirectoryName(path)!, System.IO.Path.GetFileName(path))
    {
        public void Fail(string problem) => OnError(new ErrorEventArgs(new IOException(problem)));
    }

    private static async Task AssertStopsOnRemovalAsync(UapiServer server)
    {
        Assert.False(server.SocketRemoved.IsCompleted);
        File.Delete(server.SocketPath);
        var completed = await Task.WhenAny(server.SocketRemoved, Task.Delay(Bound));
        Assert.Same(server.SocketRemoved, completed);
    }

    [Fact]
    public async Task Without_a_watcher_the_removal_is_found_by_polling()
    {
        var logger = new ListLogger();
        string path = UapiSocketPath.For(UapiServerFixture.UniqueName());
        var server = UapiServer.Start(path, new InMemoryTunnelControl(), logger,
            _ => throw new IOException("The configured user limit (128) on the number of inotify instances has been reached"));
        try
        {
            await WaitForAsync(() => logger.At(LogLevel.Warning).Any());
            string warning = Assert.Single(logger.At(LogLevel.Warning));
            Assert.Contains(path, warning);
            Assert.Contains("every 250 ms", warning);
            Assert.Contains("inotify instances", warning);
            await AssertStopsOnRemovalAsync(server);
        }
        finally
        {
            await server.DisposeAsync();
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_real_watch_that_fails_falls_back_to_polling()
    {
        var logger = new ListLogger();
        string path = UapiSocketPath.For(UapiServerFixture.UniqueName());
        string gone = Directory.CreateTempSubdirectory("fzt-watch-").FullName;
        var server = UapiServer.Start(path, new InMemoryTunnelControl(), logger, _ =>
        {
            // A real watcher whose directory is gone: its inotify watch cannot be added, which .NET
            // reports through the Error event. (inotify_init failing, as when the instances are used
            // up, throws from EnableRaisingEvents instead; the test above stands in for that with
            // a factory that throws, caught by the same handler.)
            var watcher = new FileSystemWatcher(gone) { NotifyFilter = NotifyFilters.FileName };
            Directory.Delete(gone);
            return watcher;
        });
        try
        {
            await WaitForAsync(() => logger.At(LogLevel.Warning).Any());
            string warning = Assert.Single(logger.At(LogLevel.Warning));
            Assert.Contains(path, warning);
            Assert.Contains("every 250 ms", warning);
            await AssertStopsOnRemovalAsync(server);
        }
        finally
        {
            await server.DisposeAsync();
            File.Delete(path);
            if (Directory.Exists(gone))
            {
                Directory.Delete(gone);
            }
        }
    }

    [Fact]
    public async Task A_failed_inotify_watch_falls_back_to_polling()
    {
        var logger = new ListLogger();
        string path = UapiSocketPath.For(UapiServerFixture.UniqueName());
        var created = new TaskCompletionSource<FailingWatcher>(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = UapiServer.Start(path, new InMemoryTunnelControl(), logger, p =>
        {
            var watcher = new FailingWatcher(p) { NotifyFilter = NotifyFilters.FileName };
            created.SetResult(watcher);
            return watcher;
        });
        try
        {
            var watcher = await created.Task.WaitAsync(Bound);
            await WaitForAsync(() => watcher.EnableRaisingEvents);
            watcher.Fail("inotify queue overflow");
            await WaitForAsync(() => logger.At(LogLevel.Warning).Any());
            string warning = Assert.Single(logger.At(LogLevel.Warning));
            Assert.Contains("inotify queue overflow", warning);
            Assert.Contains("every 250 ms", warning);
            await AssertStopsOnRemovalAsync(server);
        }
        finally
        {
            await server.DisposeAsync();
            File.Delete(path);
        }
    }

    [Fact]
    public async Task With_inotify_the_removal_is_noticed_and_nothing_is_logged_as_a_problem()
    {
        var logger = new ListLogger();
        string path = UapiSocketPath.For(UapiServerFixture.UniqueName());
        var server = UapiServer.Start(path, new InMemoryTunnelControl(), logger);
        try
        {
            await AssertStopsOnRemovalAsync(server);
            Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
            Assert.Contains(logger.At(LogLevel.Information), m => m.Contains("was removed; shutting down", StringComparison.Ordinal));
        }
        finally
        {
            await server.DisposeAsync();
            File.Delete(path);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(20);
        }
    }
}
