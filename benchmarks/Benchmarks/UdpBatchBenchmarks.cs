using BenchmarkDotNet.Attributes;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// Loopback UDP through the kernel: 64 datagrams of 1452 bytes (a 1500 MTU path less IPv6 and UDP
/// headers), each with its own ECN control message (codepoints cycle), sent to ::1 and received,
/// per operation. Reported time is per datagram (OperationsPerInvoke), so packets per second =
/// 1e9 / Mean[ns]. Compares recvmmsg/sendmmsg batches with one recvmsg/sendmsg per datagram.
///
///     dotnet run -c Release --project benchmarks/Benchmarks -- --filter '*UdpBatch*'
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 20)]
public class UdpBatchBenchmarks
{
    private const int Batch = 64;
    private const int DatagramLength = 1452;
    private static readonly Ecn[] Codepoints = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];

    private PacketBufferPool _pool = null!;
    private LinuxUdpSocket _sender = null!;
    private LinuxUdpSocket _receiver = null!;
    private PacketBuffer[] _outgoing = null!;
    private PacketBuffer[] _incoming = null!;

    /// <summary>sendmmsg (true) or one sendmsg per datagram (false).</summary>
    [Params(true, false)]
    public bool SendMmsg { get; set; }

    /// <summary>recvmmsg (true) or one recvmsg per datagram (false).</summary>
    [Params(true, false)]
    public bool ReceiveMmsg { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _pool = new PacketBufferPool(preallocate: 2 * Batch);
        _sender = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = SendMmsg, BatchSize = Batch });
        _receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = ReceiveMmsg, BatchSize = Batch });
        var destination = UdpEndpoint.FromIPEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, _receiver.LocalPort));
        _outgoing = new PacketBuffer[Batch];
        _incoming = new PacketBuffer[Batch];
        for (int i = 0; i < Batch; i++)
        {
            PacketBuffer buffer = _pool.Rent();
            buffer.SetData(PacketBuffer.Headroom, DatagramLength);
            buffer.Data.Fill((byte)i);
            buffer.Ecn = Codepoints[i % 4];
            buffer.Endpoint = destination;
            _outgoing[i] = buffer;
            _incoming[i] = _pool.Rent();
        }
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int SendAndReceive64()
    {
        int sent = _sender.SendBatch(_outgoing);
        int received = 0;
        while (received < sent)
        {
            received += _receiver.ReceiveBatch(_incoming.AsSpan(0, Math.Min(Batch, sent - received)));
        }
        return received;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_sender.SendErrors + _sender.SendDropped != 0)
        {
            throw new InvalidOperationException($"{_sender.SendErrors + _sender.SendDropped} datagrams were not sent");
        }
        _sender.Dispose();
        _receiver.Dispose();
    }
}
