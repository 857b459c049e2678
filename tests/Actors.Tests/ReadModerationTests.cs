using Firezone.Actors.Actors.Io;

namespace Firezone.Actors.Actors.Tests;

/// <summary>When a reader pauses before its next read: only after a few bulk packets while a stream runs.</summary>
public sealed class ReadModerationTests
{
    private static readonly ReadModeration On = new(TimeSpan.FromMicroseconds(100));

    [Fact]
    public void A_few_full_size_packets_while_streaming_pause_the_reader()
    {
        Assert.Equal(100u, On.Microseconds);
        Assert.True(On.ShouldPause(read: 1, bytes: 1392, fromIdle: false));
        Assert.True(On.ShouldPause(read: 3, bytes: 3 * 1440, fromIdle: false));
        Assert.True(On.ShouldPause(read: ReadModeration.FewPackets - 1, bytes: (ReadModeration.FewPackets - 1) * ReadModeration.BulkBytes, fromIdle: false));
    }

    [Theory]
    [InlineData(2, 2 * 1392, true)] // woke from idle: a ping or a burst's first packet (reply polling applies)
    [InlineData(1, 52, false)] // an ACK
    [InlineData(4, 2 * 1392 + 2 * 52, false)] // half bulk, half ACKs: on average below BulkBytes
    [InlineData(8, 8 * 1392, false)] // a batch that is large already
    [InlineData(0, 0, false)] // nothing read
    public void Small_packets_large_reads_and_reads_from_idle_never_pause(int read, long bytes, bool fromIdle)
    {
        Assert.False(On.ShouldPause(read, bytes, fromIdle));
    }

    [Fact]
    public void Zero_turns_it_off()
    {
        var off = new ReadModeration(TimeSpan.Zero);
        Assert.Equal(0u, off.Microseconds);
        Assert.False(off.ShouldPause(read: 1, bytes: 1392, fromIdle: false));
    }
}
