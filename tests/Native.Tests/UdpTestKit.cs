using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>Helpers for loopback datagram tests: numbered payloads, and a bounded receive.</summary>
internal static class UdpTestKit
{
    public static PacketBuffer Datagram(PacketBufferPool pool, int number, int length, Ecn ecn, UdpEndpoint destination)
    {
        PacketBuffer buffer = pool.Rent();
        buffer.SetData(PacketBuffer.Headroom, length);
        Span<byte> data = buffer.Data;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(number + i);
        }
        buffer.Ecn = ecn;
        buffer.Endpoint = destination;
        return buffer;
    }

    /// <summary>The number a <see cref="Datagram"/> payload was made from, after checking the whole pattern.</summary>
    public static int NumberOf(PacketBuffer buffer)
    {
        ReadOnlySpan<byte> data = buffer.Data;
        int number = data[0];
        for (int i = 0; i < data.Length; i++)
        {
            Assert.Equal((byte)(number + i), data[i]);
        }
        return number;
    }

    /// <summary>
    /// Receives until <paramref name="expected"/> datagrams arrived, or fails after 10 s (a timer wakes
    /// the receiver, which then returns 0). Every received buffer is in the returned list; the caller
    /// returns them to the pool.
    /// </summary>
    public static List<PacketBuffer> ReceiveExactly(LinuxUdpSocket socket, PacketBufferPool pool, int expected) =>
        ReceiveExactly(socket, pool, expected, TimeSpan.FromSeconds(10))!; // fails the test on timeout

    /// <summary>
    /// As <see cref="ReceiveExactly(LinuxUdpSocket, PacketBufferPool, int)"/>, within <paramref name="timeout"/>;
    /// <paramref name="failOnTimeout"/> false: null on timeout (what arrived returned to the pool) instead of failing.
    /// </summary>
    public static List<PacketBuffer>? ReceiveExactly(LinuxUdpSocket socket, PacketBufferPool pool, int expected, TimeSpan timeout, bool failOnTimeout = true)
    {
        var received = new List<PacketBuffer>();
        var batch = new PacketBuffer[64];
        using var deadline = new Timer(_ => socket.WakeReceiver(), null, timeout, Timeout.InfiniteTimeSpan);
        while (received.Count < expected)
        {
            for (int i = 0; i < batch.Length; i++)
            {
                batch[i] = pool.Rent();
            }
            int count = socket.ReceiveBatch(batch);
            for (int i = 0; i < batch.Length; i++)
            {
                if (i < count)
                {
                    received.Add(batch[i]);
                }
                else
                {
                    batch[i].Return();
                }
            }
            if (count == 0)
            {
                foreach (var buffer in received)
                {
                    buffer.Return();
                }
                if (!failOnTimeout)
                {
                    return null;
                }
                // The socket's own counts tell a loss in the kernel from reads this code dropped.
                Assert.Fail($"only {received.Count} of {expected} datagrams arrived within {timeout.TotalSeconds:0.#} s "
                    + $"(receiver: {socket.ReceiveTruncated} cut short, {socket.ReceiveControlTruncated} with cut control data, "
                    + $"{socket.GroReads} GRO reads, {socket.ReceivedOversize} oversize)");
            }
        }
        return received;
    }

    public static UdpEndpoint Endpoint(string address, int port) => UdpEndpoint.FromIPEndPoint(new IPEndPoint(IPAddress.Parse(address), port));
}
