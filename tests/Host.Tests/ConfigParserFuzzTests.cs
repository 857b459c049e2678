using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Host.Config;

namespace Firezone.Actors.Host.Tests;

/// <summary>A generated wg-quick file: its lines (without line ends) and how they are joined.</summary>
public sealed record ConfigFile(string[] Lines, bool Crlf, bool Bom)
{
    public string Text => (Bom ? "\uFEFF" : "") + string.Join(Crlf ? "\r\n" : "\n", Lines) + (Crlf ? "\r\n" : "\n");

    public override string ToString() => $"crlf {Crlf} bom {Bom}\n" + string.Join('\n', Lines);
}

/// <summary>A valid file, one bad line and where it goes (an index among the lines of the section it spoils).</summary>
public sealed record SpoiledFile(string[] Lines, string Bad, int Line)
{
    public string Text => string.Join('\n', Lines) + "\n";

    public override string ToString() => $"line {Line}: {Bad}\n" + string.Join('\n', Lines);
}

/// <summary>
/// wg-quick files: the keys wg-quick and wg(8) know, in any case, with spaces, tabs and comments in
/// odd places, good values and almost-good ones; sections repeated, missing or misnamed.
/// </summary>
public static class ConfigGenerators
{
    public const string PrivateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    public static readonly string[] PeerKeys = ["xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="];

    private static readonly string[] BadKeys = ["", "short", PrivateKey[..43], PrivateKey + "=", PrivateKey.Replace('=', 'A'), "AAAA" + PrivateKey[4..].Replace('+', '*')];

    /// <summary>Values wg(8) and wg-quick take.</summary>
    public static readonly (string Key, string[] Values)[] GoodInterface =
    [
        ("ListenPort", ["0", "1", "51820", "65535", "051820"]),
        ("FwMark", ["0", "1", "0x1234", "4294967295", "off", "0xffffffff"]),
        ("Address", ["10.0.0.1/24", "10.0.0.1/24, fd00::1/64", "10.0.0.1", "fd00::1/128", "192.168.1.1/32,10.9.0.1/16"]),
        ("MTU", ["1280", "1420", "1500", "9000", "65535"]),
        ("Table", ["off", "auto", "main", "1234", "4294967295"]),
        ("DNS", ["1.1.1.1", "1.1.1.1, example.com", "fd00::53"]),
        ("PostUp", ["iptables -A FORWARD -i %i -j ACCEPT; echo = done", "echo 'a # b'"]),
        ("SaveConfig", ["true", "false"]),
    ];

    public static readonly (string Key, string[] Values)[] GoodPeer =
    [
        ("PresharedKey", [PeerKeys[2]]),
        ("AllowedIPs", ["10.0.0.2/32", "10.0.0.0/8, fd00::/64", "0.0.0.0/0, ::/0", "10.1.2.3/16", "192.168.0.1", "::ffff:10.0.0.0/104", "10.0.0.0/08"]),
        ("Endpoint", ["192.0.2.1:51820", "[2001:db8::1]:51820", "127.0.0.1:1", "[::ffff:192.0.2.1]:5", "localhost:51820"]),
        ("PersistentKeepalive", ["0", "25", "65535", "off"]),
    ];

    /// <summary>Lines every reader refuses, with the section where they are bad (null: anywhere).</summary>
    public static readonly (string Line, string? Section)[] BadLines =
    [
        ("MTU = 70000", "Interface"), ("MTU = 100", "Interface"), ("MTU = -1", "Interface"), ("MTU = 1420.5", "Interface"),
        ("ListenPort = 65536", "Interface"), ("ListenPort = -1", "Interface"), ("ListenPort = 0x10", "Interface"),
        ("FwMark = 0x100000000", "Interface"), ("FwMark = 4294967296", "Interface"), ("FwMark = -1", "Interface"),
        ("Table = 0", "Interface"), ("Table = no such table", "Interface"),
        ("Address = 10.0.0.1/33", "Interface"), ("Address = fd00::1/129", "Interface"), ("Address = 10.0.0.256/24", "Interface"),
        ("Address = 10.0.0.1.5/24", "Interface"), ("Ad dress = 10.0.0.1/24", "Interface"), ("Address = 10.0.0.1/24,[::1]/64", "Interface"), ("Address = fe80::1%lo/64", "Interface"),
        ("PrivateKey = short", "Interface"), ("PublicKey = " + PeerKeys[0], "Interface"), ("AllowedIPs = 10.0.0.0/8", "Interface"),
        ("SaveConfig = maybe", "Interface"), ("#! Role = router", "Interface"), ("#! EcnMode = sometimes", "Interface"),
        ("AllowedIPs = 10.0.0.0/33", "Peer"), ("AllowedIPs = ::/129", "Peer"), ("AllowedIPs = 010.0.0.0/8", "Peer"),
        ("AllowedIPs = 10/8", "Peer"), ("AllowedIPs = 10.0.0.0/-1", "Peer"), ("AllowedIPs = fe80::%lo/64", "Peer"),
        ("AllowedIPs = [::1]/128", "Peer"), ("AllowedIPs = 10.0.0.0/8/8", "Peer"), ("AllowedIPs =", "Peer"),
        ("Endpoint = 192.0.2.1", "Peer"), ("Endpoint = [::1]", "Peer"), ("Endpoint = ::g:5", "Peer"), ("Endpoint = 192.0.2.1:0", "Peer"),
        ("Endpoint = 192.0.2.1:65536", "Peer"), ("Endpoint = unresolvable.invalid:5", "Peer"),
        ("PersistentKeepalive = 65536", "Peer"), ("PersistentKeepalive = -1", "Peer"), ("PersistentKeepalive = on", "Peer"),
        ("PresharedKey = short", "Peer"), ("MTU = 1420", "Peer"), ("ListenPort = 1", "Peer"), ("#! Role = gateway", "Peer"),
        ("[Bogus]", null), ("[Interface", null), ("Peer]", null), ("just some words", null), ("#! Bogus = 1", null), ("#! no equals sign", null),
        ("Colour = blue", null),
    ];

    private static Gen<string> CaseOf(string text) =>
        Gen.Elements(0, 1, 2, 3).Select(mode => mode switch
        {
            1 => text.ToLowerInvariant(),
            2 => text.ToUpperInvariant(),
            3 => string.Concat(text.Select((c, i) => i % 2 == 0 ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c))),
            _ => text,
        });

    private static readonly string[] Spaces = ["", " ", "  ", "\t", " \t "];

    /// <summary>"Key = Value" with random case, spacing and a trailing comment.</summary>
    public static Gen<string> KeyLine(string key, string value) =>
        from cased in CaseOf(key)
        from indent in Gen.Elements(Spaces)
        from before in Gen.Elements(Spaces)
        from after in Gen.Elements(Spaces)
        from end in Gen.Elements(Spaces)
        from comment in Gen.Elements("", "", "# note", " # key = value", "#")
        select indent + cased + before + "=" + after + value + end + comment;

    private static Gen<string> Header(string name) =>
        from cased in CaseOf(name)
        from indent in Gen.Elements(Spaces)
        from comment in Gen.Elements("", "", " # section")
        select indent + "[" + cased + "]" + comment;

    private static Gen<string> Filler => Gen.Elements("", "   ", "# comment", "  # PrivateKey = not this one", "#!", "#!important: not a directive", "#\t");

    private static Gen<string> Pick((string Key, string[] Values)[] keys) =>
        Gen.Elements(keys).SelectMany(k => Gen.Elements(k.Values).SelectMany(v => KeyLine(k.Key, v)));

    private static Gen<string[]> Section(Gen<string> header, Gen<string>[] required, (string Key, string[] Values)[] optional, int maxOptional) =>
        from h in header
        from req in Gen.CollectToArray(required)
        from count in Gen.Choose(0, maxOptional)
        from opt in Pick(optional).ArrayOf(count)
        from fillers in Filler.ArrayOf(2)
        from order in Gen.Shuffle([.. req, .. opt, .. fillers])
        select (string[])[h, .. order];

    /// <summary>
    /// Valid files: an [Interface] with a PrivateKey, then up to three peers with distinct keys
    /// (optional keys at most once each, and AllowedIPs kept apart so no two peers share a prefix).
    /// </summary>
    public static Gen<string[]> ValidLines =>
        from iface in Section(Header("Interface"), [KeyLine("PrivateKey", PrivateKey)], [], 0)
        from ifaceKeys in Gen.Shuffle(GoodInterface).SelectMany(keys => Gen.Choose(0, keys.Length).SelectMany(n =>
            Gen.CollectToArray(keys.Take(n).Select(k => Gen.Elements(k.Values).SelectMany(v => KeyLine(k.Key, v))))))
        from peerCount in Gen.Choose(0, 3)
        from peers in Gen.CollectToArray(Enumerable.Range(0, peerCount).Select(i =>
            from header in Header("Peer")
            from key in KeyLine("PublicKey", PeerKeys[i])
            from keys in Gen.Shuffle(GoodPeer.Where(k => k.Key != "AllowedIPs").ToArray())
            from n in Gen.Choose(0, keys.Length)
            from optional in Gen.CollectToArray(keys.Take(n).Select(k => Gen.Elements(k.Values).SelectMany(v => KeyLine(k.Key, v))))
            from allowed in Gen.Elements($"10.{i}.0.0/16", $"10.{i}.1.1, fd0{i}::/64", $"192.168.{i}.0/24 , 172.16.{i}.1/32", $"fd0{i}::1")
            from allowedLine in KeyLine("AllowedIPs", allowed)
            from order in Gen.Shuffle([key, allowedLine, .. optional])
            select (string[])[header, .. order]))
        select (string[])[.. iface, .. ifaceKeys, .. peers.SelectMany(static p => p)];

    /// <summary>Files of any lines, good and bad, in and out of sections.</summary>
    public static Gen<string[]> AnyLines =>
        Gen.OneOf(
            Header("Interface").Select(static h => new[] { h }),
            Header("Peer").Select(static h => new[] { h }),
            KeyLine("PrivateKey", PrivateKey).Select(static l => new[] { l }),
            Gen.Elements(PeerKeys).SelectMany(k => KeyLine("PublicKey", k)).Select(static l => new[] { l }),
            (from name in Gen.Elements("PrivateKey", "PublicKey", "PresharedKey") from key in Gen.Elements(BadKeys) from line in KeyLine(name, key) select new[] { line }),
            Pick(GoodInterface).Select(static l => new[] { l }),
            Pick(GoodPeer).Select(static l => new[] { l }),
            Gen.Elements(BadLines).Select(static b => new[] { b.Line }),
            Filler.Select(static l => new[] { l }),
            Gen.Choose(5000, 100_000).Select(static n => new[] { "PostUp = " + new string('x', n) }),
            Gen.Elements("Key\0 = 1", "PrivateKey = " + PrivateKey + "\0", "\u00e9 = 1", "ListenPort = \u0661", "\u00a0[Peer]").Select(static l => new[] { l }))
        .ArrayOf().Select(static parts => parts.SelectMany(static p => p).ToArray());

    public static Arbitrary<ConfigFile> Files() =>
        (from lines in Gen.OneOf(ValidLines, AnyLines, ValidLines.SelectMany(v => AnyLines.Select(a => (string[])[.. v, .. a])))
         from crlf in ArbMap.Default.GeneratorFor<bool>()
         from bom in ArbMap.Default.GeneratorFor<bool>()
         select new ConfigFile(lines, crlf, bom)).ToArbitrary();

    public static Arbitrary<SpoiledFile> Spoiled() =>
        (from lines in ValidLines
         from bad in Gen.Elements(BadLines)
         from at in Gen.Choose(0, 1000)
         select Spoil(lines, bad, at)).ToArbitrary();

    /// <summary>Puts <paramref name="bad"/> after a line of its section (any line for null), so it is the first mistake.</summary>
    private static SpoiledFile Spoil(string[] lines, (string Line, string? Section) bad, int at)
    {
        var places = new List<int>();
        string? section = null;
        for (int i = 0; i < lines.Length; i++)
        {
            string trimmed = lines[i].Trim();
            if (trimmed.StartsWith('['))
            {
                section = trimmed[1..trimmed.IndexOf(']')];
            }
            if (bad.Section is null || string.Equals(section, bad.Section, StringComparison.OrdinalIgnoreCase))
            {
                places.Add(i + 1);
            }
        }
        var list = lines.ToList();
        if (places.Count == 0)
        {
            // A file without peers gets one for a [Peer] line to spoil.
            list.AddRange(["[Peer]", "PublicKey = AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="]);
            places.Add(list.Count);
        }
        int index = places[at % places.Count];
        list.Insert(index, bad.Line);
        return new SpoiledFile([.. list], bad.Line, index + 1);
    }
}

public sealed class ConfigParserFuzzTests
{
    private const string Path = "/etc/wireguard/fz0.conf";

    private sealed class LiteralResolver : IHostNameResolver
    {
        public IReadOnlyList<IPAddress> Resolve(string host) =>
            host == "localhost" ? [IPAddress.Loopback] : IPAddress.TryParse(host, out var address) ? [address] : [];
    }

    private static TunnelConfig Parse(string text) =>
        new WgQuickConfigParser(new LiteralResolver(), new RouteTableNames(["vpn"])).Parse(Path, text);

    /// <summary>Through a file, as the service reads it (a UTF-8 byte order mark is read past, with a note).</summary>
    private static TunnelConfig ParseFile(ConfigFile file, out string path)
    {
        string directory = Directory.CreateTempSubdirectory("fzcfg").FullName;
        path = System.IO.Path.Combine(directory, "fz0.conf");
        try
        {
            File.WriteAllText(path, file.Text, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            return new WgQuickConfigParser(new LiteralResolver(), new RouteTableNames(["vpn"])).ParseFile(path);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// Whatever the file holds, the parser gives a configuration or a <see cref="ConfigException"/>
    /// (never another exception) whose message is "FILE:LINE: problem" with a line of the file, and
    /// which never quotes the private key.
    /// </summary>
    [Property(MaxTest = 2000, Arbitrary = [typeof(ConfigGenerators)])]
    public Property Any_file_parses_or_fails_with_one_line_naming_file_and_line(ConfigFile file)
    {
        string path = "";
        try
        {
            ParseFile(file, out path);
            return true.ToProperty();
        }
        catch (ConfigException e)
        {
            bool named = e.Message == $"{path}:{e.Line}: {e.Problem}" && e.Line >= 1 && e.Line <= file.Lines.Length + 1;
            bool secret = e.Message.Contains(ConfigGenerators.PrivateKey[..20], StringComparison.Ordinal);
            bool oneLine = !e.Message.Contains('\n') && !e.Message.Contains('\r');
            return (named && !secret && oneLine).Label(e.Message);
        }
    }

    /// <summary>A valid file parses, and a bad line put into it is reported at its own line number.</summary>
    [Property(MaxTest = 2000, Arbitrary = [typeof(ConfigGenerators)])]
    public Property A_bad_line_is_reported_at_its_line(SpoiledFile file)
    {
        string original = string.Join('\n', file.Lines.Where((_, i) => i != file.Line - 1)) + "\n";
        Parse(original);
        try
        {
            Parse(file.Text);
            return false.Label("accepted");
        }
        catch (ConfigException e)
        {
            return (e.Line == file.Line).Label(e.Message);
        }
    }

    /// <summary>
    /// The same settings written with other case, spacing, comments, CRLF line ends or a byte order
    /// mark give the same configuration.
    /// </summary>
    [Property(MaxTest = 500, Arbitrary = [typeof(ConfigGenerators)])]
    public Property Layout_does_not_change_the_configuration(ConfigFile file)
    {
        TunnelConfig config;
        try
        {
            config = Parse(string.Join('\n', file.Lines) + "\n");
        }
        catch (ConfigException)
        {
            return true.ToProperty(); // only valid files say anything here
        }
        var other = ParseFile(file, out _);
        if (file.Bom)
        {
            // The one difference a byte order mark makes: a note that wg-quick and wg refuse it.
            if (other.Notes.Count == 0 || other.Notes[0].Line != 1 || !other.Notes[0].Message.Contains("byte order mark", StringComparison.Ordinal))
            {
                return false.Label("no note of the byte order mark");
            }
            other = other with { Notes = other.Notes.Skip(1).ToList() };
        }
        return (Describe(config) == Describe(other)).Label(Describe(config) + "\n---\n" + Describe(other));
    }

    private static string Describe(TunnelConfig config)
    {
        var i = config.Interface;
        var text = new System.Text.StringBuilder()
            .Append($"{i.PrivateKey?.ToBase64()} {i.ListenPort} {i.FwMark} {i.Mtu} {i.Table} {i.Role} {i.DefaultEcnMode} [{string.Join(',', i.Addresses)}]\n");
        foreach (var peer in config.Peers)
        {
            text.Append($"{peer.PublicKey.ToBase64()} {peer.PresharedKey?.ToBase64()} {peer.Endpoint} {peer.PersistentKeepaliveSeconds} {peer.EcnMode} [{string.Join(',', peer.AllowedIps)}]\n");
        }
        foreach (var note in config.Notes)
        {
            text.Append($"{note.Line}: {note.Message}\n");
        }
        return text.ToString();
    }

    /// <summary>
    /// Found by <see cref="A_bad_line_is_reported_at_its_line"/>: IPAddress.TryParse reads inet_aton's
    /// forms, so "AllowedIPs = 010.0.0.0/8" routed 8.0.0.0/8 and "10/8" routed 0.0.0.0/8, where wg(8)
    /// (inet_pton) refuses the file. (Address is ip(8)'s: see the next test.)
    /// </summary>
    [Theory]
    [InlineData("[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 010.0.0.0/8", 5)]
    [InlineData("[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 10.0.0.0/8, 10/8", 5)]
    [InlineData("[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = [::1]/128", 5)]
    public void Addresses_inet_pton_refuses_are_refused_at_their_line(string lines, int line)
    {
        var error = Assert.Throws<ConfigException>(() => Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\n{lines}\n"));
        Assert.Equal(line, error.Line);
    }

    /// <summary>
    /// wg-quick hands Address to <c>ip address add</c>, which reads IPv4 with iproute2's
    /// get_addr_ipv4 (C numbers, missing parts zero), not inet_pton: the daemon assigns what ip would.
    /// </summary>
    [Theory]
    [InlineData("10.1/16", "10.1.0.0/16")]
    [InlineData("010.0.0.1/24", "8.0.0.1/24")]
    [InlineData("0x0a.0.0.1/24", "10.0.0.1/24")]
    [InlineData("10.0.0.01/24", "10.0.0.1/24")]
    [InlineData("10/8", "10.0.0.0/8")]
    public void Ipv4_addresses_are_read_as_ip_reads_them(string written, string assigned)
    {
        var config = Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\nAddress = {written}\n");
        Assert.Equal([assigned], config.Interface.Addresses.Select(static a => a.ToString()));
    }

    /// <summary>
    /// wg-quick trims only the ends of a key, so "Ad dress" is not its Address: it hands the line to
    /// wg, which takes the spaces out and then knows no "Address" either ("Line unrecognized").
    /// </summary>
    [Theory]
    [InlineData("Ad dress = 10.0.0.1/24")]
    [InlineData("M TU = 1420")]
    [InlineData("Tab le = off")]
    [InlineData("Post Up = true")]
    public void A_wg_quick_key_with_spaces_inside_is_refused_as_wg_quick_and_wg_refuse_it(string text)
    {
        Assert.Equal(3, Assert.Throws<ConfigException>(() => Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\n{text}\n")).Line);
    }

    /// <summary>
    /// Found by <see cref="ConfigWgComparisonTests"/>: wg(8) takes every space out of a line before
    /// reading it (config.c), and wg-quick splits Address at spaces as well as commas; such files
    /// were refused.
    /// </summary>
    [Fact]
    public void Spaces_inside_values_are_read_as_wg_and_wg_quick_read_them()
    {
        var config = Parse($"""
            [Interface]
            PrivateKey = {ConfigGenerators.PrivateKey}
            ListenPort = 51 820
            Address = 10.9.0.1/24 fd09::1/64
            PostUp = echo  two  spaces
            [Peer]
            Public Key = {ConfigGenerators.PeerKeys[0]}
            AllowedIPs = 10.200.0.0 / 16
            Endpoint = [2001:db8::1] : 5
            """);
        Assert.Equal((ushort)51820, config.Interface.ListenPort);
        Assert.Equal(["10.9.0.1/24", "fd09::1/64"], config.Interface.Addresses.Select(static a => a.ToString()));
        Assert.Equal(ConfigGenerators.PeerKeys[0], config.Peers[0].PublicKey.ToBase64());
        Assert.Equal("10.200.0.0/16", config.Peers[0].AllowedIps[0].ToString());
        Assert.Equal("[2001:db8::1]:5", EndpointText.Format(config.Peers[0].Endpoint));
    }

    /// <summary>
    /// Found by <see cref="ConfigWgComparisonTests"/> ("Table = 0x10" was refused) and then by hand:
    /// wg-quick hands Table to ip(8), which reads it as a C number, so "Table = 010" is table 8;
    /// we put the routes in table 10.
    /// </summary>
    [Theory]
    [InlineData("010", "8")]
    [InlineData("0x10", "16")]
    [InlineData("0X1f", "31")]
    [InlineData("10", "10")]
    [InlineData("0xffffffff", "4294967295")]
    public void Table_numbers_are_read_as_ip_reads_them(string value, string table)
    {
        var config = Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\nTable = {value}\n");
        Assert.Equal(RouteTable.Named(table), config.Interface.Table);
    }

    [Theory]
    [InlineData("08")]
    [InlineData("0x")]
    [InlineData("0x100000000")]
    [InlineData("00")]
    [InlineData("1x")]
    public void Table_numbers_ip_refuses_are_refused(string value)
    {
        var error = Assert.Throws<ConfigException>(() => Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\nTable = {value}\n"));
        Assert.Equal(3, error.Line);
    }

    /// <summary>
    /// Found by hand after the Table case: wg-quick hands MTU and each Address to ip(8) as written,
    /// and ip reads "01420" as octal 784 and "/024" as /20; we set 1420 and /24.
    /// </summary>
    [Fact]
    public void MTU_and_Address_prefix_lengths_are_read_as_ip_reads_them()
    {
        var config = Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\nMTU = 01420\nAddress = 10.0.0.1/024, 10.1.0.1/0x10\n");
        Assert.Equal(784, config.Interface.Mtu);
        Assert.Equal(["10.0.0.1/20", "10.1.0.1/16"], config.Interface.Addresses.Select(static a => a.ToString()));
        Assert.Equal(3, Assert.Throws<ConfigException>(() => Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\nMTU = 01500x\n")).Line);
        Assert.Equal(3, Assert.Throws<ConfigException>(() => Parse($"[Interface]\nPrivateKey = {ConfigGenerators.PrivateKey}\nAddress = 10.0.0.1/08\n")).Line);
    }
}
