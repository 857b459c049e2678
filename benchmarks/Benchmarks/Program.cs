using BenchmarkDotNet.Running;

namespace Firezone.Actors.Benchmarks;

public static class Program
{
    // dotnet run -c Release --project benchmarks/Benchmarks -- --filter '*'
    // dotnet run -c Release --project benchmarks/Benchmarks -- udp-pps   (interleaved loopback UDP packets per second)
    // dotnet run -c Release --project benchmarks/Benchmarks -- tun-read  (TCP out of a TUN device, offloads vs plain)
    // dotnet run -c Release --project benchmarks/Benchmarks -- load-peers ...  (N Clients in one process: scripts/bench/peers.py)
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "load-peers")
        {
            return LoadPeers.Run(args);
        }
        if (args.Length > 0 && args[0] == "udp-pps")
        {
            UdpBatchPps.Run(args);
            return 0;
        }
        if (args.Length > 0 && args[0] == "tun-read")
        {
            TunOffloadThroughput.Run(args);
            return 0;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
