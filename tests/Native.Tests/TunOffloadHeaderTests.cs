using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// virtio_net_hdr and the TUN_F_* offload flags against the C headers: gcc fills a struct
/// virtio_net_hdr and prints its bytes and the constants; <see cref="VirtioNetHeader.Write"/> must
/// produce the same bytes. The USO constants are checked where the installed headers have them.
/// </summary>
public sealed class TunOffloadHeaderTests
{
    private const string Program = """
        #include <stdio.h>
        #include <string.h>
        #include <linux/if_tun.h>
        #include <linux/virtio_net.h>
        #define P(name, value) printf("%s %ld\n", name, (long)(value))
        int main(void) {
            struct virtio_net_hdr h;
            memset(&h, 0, sizeof h);
            h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM; h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
            h.hdr_len = 0x1234; h.gso_size = 0x5678; h.csum_start = 0x9abc; h.csum_offset = 0xdef0;
            printf("bytes");
            for (size_t i = 0; i < sizeof h; i++) printf(" %02x", ((unsigned char *)&h)[i]);
            printf("\n");
            P("sizeof", sizeof h);
            P("F_NEEDS_CSUM", VIRTIO_NET_HDR_F_NEEDS_CSUM); P("F_DATA_VALID", VIRTIO_NET_HDR_F_DATA_VALID);
            P("GSO_NONE", VIRTIO_NET_HDR_GSO_NONE); P("GSO_TCPV4", VIRTIO_NET_HDR_GSO_TCPV4);
            P("GSO_UDP", VIRTIO_NET_HDR_GSO_UDP); P("GSO_TCPV6", VIRTIO_NET_HDR_GSO_TCPV6);
            P("GSO_ECN", VIRTIO_NET_HDR_GSO_ECN);
        #ifdef VIRTIO_NET_HDR_GSO_UDP_L4
            P("GSO_UDP_L4", VIRTIO_NET_HDR_GSO_UDP_L4);
        #endif
            P("TUN_F_CSUM", TUN_F_CSUM); P("TUN_F_TSO4", TUN_F_TSO4); P("TUN_F_TSO6", TUN_F_TSO6);
            P("TUN_F_TSO_ECN", TUN_F_TSO_ECN); P("TUN_F_UFO", TUN_F_UFO);
        #ifdef TUN_F_USO4
            P("TUN_F_USO4", TUN_F_USO4); P("TUN_F_USO6", TUN_F_USO6);
        #endif
            return 0;
        }
        """;

    [Fact]
    public void Virtio_net_hdr_layout_and_offload_constants_match_the_c_headers()
    {
        string directory = Directory.CreateTempSubdirectory("fz-vnet-").FullName;
        string output;
        try
        {
            string source = Path.Combine(directory, "vnet.c");
            string binary = Path.Combine(directory, "vnet");
            File.WriteAllText(source, Program);
            var (compileExit, compileOutput) = Command.Run(TimeSpan.FromSeconds(60), "gcc", "-Wall", "-o", binary, source);
            Assert.True(compileExit == 0, compileOutput);
            var (runExit, runOutput) = Command.Run(TimeSpan.FromSeconds(10), binary);
            Assert.True(runExit == 0, runOutput);
            output = runOutput;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        var c = new Dictionary<string, string>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int space = line.IndexOf(' ');
            c[line[..space]] = line[(space + 1)..];
        }
        var bytes = new byte[VirtioNetHeader.Size];
        new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = VirtioNetHeader.GsoTcpV6,
            HdrLen = 0x1234, GsoSize = 0x5678, CsumStart = 0x9abc, CsumOffset = 0xdef0,
        }.Write(bytes);
        Assert.Equal(c["bytes"], string.Join(' ', bytes.Select(b => b.ToString("x2"))));
        VirtioNetHeader read = VirtioNetHeader.Read(bytes);
        Assert.Equal((0x1234, 0x5678, 0x9abc, 0xdef0), (read.HdrLen, read.GsoSize, read.CsumStart, read.CsumOffset));

        var expected = new Dictionary<string, long>
        {
            ["sizeof"] = VirtioNetHeader.Size,
            ["F_NEEDS_CSUM"] = VirtioNetHeader.FlagNeedsCsum,
            ["F_DATA_VALID"] = VirtioNetHeader.FlagDataValid,
            ["GSO_NONE"] = VirtioNetHeader.GsoNone,
            ["GSO_TCPV4"] = VirtioNetHeader.GsoTcpV4,
            ["GSO_UDP"] = VirtioNetHeader.GsoUdp,
            ["GSO_TCPV6"] = VirtioNetHeader.GsoTcpV6,
            ["GSO_UDP_L4"] = VirtioNetHeader.GsoUdpL4,
            ["GSO_ECN"] = VirtioNetHeader.GsoEcn,
            ["TUN_F_CSUM"] = IfTun.TUN_F_CSUM,
            ["TUN_F_TSO4"] = IfTun.TUN_F_TSO4,
            ["TUN_F_TSO6"] = IfTun.TUN_F_TSO6,
            ["TUN_F_TSO_ECN"] = IfTun.TUN_F_TSO_ECN,
            ["TUN_F_UFO"] = IfTun.TUN_F_UFO,
            ["TUN_F_USO4"] = IfTun.TUN_F_USO4,
            ["TUN_F_USO6"] = IfTun.TUN_F_USO6,
        };
        foreach (var (name, value) in expected)
        {
            if (name is "GSO_UDP_L4" or "TUN_F_USO4" or "TUN_F_USO6" && !c.ContainsKey(name))
            {
                continue; // newer than the installed kernel headers (Debian 12 has 6.1; USO is 6.2)
            }
            Assert.True(long.Parse(c[name]) == value, $"{name}: C {c[name]}, C# {value}");
        }
    }
}
