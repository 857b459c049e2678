using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>A set request's lines, as a generator makes them (a type of its own so FsCheck finds its generator).</summary>
public sealed record UapiLines(string[] Lines)
{
    public string Request => "set=1\n" + string.Concat(Lines.Select(static l => l + "\n")) + "\n";

    public override string ToString() => string.Join(" | ", Lines);
}

/// <summary>Raw bytes for the socket, with the sizes of the writes that carry them.</summary>
public sealed record UapiBytes(string Text, int[] Chunks, bool EndsAsIs)
{
    public override string ToString() => $"{Text.Replace("\n", "\\n", StringComparison.Ordinal)} chunks [{string.Join(',', Chunks)}] ends as is {EndsAsIs}";
}

/// <summary>
/// Adversarial requests for the UAPI (https://www.wireguard.com/xplatform/): the keys of the
/// protocol in any order, with values that are almost right (off by one, out of range, signs,
/// spaces, leading zeros, wrong lengths, non-hex, IPv4 shorthand, zones, bad prefix lengths).
/// </summary>
public static class UapiGenerators
{
    public static readonly string[] PeerKeys = [new string('1', 64), "2" + new string('a', 63), new string('B', 64)];

    private static readonly string[] Numbers =
    [
        "0", "1", "5", "05", "25", "65535", "65536", "70000", "4294967295", "4294967296", "18446744073709551616",
        "-1", "-0", "+1", " 1", "1 ", "0x10", "", "1e3", "1.0", "1_000", "00000000000000000000051820",
    ];

    private static readonly string[] HexKeys =
    [
        new string('1', 64), new string('0', 64), new string('A', 64), new string('a', 63), new string('a', 65),
        new string('a', 62) + "gg", " " + new string('a', 63), new string('a', 63) + " ", "", "00",
        new string('a', 64) + "00",
    ];

    private static readonly string[] Endpoints =
    [
        "192.0.2.1:51820", "192.0.2.1:0", "192.0.2.1:65535", "192.0.2.1:65536", "192.0.2.1:05", "192.0.2.1:+5", "192.0.2.1:-1",
        "192.0.2.1: 5", " 192.0.2.1:5", "192.0.2.1:5 ", "192.0.2.1", "192.0.2.1:", ":5", "1:5", "1.2:5", "1.2.3:5",
        "01.2.3.4:5", "1.2.3.04:5", "0x7f.0.0.1:5", "256.1.1.1:5", "1.2.3.4.5:6", "1.2.3.4:5:6", "localhost:5",
        "[::1]:5", "[::1]:0", "::1:5", "[::1]", "[::1]:", "[]:5", "[::1%]:5", "[1.2.3.4]:5", "[::ffff:1.2.3.4]:5",
        "[::ffff:1.2.3]:5", "[2001:db8::1]:51820", "[2001:DB8::1]:51820", "[fe80::1%lo]:5", "[fe80::1%nosuchif]:5",
        "[2001:db8::1%lo]:5", "1.2.3.4%lo:5", "[::1]x:5", "[::1]:5x", "[2001:db8:::1]:5", "[2001:db8::1::2]:5",
    ];

    private static readonly string[] Addresses =
    [
        "10.0.0.1", "10.0.0.0", "0.0.0.0", "10", "10.1", "10.0.1", "010.0.0.0", "10.0.0.010", "0x0a.0.0.0", "256.0.0.0",
        "::", "::1", "fd00::", "FD00::1", "fe80::1%lo", "::ffff:10.0.0.0", "::ffff:10.0.0", "1.2.3.4.5", "", " 10.0.0.0",
    ];

    private static readonly string[] Lengths =
    [
        "/0", "/8", "/24", "/32", "/33", "/64", "/128", "/129", "/08", "/-1", "/", "", "/8 ", "/ 8", "/4294967304", "/1e1",
    ];

    private static readonly string[] JunkLines =
    [
        "colour=blue", "=x", "=", "x", "set=1", "get=1", "private_key", "public_key", "Listen_Port=5", "listen_port =5", " listen_port=5",
        "listen_port==5", "protocol_version=1", "fz_ecn_mode=off",
    ];

    private static Gen<string> Hex => Gen.OneOf(Gen.Elements(HexKeys), Gen.Elements(PeerKeys));

    private static Gen<string> DeviceLine => Gen.OneOf(
        Hex.Select(static v => "private_key=" + v),
        Gen.Elements(Numbers).Select(static v => "listen_port=" + v),
        Gen.Elements(Numbers).Select(static v => "fwmark=" + v),
        Gen.Elements("true", "TRUE", "false", "", "1").Select(static v => "replace_peers=" + v));

    private static Gen<string> PeerLine => Gen.OneOf(
        Gen.Elements("true", "True", "false", "", "1").Select(static v => "update_only=" + v),
        Gen.Elements("true", "false", "").Select(static v => "remove=" + v),
        Hex.Select(static v => "preshared_key=" + v),
        Gen.Elements(Endpoints).Select(static v => "endpoint=" + v),
        Gen.Elements(Numbers).Select(static v => "persistent_keepalive_interval=" + v),
        Gen.Elements("true", "false").Select(static v => "replace_allowed_ips=" + v),
        (from address in Gen.Elements(Addresses) from length in Gen.Elements(Lengths) select "allowed_ip=" + address + length),
        (from address in Gen.Elements(Addresses) from length in Gen.Elements(Lengths) select "allowed_ip=" + address + length),
        Gen.Elements("1", "2", "01", "").Select(static v => "protocol_version=" + v));

    private static Gen<string> PublicKeyLine => Gen.Frequency(
        (6, Gen.Elements(PeerKeys).Select(static v => "public_key=" + v)),
        (1, Gen.Elements(HexKeys).Select(static v => "public_key=" + v)));

    /// <summary>Mostly well-formed requests (device lines, then peers), with bad values and lines anywhere.</summary>
    public static Gen<string[]> Lines =>
        from device in Gen.Choose(0, 3).SelectMany(n => DeviceLine.ArrayOf(n))
        from peers in Gen.Choose(0, 3).SelectMany(n =>
            (from key in PublicKeyLine
             from count in Gen.Choose(0, 4)
             from lines in PeerLine.ArrayOf(count)
             select (string[])[key, .. lines]).ArrayOf(n))
        from junk in Gen.Frequency((4, Gen.Constant<string[]>([])), (1, Gen.OneOf(Gen.Elements(JunkLines), DeviceLine, PeerLine).ArrayOf(1)))
        from at in Gen.Choose(0, 100)
        select Insert([.. device, .. peers.SelectMany(static p => p)], junk, at);

    private static string[] Insert(string[] lines, string[] extra, int at)
    {
        var list = lines.ToList();
        list.InsertRange(list.Count == 0 ? 0 : at % (list.Count + 1), extra);
        return [.. list];
    }

    /// <summary>Bytes anywhere: requests cut short, glued together, with NULs, CRs, non-ASCII and very long lines.</summary>
    public static Gen<string> Soup =>
        from pieces in Gen.OneOf(
            Gen.Elements("set=1\n", "get=1\n", "fz_get=1\n", "\n", "\n\n", "\r\n", "\0", "=", "\u00ff", "\u00e9", "get=2\n", "set=1"),
            Lines.Select(static l => string.Concat(l.Select(static x => x + "\n"))),
            Gen.Choose(4000, 70000).Select(static n => "listen_port=" + new string('1', n) + "\n"),
            Gen.Elements(JunkLines).Select(static l => l + "\n")).ArrayOf()
        select string.Concat(pieces);

    public static Arbitrary<UapiLines> Requests() => Lines.Select(static l => new UapiLines(l)).ToArbitrary();

    public static Arbitrary<UapiBytes> Bytes() =>
        (from text in Soup
         from chunks in Gen.Choose(1, 64).ArrayOf()
         from shutdown in ArbMap.Default.GeneratorFor<bool>()
         select new UapiBytes(text, chunks, shutdown)).ToArbitrary();
}

/// <summary>
/// Robustness of the UAPI: the parser, the applier's atomicity and the real server socket under
/// random and adversarial input (FsCheck).
/// </summary>
/// <remarks>
/// Set-up and clean-up are the constructor and <see cref="IDisposable"/>: FsCheck's property runner
/// does not call IAsyncLifetime.DisposeAsync, which left servers behind.
/// </remarks>
public sealed class UapiFuzzTests : IDisposable
{
    private readonly UapiServerFixture _server = UapiServerFixture.Start();

    public void Dispose() => _server.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>The parser refuses with <see cref="UapiException"/> (an errno) and nothing else, whatever the lines.</summary>
    [Property(MaxTest = 3000, Arbitrary = [typeof(UapiGenerators)])]
    public bool The_set_parser_refuses_only_with_an_errno(UapiLines request)
    {
        try
        {
            UapiSetParser.Parse(request.Lines);
            return true;
        }
        catch (UapiException e)
        {
            return e.Errno is UapiErrno.EINVAL or UapiErrno.EPROTO;
        }
    }

    /// <summary>
    /// A request that is refused changes nothing: not the peers, not the device settings. (wireguard-go
    /// applies line by line and keeps what came before the bad line; we parse the whole request
    /// first, see <see cref="UapiSetApplier"/>.) One that is accepted is then answered by get=1.
    /// </summary>
    [Property(MaxTest = 1000, Arbitrary = [typeof(UapiGenerators)])]
    public bool A_refused_request_changes_nothing(UapiLines setup, UapiLines request)
    {
        var control = new InMemoryTunnelControl();
        Apply(control, setup.Lines);
        string before = Get(control);
        int calls = control.Calls.Count;
        bool accepted = Apply(control, request.Lines);
        string after = Get(control);
        return accepted || (before == after && control.Calls.Count == calls);
    }

    private static bool Apply(InMemoryTunnelControl control, string[] lines)
    {
        try
        {
            UapiSetApplier.ApplyAsync(UapiSetParser.Parse(lines), control, CancellationToken.None).GetAwaiter().GetResult();
            return true;
        }
        catch (UapiException)
        {
            return false;
        }
    }

    private static string Get(InMemoryTunnelControl control) =>
        UapiGetFormatter.Format(control.GetStatusAsync(CancellationToken.None).GetAwaiter().GetResult(), extensions: false);

    /// <summary>
    /// Whatever bytes arrive, in whatever writes, the server answers with errno replies or closes,
    /// never hangs on a request that ended, and keeps serving: a get=1 on a new connection afterwards
    /// is answered errno=0.
    /// </summary>
    [Property(MaxTest = 150, Arbitrary = [typeof(UapiGenerators)])]
    public bool The_server_survives_any_bytes(UapiBytes input)
    {
        // The client always stops writing at the end, so the server must answer what it can and
        // close: a timeout here means it hung. Half the cases end the soup with a blank line and a get.
        string text = input.EndsAsIs ? input.Text : input.Text + "\n\nget=1\n\n";
        string reply = UapiRawClient.Exchange(_server.SocketPath, text, input.Chunks, shutdownWrite: true, replies: int.MaxValue);
        bool wellFormed = !reply.Contains("<timeout>", StringComparison.Ordinal) && RepliesAreWellFormed(reply);
        string probe = UapiRawClient.Exchange(_server.SocketPath, "get=1\n\n");
        UapiRawClient.Exchange(_server.SocketPath, "set=1\nprivate_key=" + new string('0', 64) + "\nlisten_port=0\nfwmark=0\nreplace_peers=true\n\n");
        return wellFormed && UapiRawClient.Errno(probe) == 0;
    }

    /// <summary>Every reply is get lines then "errno=N" and a blank line, N 0 or a negated errno.</summary>
    private static bool RepliesAreWellFormed(string reply)
    {
        foreach (var block in reply.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string last = block.Split('\n')[^1];
            if (!last.StartsWith("errno=", StringComparison.Ordinal) || !int.TryParse(last.AsSpan(6), out int errno) || errno > 0)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A request split into writes of any size (down to one byte) is served as if written at once.</summary>
    [Property(MaxTest = 60, Arbitrary = [typeof(UapiGenerators)])]
    public bool Partial_writes_are_served_as_one(UapiLines request, int[] chunks)
    {
        int[] sizes = chunks.Length == 0 ? [1] : [.. chunks.Select(static c => 1 + Math.Abs(c % 7))];
        string whole = UapiRawClient.Exchange(_server.SocketPath, request.Request);
        string wholeState = UapiRawClient.Exchange(_server.SocketPath, "get=1\n\n");
        Reset();
        string split = UapiRawClient.Exchange(_server.SocketPath, request.Request, sizes);
        string splitState = UapiRawClient.Exchange(_server.SocketPath, "get=1\n\n");
        Reset();
        return whole == split && wholeState == splitState;
    }

    private void Reset() =>
        Assert.Equal("errno=0\n\n", UapiRawClient.Exchange(_server.SocketPath, "set=1\nprivate_key=" + new string('0', 64) + "\nlisten_port=0\nfwmark=0\nreplace_peers=true\n\n"));

    [Fact]
    public void Two_requests_on_one_connection_are_both_answered_in_order()
    {
        string reply = UapiRawClient.Exchange(_server.SocketPath, "set=1\nlisten_port=8\n\nget=1\n\n", replies: 2);
        Assert.Equal("errno=0\n\nlisten_port=8\nerrno=0\n\n", reply);
        Reset();
    }

    /// <summary>
    /// As wireguard-go: a set is refused at its first bad line, answered at once and the connection
    /// closed (what follows cannot be told from the next request). Before, the server kept every
    /// line until the blank one: a client that sent 100 MB after a bad line held 200 MB of the
    /// daemon's memory, and one that never sent the blank line never got its answer.
    /// </summary>
    [Fact]
    public void A_refused_request_is_answered_at_its_bad_line_and_the_connection_closed()
    {
        Assert.Equal("errno=-22\n\n", UapiRawClient.Exchange(_server.SocketPath, "set=1\nbad=1\nlisten_port=9\n\nget=1\n\n", replies: 2));
        // No blank line, the client still connected: the answer does not wait for the rest.
        Assert.Equal("errno=-22\n\n", UapiRawClient.Exchange(_server.SocketPath, "set=1\nbad=1\n"));
        Assert.Equal("errno=-71\n\n", UapiRawClient.Exchange(_server.SocketPath, "set=1\nlisten_port=9\nno equals sign\n" + new string('x', 200_000)));
        // Nothing of a refused request applies, not even its lines before the bad one.
        Assert.Equal("errno=0\n\n", UapiRawClient.Exchange(_server.SocketPath, "get=1\n\n"));
    }

    [Fact]
    public void A_request_without_its_blank_line_is_carried_out_when_the_client_stops_writing()
    {
        string reply = UapiRawClient.Exchange(_server.SocketPath, "set=1\nlisten_port=7\n", shutdownWrite: true);
        Assert.Equal("errno=0\n\n", reply);
        Assert.Equal("listen_port=7\nerrno=0\n\n", UapiRawClient.Exchange(_server.SocketPath, "get=1\n\n"));
        Reset();
    }

    /// <summary>
    /// As wireguard-go 0.0.20220316 (device/uapi.go IpcHandle reads one byte after "get=1\n"): a byte
    /// other than '\n' there is answered errno=-22 at once, without waiting for its line to end, and
    /// what follows it is read as the next operation; a client that stops writing right after
    /// "get=1\n" gets no reply. Ours read the whole next line first: "get=1\nx" was not answered until
    /// a '\n' came, the rest of that line was swallowed, and a client that stopped writing got
    /// errno=-22. The replies are wireguard-go's, taken from it on its own socket (a request sent as
    /// is, the connection left open unless the case says it stops writing).
    /// </summary>
    [Theory]
    [InlineData("get=1\nx", false, "errno=-22\n\n")]
    [InlineData("get=1\nxyz", false, "errno=-22\n\n")]
    [InlineData("get=1\n\0", false, "errno=-22\n\n")]
    [InlineData("get=1\nxget=1\n\n", false, "errno=-22\n\nerrno=0\n\n")]
    [InlineData("fz_get=1\nxget=1\n\n", false, "errno=-22\n\nerrno=0\n\n")]
    [InlineData("get=1\n", true, "")]
    public void The_byte_after_get_is_answered_as_wireguard_go_answers_it(string request, bool stopWriting, string expected)
    {
        int replies = stopWriting ? int.MaxValue : expected.Split("errno=").Length - 1;
        Assert.Equal(expected, UapiRawClient.Exchange(_server.SocketPath, request, shutdownWrite: stopWriting, replies: replies));
    }

    /// <summary>
    /// Our own <c>fz_save=1</c> (firezone-tunnel save) ends as <c>get=1</c> does: its blank line is
    /// the one byte after the operation's line, read as wireguard-go reads get's. It read a whole
    /// further line instead: "fz_save=1\nx" was not answered until a '\n' came, the rest of that line
    /// was swallowed, and a client that stopped writing got errno=-22. The fixture's daemon has no
    /// file, so a save that runs is answered EOPNOTSUPP (-95) with its reason.
    /// </summary>
    [Theory]
    [InlineData("fz_save=1\nx", false, "errno=-22\n\n")]
    [InlineData("fz_save=1\nxyz", false, "errno=-22\n\n")]
    [InlineData("fz_save=1\nxget=1\n\n", false, "errno=-22\n\nerrno=0\n\n")]
    [InlineData("fz_save=1\n", true, "")]
    [InlineData("fz_save=1\n\nget=1\n\n", false, "fz_error=not started from a configuration file (firezone-tunnel up FILE): there is no file to save to\nerrno=-95\n\nerrno=0\n\n")]
    public void The_byte_after_fz_save_is_answered_as_the_byte_after_get(string request, bool stopWriting, string expected)
    {
        int replies = stopWriting ? int.MaxValue : expected.Split("errno=").Length - 1;
        Assert.Equal(expected, UapiRawClient.Exchange(_server.SocketPath, request, shutdownWrite: stopWriting, replies: replies));
    }

    /// <summary>
    /// Found by <see cref="UapiWireGuardGoComparisonTests"/>: IPAddress.TryParse reads inet_aton's
    /// forms, so "allowed_ip=10/08" was taken as 0.0.0.0/8, "010.0.0.0" as octal 8.0.0.0 and
    /// "[::1]:80" as ::1; spaces around a prefix were trimmed and a trailing NUL ignored.
    /// wireguard-go (netip.ParsePrefix) refuses all of them.
    /// </summary>
    [Theory]
    [InlineData("allowed_ip=10/8")]
    [InlineData("allowed_ip=10.1/16")]
    [InlineData("allowed_ip=010.0.0.0/8")]
    [InlineData("allowed_ip=10.0.0.010/32")]
    [InlineData("allowed_ip=[::1]/128")]
    [InlineData("allowed_ip=[::1]:80/128")]
    [InlineData("allowed_ip= 10.0.0.0/8")]
    [InlineData("allowed_ip=10.0.0.0/8 ")]
    [InlineData("allowed_ip=1.2.3.4/32\0")]
    [InlineData("endpoint=1:5")]
    [InlineData("endpoint=1.2.3:5")]
    [InlineData("endpoint=0x7f.0.0.1:5")]
    [InlineData("endpoint=010.0.0.1:5")]
    [InlineData("endpoint=192.0.2.1:5\0")]
    [InlineData("persistent_keepalive_interval=25\0")]
    public void Peer_values_wireguard_go_refuses_are_refused(string line)
    {
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse(["public_key=" + new string('1', 64), line.Replace("\\0", "\0", StringComparison.Ordinal)]));
        Assert.Equal(UapiErrno.EINVAL, error.Errno);
    }

    [Theory]
    [InlineData("listen_port=5\0")]
    [InlineData("fwmark=1\0")]
    public void Device_numbers_with_a_trailing_NUL_are_refused(string line)
    {
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([line.Replace("\\0", "\0", StringComparison.Ordinal)]));
        Assert.Equal(UapiErrno.EINVAL, error.Errno);
    }

    /// <summary>What wireguard-go 0.0.20220316 takes, the strict reading still takes.</summary>
    [Fact]
    public void Forms_wireguard_go_takes_are_still_taken()
    {
        var request = UapiSetParser.Parse(
        [
            "listen_port=05",
            "public_key=" + new string('1', 64),
            "endpoint=[::ffff:192.0.2.1]:05",
            "allowed_ip=10.0.0.1/08",
            "allowed_ip=::ffff:10.0.0.0/104",
            "allowed_ip=FD00::1/64",
        ]);
        Assert.Equal((ushort)5, request.ListenPort);
        Assert.Equal(["10.0.0.0/8", "::ffff:10.0.0.0/104", "fd00::/64"], request.Peers[0].AllowedIps.Select(static a => a.Prefix!.ToString()));
        Assert.Equal("192.0.2.1:5", request.Peers[0].Endpoint!.Value.ToString());
    }

    /// <summary>
    /// Found sending the same raw requests to wireguard-go: a request whose last line had no '\n' (a script that
    /// printf's without one and closes its side) was answered errno=0 with that line dropped.
    /// wireguard-go's bufio.Scanner returns such a line, and applies it.
    /// </summary>
    [Fact]
    public void A_last_line_without_its_newline_is_applied_when_the_client_stops_writing()
    {
        string reply = UapiRawClient.Exchange(_server.SocketPath, "set=1\nlisten_port=7", shutdownWrite: true);
        Assert.Equal("errno=0\n\n", reply);
        Assert.Equal("listen_port=7\nerrno=0\n\n", UapiRawClient.Exchange(_server.SocketPath, "get=1\n\n"));
        Reset();
    }
}
