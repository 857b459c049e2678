using System.Diagnostics;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// Packets per second for loopback UDP with ECN control messages: UDP GSO + GRO, sendmmsg/recvmmsg
/// and one sendmsg/recvmsg per datagram, measured in interleaved rounds, so that load from other
/// processes on a shared machine falls on all of them alike (BenchmarkDotNet runs them one after
/// the other). Each operation sends 64 datagrams of 1452 bytes to ::1 and receives them.
///
/// Codepoints "runs": ECT(0) x40, CE x8, ECT(0) x16, as a flow with some congestion marks looks
/// (three GSO sends per batch, since one GSO send carries one codepoint). "alternating": the four
/// codepoints in turn, the worst case for GSO (no two neighbours may share a send).
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
            new Variant("GSO + GRO, runs", Offload.Gso | Offload.Gro, true, true, alternating: false, length),
            new Variant("GSO + recvmmsg (no GRO), runs", Offload.Gso, true, true, alternating: false, length),
            new Variant("sendmmsg + recvmmsg, runs", Offload.None, true, true, alternating: false, length),
            new Variant("sendmsg + recvmsg (per datagram), runs", Offload.None, false, false, alternating: false, length),
            new Variant("GSO + GRO, alternating", Offload.Gso | Offload.Gro, true, true, alternating: true, length),
            new Variant("sendmmsg + recvmmsg, alternating", Offload.None, true, true, alternating: true, length),
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
            Console.WriteLine("| variant (codepoints) | median pps | best pps | median us/datagram (send+receive) | GSO sends/batch | GRO reads/batch |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            foreach (var variant in variants)
            {
                variant.Rates.Sort();
                double median = variant.Rates[variant.Rates.Count / 2];
                double best = variant.Rates[^1];
                Console.WriteLine($"| {variant.Name} | {median:N0} | {best:N0} | {1e6 / median:F2} | {variant.GsoSendsPerBatch:F1} | {variant.GroReadsPerBatch:F1} |");
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

    [Flags]
    private enum Offload
    {
        None = 0,
        Gso = 1,
        Gro = 2,
    }

    private sealed class Variant : IDisposable
    {
        private static readonly Ecn[] Codepoints = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];
        private long _batches;
        private readonly PacketBufferPool _pool = new(preallocate: 2 * Batch);
        private readonly LinuxUdpSocket _sender;
        private readonly LinuxUdpSocket _receiver;
        private readonly PacketBuffer[] _outgoing = new PacketBuffer[Batch];
        private readonly PacketBuffer[] _incoming = new PacketBuffer[Batch];

        public Variant(string name, Offload offload, bool sendMmsg, bool receiveMmsg, bool alternating, int length)
        {
            Name = name;
            _sender = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = sendMmsg, BatchSize = Batch, UseGso = (offload & Offload.Gso) != 0, UseGro = false });
            _receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = receiveMmsg, BatchSize = Batch, UseGso = false, UseGro = (offload & Offload.Gro) != 0 });
            if (_sender.GsoEnabled != ((offload & Offload.Gso) != 0) || _receiver.GroEnabled != ((offload & Offload.Gro) != 0))
            {
                throw new InvalidOperationException($"{name}: this kernel lacks UDP GSO or GRO");
            }
            var destination = UdpEndpoint.FromIPEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, _receiver.LocalPort));
            for (int i = 0; i < Batch; i++)
            {
                PacketBuffer buffer = _pool.Rent();
                buffer.SetData(PacketBuffer.Headroom, length);
                buffer.Data.Fill((byte)i);
                buffer.Ecn = alternating ? Codepoints[i % 4] : i >= 40 && i < 48 ? Ecn.Ce : Ecn.Ect0;
                buffer.Endpoint = destination;
                _outgoing[i] = buffer;
                _incoming[i] = _pool.Rent();
            }
        }

        public string Name { get; }

        public List<double> Rates { get; } = [];

        public double GsoSendsPerBatch => (double)_sender.GsoSends / _batches;

        public double GroReadsPerBatch => (double)_receiver.GroReads / _batches;

        public void RunOperations(int operations)
        {
            for (int op = 0; op < operations; op++)
            {
                int sent = _sender.SendBatch(_outgoing);
                _batches++;
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
