using Firezone.Actors.Engine;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The control messages of a received datagram are read only as far as each one reaches: a message
/// too short for its value (never one the kernel writes; a hardening a native review asked for)
/// is skipped, not read past its end into whatever follows it.
/// </summary>
public sealed unsafe class ControlMessageParsingTests
{
    private const int SolIp = 0, IpTos = 1, SolIpv6 = 41, Ipv6Tclass = 67;

    /// <summary>Parses control messages of (level, type, data) laid out as the kernel lays them out, each followed by 0xff filler.</summary>
    private static (Ecn Ecn, int Gro) Parse(params (int Level, int Type, byte[] Data)[] messages)
    {
        byte* control = stackalloc byte[256];
        new Span<byte>(control, 256).Fill(0xff);
        int at = 0;
        foreach (var (level, type, data) in messages)
        {
            var message = (cmsghdr*)(control + at);
            message->cmsg_len = (uint)Socket.CmsgLen(data.Length);
            message->cmsg_level = level;
            message->cmsg_type = type;
            data.CopyTo(new Span<byte>(Socket.CmsgData(message), data.Length));
            at += Socket.CmsgSpace(data.Length);
        }
        var header = new msghdr { msg_control = control, msg_controllen = (uint)at };
        var ecn = LinuxUdpSocket.ReadControl(&header, out int gro, out _);
        return (ecn, gro);
    }

    private static byte[] Int(int value) => BitConverter.GetBytes(value);

    [Fact]
    public void Well_formed_messages_give_their_values()
    {
        Assert.Equal((Ecn.Ect0, 0), Parse((SolIp, IpTos, [0x02])));
        Assert.Equal((Ecn.Ce, 1392), Parse((SolIpv6, Ipv6Tclass, Int(0x03)), (Socket.SOL_UDP, Socket.UDP_GRO, Int(1392))));
    }

    [Fact]
    public void A_message_too_short_for_its_value_is_skipped()
    {
        // Without the length check these read past their data into the 0xff filler: CE from an empty
        // TOS; a TCLASS of 0xffffff03 (CE as well); a segment size of 0xffff0570 (-64144).
        Assert.Equal((Ecn.NotEct, 0), Parse((SolIp, IpTos, [])));
        Assert.Equal((Ecn.NotEct, 0), Parse((SolIpv6, Ipv6Tclass, [0x03])));
        Assert.Equal((Ecn.NotEct, 0), Parse((Socket.SOL_UDP, Socket.UDP_GRO, [0x70, 0x05])));
        // A short one does not hide a well-formed one after it.
        Assert.Equal((Ecn.NotEct, 1200), Parse((Socket.SOL_UDP, Socket.UDP_GRO, [0x70, 0x05]), (Socket.SOL_UDP, Socket.UDP_GRO, Int(1200))));
        Assert.Equal((Ecn.Ect1, 0), Parse((SolIp, IpTos, []), (SolIp, IpTos, [0x01])));
    }
}
