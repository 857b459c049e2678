using System.Net;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.Tests.Routing;

/// <summary>
/// The explicit cases of wireguard-go's device/allowedips_test.go (TestTrieIPv4, TestTrieIPv6), which
/// come from the Linux kernel's allowedips selftest. Its per-peer removes map to Remove(prefix, owner).
/// </summary>
public class AllowedIpsWireGuardGoVectorTests
{
    private readonly AllowedIps<char> _table = new();

    private void Insert(char peer, string prefix) => _table.Insert(IpPrefix.Parse(prefix), peer);

    private void Remove(char peer, string prefix) => _table.Remove(IpPrefix.Parse(prefix), peer);

    private void AssertEq(char peer, string address)
    {
        Assert.True(_table.TryLookup(IPAddress.Parse(address).GetAddressBytes(), out char found), $"{address} has no owner, expected {peer}");
        Assert.Equal(peer, found);
    }

    private void AssertNeq(char peer, string address) =>
        Assert.False(_table.TryLookup(IPAddress.Parse(address).GetAddressBytes(), out char found) && found == peer, $"{address} is still {peer}'s");

    [Fact]
    public void Trie_IPv4()
    {
        Insert('a', "192.168.4.0/24");
        Insert('b', "192.168.4.4/32");
        Insert('c', "192.168.0.0/16");
        Insert('d', "192.95.5.64/27");
        Insert('c', "192.95.5.65/27"); // same prefix as d's once host bits go: c takes it over
        Insert('e', "0.0.0.0/0");
        Insert('g', "64.15.112.0/20");
        Insert('h', "64.15.123.211/25");
        Insert('a', "10.0.0.0/25");
        Insert('b', "10.0.0.128/25");
        Insert('a', "10.1.0.0/30");
        Insert('b', "10.1.0.4/30");
        Insert('c', "10.1.0.8/29");
        Insert('d', "10.1.0.16/29");
        _table.CheckInvariants();

        AssertEq('a', "192.168.4.20");
        AssertEq('a', "192.168.4.0");
        AssertEq('b', "192.168.4.4");
        AssertEq('c', "192.168.200.182");
        AssertEq('c', "192.95.5.68");
        AssertEq('e', "192.95.5.96");
        AssertEq('g', "64.15.116.26");
        AssertEq('g', "64.15.127.3");

        foreach (var host in new[] { "1.0.0.0", "64.0.0.0", "128.0.0.0", "192.0.0.0", "255.0.0.0" })
        {
            Insert('a', host + "/32");
        }
        foreach (var host in new[] { "1.0.0.0", "64.0.0.0", "128.0.0.0", "192.0.0.0", "255.0.0.0" })
        {
            AssertEq('a', host);
        }
        _table.RemoveAll('a');
        foreach (var host in new[] { "1.0.0.0", "64.0.0.0", "128.0.0.0", "192.0.0.0", "255.0.0.0" })
        {
            AssertNeq('a', host);
        }

        foreach (var peer in "abcdegh")
        {
            _table.RemoveAll(peer);
        }
        Assert.Equal(0, _table.CheckInvariants());

        Insert('a', "192.168.0.0/16");
        Insert('a', "192.168.0.0/24");
        _table.RemoveAll('a');
        AssertNeq('a', "192.168.0.1");

        Insert('a', "1.0.0.0/32");
        Insert('a', "192.0.0.0/24");
        AssertEq('a', "1.0.0.0");
        AssertEq('a', "192.0.0.1");
        Remove('a', "192.0.0.0/32");
        AssertEq('a', "192.0.0.1");
        Remove('b', "192.0.0.0/24");
        AssertEq('a', "192.0.0.1");
        Remove('a', "192.0.0.0/24");
        AssertNeq('a', "192.0.0.1");
        Remove('a', "1.0.0.0/32");
        AssertNeq('a', "1.0.0.0");
        Assert.Equal(0, _table.CheckInvariants());
    }

    [Fact]
    public void Trie_IPv6()
    {
        Insert('d', "2607:5300:6000:6b00::c05f:543/128");
        Insert('c', "2607:5300:6000:6b00::/64");
        Insert('e', "::/0");
        Insert('f', "::/0"); // replaces e
        Insert('g', "2404:6800::/32");
        Insert('h', "2404:6800:4004:800:dead:beef:dead:beef/64");
        Insert('a', "2404:6800:4004:800:dead:beef:dead:beef/128");
        Insert('c', "2444:6800:40e4:800:deae:beef:def:beef/128");
        Insert('b', "2444:6800:f0e4:800:eeae:beef::/98");
        _table.CheckInvariants();

        AssertEq('d', "2607:5300:6000:6b00::c05f:543");
        AssertEq('c', "2607:5300:6000:6b00::c02e:1ee");
        AssertEq('f', "2607:5300:6000:6b01::");
        AssertEq('g', "2404:6800:4004:806::1006");
        AssertEq('g', "2404:6800:4004:806:0:1234:0:5678");
        AssertEq('f', "2404:67ff:4004:806:0:1234:0:5678");
        AssertEq('f', "2404:6801:4004:806:0:1234:0:5678");
        AssertEq('h', "2404:6800:4004:800:0:1234:0:5678");
        AssertEq('h', "2404:6800:4004:800::");
        AssertEq('h', "2404:6800:4004:800:1010:1010:1010:1010");
        AssertEq('a', "2404:6800:4004:800:dead:beef:dead:beef");

        Insert('a', "2444:6801:40e4:800:deae:beef:def:beef/128");
        Insert('a', "2444:6800:f0e4:800:eeae:beef::/98");
        AssertEq('a', "2444:6801:40e4:800:deae:beef:def:beef");
        AssertEq('a', "2444:6800:f0e4:800:eeae:beef:1010:1010");
        Remove('a', "2444:6801:40e4:800:deae:beef:def:beef/96");
        AssertEq('a', "2444:6801:40e4:800:deae:beef:def:beef");
        Remove('b', "2444:6801:40e4:800:deae:beef:def:beef/128");
        AssertEq('a', "2444:6801:40e4:800:deae:beef:def:beef");
        Remove('a', "2444:6801:40e4:800:deae:beef:def:beef/128");
        AssertNeq('a', "2444:6801:40e4:800:deae:beef:def:beef");
        Remove('b', "2444:6800:f0e4:800:eeae:beef::/98");
        AssertEq('a', "2444:6800:f0e4:800:eeae:beef:1010:1010");
        Remove('a', "2444:6800:f0e4:800:eeae:beef::/98");
        AssertNeq('a', "2444:6800:f0e4:800:eeae:beef:1010:1010");
        _table.CheckInvariants();
    }
}
