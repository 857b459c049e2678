using System.Collections.Concurrent;
using System.Text;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// What a large UAPI request leaves behind is handed back half a second after it: after a set of
/// thousands of lines with a compacting collection (the idle-peer figure is read after `wg
/// addconf`), after a get of thousands of peers with a background one. Until 2026-11-29 gets were
/// compacted too, which stopped every thread, the packet path's included, for 25 to 52 ms with
/// 10,000 peers: each poll of a monitoring agent (a Prometheus exporter's `wg show all dump`) a
/// stall longer than the socket's receive queue lasts at 1 Gbit/s. A background collection paused
/// the threads for 0.3 to 0.5 ms in all (GC.GetTotalPauseDuration around it, 2026-11-29).
/// </summary>
public sealed class TransientMemoryTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private sealed class Recorder
    {
        public BlockingCollection<MemoryReturn> Collections { get; } = [];

        public void Record(MemoryReturn kind) => Collections.Add(kind);

        public MemoryReturn Next() =>
            Collections.TryTake(out var kind, Bound) ? kind : throw new TimeoutException("no collection within 10 s");

        /// <summary>Nothing more within twice the delay.</summary>
        public void AssertNoMore() =>
            Assert.False(Collections.TryTake(out var kind, 2 * TransientMemory.Delay), $"one more collection: {kind}");
    }

    [Fact]
    public void Requests_within_the_delay_share_one_collection_of_the_strongest_kind()
    {
        var recorder = new Recorder();
        var memory = new TransientMemory(recorder.Record, CancellationToken.None);

        memory.Request(MemoryReturn.Background);
        memory.Request(MemoryReturn.Compacting);
        memory.Request(MemoryReturn.Background);
        Assert.Equal(MemoryReturn.Compacting, recorder.Next());
        recorder.AssertNoMore();

        memory.Request(MemoryReturn.Background); // after it ran, a request schedules a new one
        Assert.Equal(MemoryReturn.Background, recorder.Next());
        recorder.AssertNoMore();
    }

    /// <summary>
    /// A set that comes while a get's background collection waits raises it to a compaction that
    /// still waits the whole delay after the set (its peers' actors build their state meanwhile):
    /// it ran when the get's delay ended, as early as a few milliseconds after the set.
    /// The delay here is 2 s and the set comes a quarter of it after the get: with the real 500 ms
    /// and the set at 350 ms, a test thread that slept 150 ms longer than asked (a loaded 2-core
    /// machine) made its set after the background collection had run, and a correct one failed.
    /// Now that takes 1.5 s of lateness; the defect still compacts 1.5 s after the set, not 2 s.
    /// </summary>
    [Fact]
    public void A_compaction_raised_from_a_waiting_background_collection_still_waits_the_delay_after_its_request()
    {
        var delay = TimeSpan.FromSeconds(2);
        var recorder = new Recorder();
        var memory = new TransientMemory(recorder.Record, CancellationToken.None, delay);

        memory.Request(MemoryReturn.Background);
        Thread.Sleep(delay * 0.25);
        var raised = System.Diagnostics.Stopwatch.StartNew();
        memory.Request(MemoryReturn.Compacting);
        Assert.Equal(MemoryReturn.Compacting, recorder.Next());
        Assert.True(raised.Elapsed >= delay - TimeSpan.FromMilliseconds(20), $"compacted {raised.Elapsed.TotalMilliseconds:0} ms after the set");
        recorder.AssertNoMore();
    }

    [Fact]
    public void A_stop_before_the_delay_cancels_the_collection()
    {
        var recorder = new Recorder();
        using var stopping = new CancellationTokenSource();
        var memory = new TransientMemory(recorder.Record, stopping.Token);

        memory.Request(MemoryReturn.Compacting);
        stopping.Cancel();
        recorder.AssertNoMore();
    }

    [Fact]
    public async Task A_large_get_asks_for_a_background_collection_and_a_large_set_for_a_compacting_one()
    {
        var recorder = new Recorder();
        var control = new InMemoryTunnelControl();
        var server = UapiServer.Start(UapiSocketPath.For(UapiServerFixture.UniqueName()), control, new ListLogger(),
            UapiServer.WatchDirectory, returnMemory: recorder.Record);
        try
        {
            // A set of 999 peers is 2,997 lines: below the set's bound, but a get of them is not large.
            var set = new StringBuilder("set=1\n");
            for (int i = 0; i < 999; i++)
            {
                set.Append($"public_key={Key(i)}\nreplace_allowed_ips=true\nallowed_ip=10.1.{i / 256}.{i % 256}/32\n");
            }
            Assert.Equal(0, UapiRawClient.Errno(UapiRawClient.Exchange(server.SocketPath, set.Append('\n').ToString())));
            Assert.Equal(0, UapiRawClient.Errno(UapiRawClient.Exchange(server.SocketPath, "get=1\n\n")));
            recorder.AssertNoMore();

            Assert.Equal(0, UapiRawClient.Errno(UapiRawClient.Exchange(server.SocketPath,
                $"set=1\npublic_key={Key(999)}\nallowed_ip=10.1.3.231/32\n\n")));
            Assert.Equal(0, UapiRawClient.Errno(UapiRawClient.Exchange(server.SocketPath, "get=1\n\n"))); // 1,000 peers
            Assert.Equal(MemoryReturn.Background, recorder.Next());
            recorder.AssertNoMore();

            // 1,400 peers of 3 lines: a large set (sharing with a get right after it is the test above).
            set.Clear().Append("set=1\n");
            for (int i = 1000; i < 2400; i++)
            {
                set.Append($"public_key={Key(i)}\nreplace_allowed_ips=true\nallowed_ip=10.2.{i / 256}.{i % 256}/32\n");
            }
            Assert.Equal(0, UapiRawClient.Errno(UapiRawClient.Exchange(server.SocketPath, set.Append('\n').ToString())));
            Assert.Equal(MemoryReturn.Compacting, recorder.Next());
            recorder.AssertNoMore();
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static string Key(int i)
    {
        var key = new byte[WireGuardKey.Size];
        BitConverter.TryWriteBytes(key, i + 1);
        return Convert.ToHexStringLower(key);
    }
}
