using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A step's output: datagrams are sent only at the flush, after the step has released the peer's
/// lock, also a batch that filled (a send may wait for room in the socket buffer); a full batch of
/// packets is written at once; everything goes on in the order it was added.
/// </summary>
public sealed class PeerOutputTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private readonly PacketBufferPool _pool = new(preallocate: 16, maxBuffers: 1024);

    private sealed class RecordingOutput : PeerOutput
    {
        public List<List<int>> Sent { get; } = [];
        public List<List<int>> Written { get; } = [];

        protected override void Send(SendDatagrams batch) => Sent.Add(NumberedBuffers.Drain(batch));

        protected override void Write(WritePackets batch) => Written.Add(NumberedBuffers.Drain(batch));
    }

    private PacketBuffer Numbered(int number) => NumberedBuffers.Rent(_pool, number);

    [Fact]
    public void Full_batches_of_datagrams_wait_for_the_flush_and_leave_in_order()
    {
        var output = new RecordingOutput();
        int count = 2 * PacketBatch.Capacity + 3;
        for (int i = 0; i < count; i++)
        {
            output.AddDatagram(Numbered(i), sender: null);
        }
        Assert.Empty(output.Sent); // two batches filled: neither was sent inside the step

        output.Flush();
        Assert.Equal([PacketBatch.Capacity, PacketBatch.Capacity, 3], output.Sent.Select(b => b.Count));
        Assert.Equal(Enumerable.Range(0, count), output.Sent.SelectMany(b => b));

        output.Flush();
        Assert.Equal(3, output.Sent.Count); // nothing twice
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_full_batch_of_packets_is_written_at_once()
    {
        var output = new RecordingOutput();
        for (int i = 0; i < PacketBatch.Capacity + 1; i++)
        {
            output.AddPacket(Numbered(i));
        }
        Assert.Equal([PacketBatch.Capacity], output.Written.Select(b => b.Count));

        output.Flush();
        Assert.Equal(Enumerable.Range(0, PacketBatch.Capacity + 1), output.Written.SelectMany(b => b));
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void Release_returns_the_batches_still_waiting_for_the_flush()
    {
        var output = new RecordingOutput();
        for (int i = 0; i < PacketBatch.Capacity + 5; i++)
        {
            output.AddDatagram(Numbered(i), sender: null);
            output.AddPacket(Numbered(i));
        }
        output.Release();
        output.Flush();
        Assert.Empty(output.Sent);
        Assert.Single(output.Written); // the full one, written before the release
        Assert.Equal(0, _pool.Outstanding);
    }
}
