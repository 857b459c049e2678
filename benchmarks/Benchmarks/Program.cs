using BenchmarkDotNet.Running;

namespace Firezone.Actors.Benchmarks;

public static class Program
{
    // dotnet run -c Release --project benchmarks/Benchmarks -- --filter '*'
    // dotnet run -c Release --project benchmarks/Benchmarks -- udp-pps   (interleaved loopback UDP packets per second)
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "udp-pps")
        {
            UdpBatchPps.Run(args);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
