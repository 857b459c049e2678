using System.Diagnostics;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// Packets per second for loopback UDP with per-datagram ECN control messages, the four
/// combinations of sendmmsg/sendmsg and recvmmsg/recvmsg measured in interleaved rounds, so that
/// load from other processes on a shared machine falls on all of them alike (BenchmarkDotNet runs
/// them one after the other). Each operation sends 64 datagrams of 1452 bytes to ::1 and receives them.
///
///     dotnet run -c Release --project benchmarks/Benchmarks -- udp-pps [rounds] [datagram length, default 1452]
/// </summary>
public static class UdpBatchPps
{
    private const int Batch = 64;
    private const int OperationsPerRound = 1000; // 64,000 datagrams per variant and round

    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 15;
        int length = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1452;
        var variants = new[]
        {
            new Variant("sendmmsg + recvmmsg", true, true, length),
            new Variant("sendmsg  + recvmmsg", false, true, length),
            new Variant("sendmmsg + recvmsg ", true, false, length),
            new Variant("sendmsg  + recvmsg ", false, false, length),
        };
        try
        {
            foreach (var variant in variants)
            {
                variant.RunOperations(OperationsPerRound); // warm-up
            }
            for (int round = 0; round < rounds; round++)
            {
                for (int k = 0; k < variants.Length; k++)
                {
                    Variant variant = variants[(round + k) % variants.Length]; // rotate the order
                    long start = Stopwatch.GetTimestamp();
                    variant.RunOperations(OperationsPerRound);
                    double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    variant.Rates.Add(OperationsPerRound * Batch / seconds);
                }
            }
            Console.WriteLine($"loopback UDP ::1, {length}-byte datagrams with ECN cmsgs, batches of {Batch}, {rounds} interleaved rounds of {OperationsPerRound * Batch} datagrams");
            Console.WriteLine("| variant | median pps | best pps | median us/datagram (send+receive) |");
            Console.WriteLine("|---|---:|---:|---:|");
            foreach (var variant in variants)
            {
                variant.Rates.Sort();
                double median = variant.Rates[variant.Rates.Count / 2];
                double best = variant.Rates[^1];
                Console.WriteLine($"| {variant.Name} | {median:N0} | {best:N0} | {1e6 / median:F2} |");
            }
        }
        finally
        {
            foreach (var variant in variants)
            {
                variant.Dispose();
            }
        }
    }

    private sealed class Variant : IDisposable
    {
        private static readonly Ecn[] Codepoints = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];
        private readonly PacketBufferPool _pool = new(preallocate: 2 * Batch);
        private readonly LinuxUdpSocket _sender;
        private readonly LinuxUdpSocket _receiver;
        private readonly PacketBuffer[] _outgoing = new PacketBuffer[Batch];
        private readonly PacketBuffer[] _incoming = new PacketBuffer[Batch];

        public Variant(string name, bool sendMmsg, bool receiveMmsg, int length)
        {
            Name = name;
            _sender = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = sendMmsg, BatchSize = Batch });
            _receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = receiveMmsg, BatchSize = Batch });
            var destination = UdpEndpoint.FromIPEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, _receiver.LocalPort));
            for (int i = 0; i < Batch; i++)
            {
                PacketBuffer buffer = _pool.Rent();
                buffer.SetData(PacketBuffer.Headroom, length);
                buffer.Data.Fill((byte)i);
                buffer.Ecn = Codepoints[i % 4];
                buffer.Endpoint = destination;
                _outgoing[i] = buffer;
                _incoming[i] = _pool.Rent();
            }
        }

        public string Name { get; }

        public List<double> Rates { get; } = [];

        public void RunOperations(int operations)
        {
            for (int op = 0; op < operations; op++)
            {
                int sent = _sender.SendBatch(_outgoing);
                int received = 0;
                while (received < sent)
                {
                    received += _receiver.ReceiveBatch(_incoming.AsSpan(0, Math.Min(Batch, sent - received)));
                }
            }
            if (_sender.SendErrors + _sender.SendDropped != 0)
            {
                throw new InvalidOperationException($"{Name}: {_sender.SendErrors + _sender.SendDropped} datagrams were not sent");
            }
        }

        public void Dispose()
        {
            _sender.Dispose();
            _receiver.Dispose();
        }
    }
}
