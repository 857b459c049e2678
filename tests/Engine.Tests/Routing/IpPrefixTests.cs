using System.Net;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.Tests.Routing;

public class IpPrefixTests
{
    [Theory]
    [InlineData("10.1.2.3/24", "10.1.2.0/24")]
    [InlineData("10.1.2.3", "10.1.2.3/32")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("255.255.255.255/1", "128.0.0.0/1")]
    [InlineData(" 192.168.1.77/31 ", "192.168.1.76/31")]
    [InlineData("fd00::1:2:3/64", "fd00::/64")]
    [InlineData("fd00::1", "fd00::1/128")]
    [InlineData("::/0", "::/0")]
    [InlineData("ffff::/1", "8000::/1")]
    [InlineData("::ffff:10.1.2.3/120", "::ffff:10.1.2.0/120")]
    [InlineData("::ffff:10.1.2.3", "::ffff:10.1.2.3/128")]
    [InlineData("::ffff:10.1.2.3/96", "::ffff:0:0/96")]
    [InlineData("::ffff:10.1.2.3/95", "::fffe:0:0/95")]
    [InlineData("::ffff:10.1.2.3/80", "::/80")]
    public void Parse_clears_host_bits(string text, string expected) => Assert.Equal(expected, IpPrefix.Parse(text).ToString());

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("10.0.0.0/33")]
    [InlineData("fd00::/129")]
    [InlineData("10.0.0.0/-1")]
    [InlineData("10.0.0.0/+8")]
    [InlineData("10.0.0.0/")]
    [InlineData("10.0.0/8x")]
    [InlineData("fe80::1%eth0/64")]
    [InlineData("example.com/8")]
    [InlineData("010.0.0.1/32")] // inet_aton forms, which IPAddress.TryParse takes: octal 8.0.0.1
    [InlineData("10.1/16")] // 10.0.0.1
    [InlineData("1/8")] // 0.0.0.1
    [InlineData("10")]
    [InlineData("0x0a.0.0.1/32")]
    [InlineData("10.0.0.256/32")]
    [InlineData("10..0.1/32")]
    [InlineData("10.0.0.1./32")]
    [InlineData("[fd00::1]:80/64")]
    [InlineData("[fd00::1]/64")]
    [InlineData("::ffff:010.1.2.3/128")]
    public void Parse_rejects_bad_text_with_a_reason(string text)
    {
        Assert.False(IpPrefix.TryParse(text, out _, out var error));
        Assert.NotEmpty(error);
        Assert.Throws<FormatException>(() => IpPrefix.Parse(text));
    }

    [Fact]
    public void Create_rejects_lengths_outside_the_address()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => IpPrefix.Create(IPAddress.Parse("10.0.0.0"), 33));
        Assert.Throws<ArgumentOutOfRangeException>(() => IpPrefix.Create(IPAddress.Parse("10.0.0.0"), -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => IpPrefix.Create(IPAddress.Parse("fd00::"), 129));
    }

    [Fact]
    public void Equal_prefixes_compare_and_hash_equal()
    {
        Assert.Equal(IpPrefix.Parse("10.1.2.3/24"), IpPrefix.Parse("10.1.2.200/24"));
        Assert.Equal(IpPrefix.Parse("10.1.2.3/24").GetHashCode(), IpPrefix.Parse("10.1.2.200/24").GetHashCode());
        // wg(8) keeps an IPv4-mapped prefix IPv6: it is not the IPv4 prefix it spells.
        Assert.NotEqual(IpPrefix.Parse("::ffff:10.1.2.0/120"), IpPrefix.Parse("10.1.2.0/24"));
        Assert.False(IpPrefix.Parse("::ffff:10.1.2.0/120").IsIPv4);
        Assert.NotEqual(IpPrefix.Parse("10.1.2.0/24"), IpPrefix.Parse("10.1.2.0/25"));
        Assert.NotEqual(IpPrefix.Parse("0.0.0.0/0"), IpPrefix.Parse("::/0"));
    }

    [Theory]
    [InlineData("10.1.2.0/24", "10.1.2.255", true)]
    [InlineData("10.1.2.0/24", "10.1.3.0", false)]
    [InlineData("10.1.2.0/23", "10.1.3.0", true)]
    [InlineData("0.0.0.0/0", "1.2.3.4", true)]
    [InlineData("0.0.0.0/0", "::1", false)]
    [InlineData("10.1.2.3/32", "10.1.2.3", true)]
    [InlineData("10.1.2.3/32", "10.1.2.2", false)]
    [InlineData("10.0.0.0/8", "::ffff:10.9.9.9", false)]
    [InlineData("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true)]
    [InlineData("::ffff:10.0.0.0/104", "10.9.9.9", false)]
    [InlineData("10.0.0.0/8", "::10.9.9.9", false)]
    [InlineData("::/0", "::ffff:10.9.9.9", true)]
    [InlineData("::/0", "10.9.9.9", false)]
    [InlineData("fd00::/7", "fc00::1", true)]
    [InlineData("fd00::/8", "fc00::1", false)]
    [InlineData("fd00::1/128", "fd00::1", true)]
    [InlineData("fd00::1/128", "fd00::", false)]
    public void Contains_checks_the_network_bits(string prefix, string address, bool expected) =>
        Assert.Equal(expected, IpPrefix.Parse(prefix).Contains(IPAddress.Parse(address).GetAddressBytes()));
}
