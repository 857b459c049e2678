using System.Globalization;
using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// Reads a wg-quick(8) configuration file. Keys and section names are case-insensitive and
/// anything after '#' is a comment, as in wg-quick and wireguard-tools' config.c. The engine's own
/// options are comment directives (<c>#! EcnMode = compatibility</c>, <c>#! Role = gateway</c>):
/// wg-quick and wg see an ordinary comment, so one file serves both. Every mistake is reported as
/// <see cref="ConfigException"/> naming the file and line.
/// </summary>
public sealed class WgQuickConfigParser
{
    private readonly IHostNameResolver _resolver;
    private readonly RouteTableNames? _tableNames;

    /// <param name="resolver">Endpoint host names; the system's resolver by default.</param>
    /// <param name="tableNames">Routing table names a <c>Table</c> value may use; this host's rt_tables by default (read only when a file names a table).</param>
    public WgQuickConfigParser(IHostNameResolver? resolver = null, RouteTableNames? tableNames = null)
    {
        _resolver = resolver ?? DnsHostNameResolver.Instance;
        _tableNames = tableNames;
    }

    public TunnelConfig ParseFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // .NET's texts repeat the path and say "Access to the path is denied" for a directory,
            // even to root: name the reason the way cat(1) would.
            string reason = e switch
            {
                _ when Directory.Exists(path) => "is a directory, not a configuration file",
                FileNotFoundException or DirectoryNotFoundException => "no such file",
                UnauthorizedAccessException => "permission denied",
                _ => e.Message,
            };
            throw new ConfigException(path, 0, $"cannot read the file: {reason}");
        }
        RefuseValuesThatAreNotUtf8(path, bytes);
        // As File.ReadAllText: a byte order mark picks the encoding and is taken off.
        using var text = new StreamReader(new MemoryStream(bytes), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var reader = new Reader(path, _resolver, _tableNames);
        if (bytes.AsSpan().StartsWith("\uFEFF"u8))
        {
            // wg-quick does not see "[Interface]" behind it and wg refuses the line, so the unit's
            // reload (wg syncconf of the same file) would fail on a file the service started with.
            reader.Note(1, "the file starts with a UTF-8 byte order mark, which wg-quick and wg refuse (systemctl reload fails on it): save it without one");
        }
        return reader.Read(text.ReadToEnd());
    }

    /// <summary>
    /// A byte that is not UTF-8 (a Latin-1 'é') would be read as U+FFFD, silently: wg-quick passes
    /// it on unchanged, so a hook would run another command than under wg-quick, a DNS search
    /// domain name another domain. Refused in the part of a line before its '#' (which never
    /// occurs inside a UTF-8 sequence); a comment may hold anything, as wg-quick ignores it.
    /// </summary>
    private static void RefuseValuesThatAreNotUtf8(string path, byte[] bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return;
        }
        int line = 1;
        int start = 0;
        while (start <= bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0)
            {
                end = bytes.Length;
            }
            var content = bytes.AsSpan(start, end - start);
            int hash = content.IndexOf((byte)'#');
            if (hash >= 0)
            {
                content = content[..hash];
            }
            if (System.Text.Unicode.Utf8.IsValid(content) is false)
            {
                int valid = 0;
                while (System.Text.Rune.DecodeFromUtf8(content[valid..], out _, out int consumed) == System.Buffers.OperationStatus.Done)
                {
                    valid += consumed;
                }
                throw new ConfigException(path, line, $"the line is not UTF-8 (byte 0x{content[valid]:X2} at column {valid + 1}), which is how this daemon reads the file: wg-quick passes such a byte on as it is, here it would become U+FFFD: save the file as UTF-8");
            }
            line++;
            start = end + 1;
        }
    }

    public TunnelConfig Parse(string path, string text) => new Reader(path, _resolver, _tableNames).Read(text);

    private enum Section { None, Interface, Peer }

    /// <summary>The IPv6 minimum link MTU (RFC 8200 section 5): below it the kernel disables IPv6 on the link.</summary>
    public const int MinIPv6Mtu = 1280;

    /// <summary>
    /// The smallest MTU accepted: 576, the datagram size every IPv4 host must be able to receive
    /// (RFC 791; RFC 1122 section 3.3.2). wg-quick passes any value to <c>ip link set mtu</c>; a
    /// smaller link would fragment even datagrams every host is entitled to send whole. Nothing in
    /// the engine needs more: buffers are at least 2 KiB and padding stops at the MTU.
    /// </summary>
    public const int MinMtu = 576;

    public const int MaxMtu = 65535;

    /// <summary>The state of one read: the section being filled and what was seen so far.</summary>
    private sealed class Reader(string path, IHostNameResolver resolver, RouteTableNames? tableNames)
    {
        private readonly List<ConfigNote> _notes = [];
        private readonly List<PeerBuilder> _peers = [];
        private readonly Dictionary<string, int> _seenInterfaceKeys = new(StringComparer.OrdinalIgnoreCase);
        private Section _section;
        private int _interfaceLine;
        private WireGuardKey? _privateKey;
        private ushort? _listenPort;
        private int _listenPortLine;
        private int _fwMarkLine;
        private uint? _fwMark;
        private int? _mtu;
        private int _mtuLine;
        private int _ipv6AddressLine;
        private RouteTable _table = RouteTable.Auto;
        private HostRole _role;
        private EcnMode _defaultEcn;
        private bool _saveConfig;
        private readonly List<InterfaceAddress> _addresses = [];
        private readonly List<int> _addressLineOf = [];
        private readonly List<WgQuickHook> _hooks = [];
        private readonly List<string> _dns = [];
        private readonly List<string> _dnsSearch = [];
        private int _dnsLine;
        private readonly Dictionary<InterfaceAddress, int> _addressLines = [];

        public TunnelConfig Read(string text)
        {
            string[] lines = text.Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                ReadLine(i + 1, lines[i].TrimEnd('\r'));
            }
            return Finish();
        }

        private ConfigException Error(int line, string problem) => new(path, line, problem);

        public void Note(int line, string message) => _notes.Add(new ConfigNote(line, message));

        private void ReadLine(int line, string raw)
        {
            // Only the C locale's white space, as wg (char_is_space) and wg-quick ([[:space:]] under
            // systemd's C locale) trim; .NET's Trim also takes no-break and other Unicode spaces.
            string trimmed = raw.Trim(CSpace);
            if (trimmed.StartsWith("#!", StringComparison.Ordinal))
            {
                string directive = WithoutComment(trimmed[2..]);
                // "#! Key = Value" and "#!Key=Value" are directives; "#!important: ..." without a
                // "Key =" stays an ordinary comment.
                if ((trimmed.Length > 2 && char.IsWhiteSpace(trimmed[2])) || StartsWithDirectiveKey(directive))
                {
                    ReadDirective(line, directive.Trim());
                    return;
                }
            }
            int hash = trimmed.IndexOf('#');
            string content = (hash < 0 ? trimmed : trimmed[..hash]).Trim(CSpace);
            if (content.Length == 0)
            {
                return;
            }
            int equalsSign = content.IndexOf('=');
            int unicodeSpace = UnicodeSpaceIn(equalsSign >= 0 && IsWgQuickKey(content[..equalsSign].Trim(CSpace)) ? content[..equalsSign] : content);
            if (unicodeSpace >= 0)
            {
                // A no-break space pasted from a web page: wg refuses the line ("Line unrecognized"
                // or a bad value). In a wg-quick key's value it stays, as wg-quick keeps it (a
                // hook's command), and the value's own reading refuses it where it must.
                throw Error(line, $"the line holds a Unicode space (U+{(int)content[unicodeSpace]:X4}), which wg and wg-quick do not read as a space: write an ordinary space or tab");
            }
            if (content.StartsWith('['))
            {
                ReadSectionHeader(line, content);
                return;
            }
            int equals = content.IndexOf('=');
            if (equals < 0)
            {
                throw Error(line, "line is not 'Key = Value'");
            }
            string key = content[..equals].Trim(CSpace);
            string value = content[(equals + 1)..].Trim(CSpace);
            if (!IsWgQuickKey(key))
            {
                // wg-quick hands every other line to wg(8), which takes all white space out of a line
                // before reading it (config.c), so "Endpoint = 192.0.2.1 : 51820" works there.
                key = WithoutWhiteSpace(key);
                value = WithoutWhiteSpace(value);
                if (IsWgQuickKey(key))
                {
                    // "Ad dress" is none of wg-quick's keys (it trims only the ends of a key), so
                    // wg-quick hands the line to wg, which refuses it: "Line unrecognized".
                    throw Error(line, "a key with white space inside is none of wg-quick's keys, and wg does not know it either");
                }
            }
            switch (_section)
            {
                case Section.Interface:
                    ReadInterfaceKey(line, key, value);
                    break;
                case Section.Peer:
                    ReadPeerKey(line, key, value);
                    break;
                default:
                    throw Error(line, SafeText.IsQuotableName(key)
                        ? $"'{key}' outside a section ([Interface] or [Peer] first)"
                        : "line outside a section ([Interface] or [Peer] first)");
            }
        }

        private void ReadSectionHeader(int line, string content)
        {
            if (content.Equals("[Interface]", StringComparison.OrdinalIgnoreCase))
            {
                _section = Section.Interface;
                if (_interfaceLine != 0)
                {
                    // wg-quick reads every [Interface] line it finds, and wg (config.c) goes on filling
                    // the one device: the sections add up, as if they were one.
                    Note(line, $"second [Interface] section (the first is on line {_interfaceLine}): read as part of the first, as wg-quick and wg read it");
                    return;
                }
                _interfaceLine = line;
            }
            else if (WithoutWhiteSpace(content).Equals("[Peer]", StringComparison.OrdinalIgnoreCase))
            {
                // wg-quick hands "[ Peer ]" to wg, which takes the spaces out of every line (config.c).
                _section = Section.Peer;
                _peers.Add(new PeerBuilder(line));
            }
            else if (WithoutWhiteSpace(content).Equals("[Interface]", StringComparison.OrdinalIgnoreCase))
            {
                // wg reads it, but wg-quick compares the trimmed line with "[Interface]" and hands
                // the section's Address, DNS... to wg as well: refused there (and on systemctl reload).
                throw Error(line, "write [Interface] without spaces inside the brackets: wg-quick does not see it as [Interface] otherwise, and wg refuses its Address, DNS, MTU, Table and hooks");
            }
            else
            {
                // A typo ("[Peeer]") is named; anything else is not quoted (SafeText).
                string name = content.EndsWith(']') ? content[1..^1] : "";
                throw Error(line, SafeText.IsQuotableName(name)
                    ? $"unknown section '[{name}]' (expected [Interface] or [Peer])"
                    : "unknown section (expected [Interface] or [Peer])");
            }
        }

        /// <summary>
        /// A single-valued key given again: wg-quick (MTU, Table) and wg (config.c: the rest) keep
        /// the later value without a word. The same here, said out loud, since it is usually an
        /// edit that left the old line behind.
        /// </summary>
        private void Once(int line, string key)
        {
            if (_seenInterfaceKeys.TryGetValue(key, out int first))
            {
                Note(line, RepeatedKeyNote(key, "[Interface]", first));
            }
            _seenInterfaceKeys[key] = line;
        }

        private static string RepeatedKeyNote(string key, string section, int first) =>
            $"{key} given twice in {section} (first on line {first}): the later value counts, as in wg-quick and wg";

        private void ReadInterfaceKey(int line, string key, string value)
        {
            switch (KeyName(key))
            {
                case "privatekey":
                    Once(line, "PrivateKey");
                    // Clamped, as wireguard-go stores the key `wg setconf` gives it.
                    _privateKey = Firezone.Actors.Engine.Crypto.Curve25519.Clamp(ParseKey(line, "PrivateKey", value));
                    break;
                case "listenport":
                    Once(line, "ListenPort");
                    // wg reads the port with getaddrinfo (config.c, parse_port), so a UDP service name
                    // from /etc/services is one; numbers are read strictly (see TryParsePort).
                    if (!EndpointText.TryParsePort(value, allowServiceName: true, out var port))
                    {
                        throw Error(line, "ListenPort is not a port between 0 and 65535 or a UDP service name (/etc/services)");
                    }
                    _listenPort = port;
                    _listenPortLine = line;
                    break;
                case "fwmark":
                    Once(line, "FwMark");
                    _fwMark = ParseFwMark(line, value);
                    _fwMarkLine = line;
                    break;
                case "address":
                    // wg-quick splits Address at commas and then at white space (bash word splitting).
                    foreach (var item in SplitList(value, ' ', '\t'))
                    {
                        if (!InterfaceAddress.TryParse(item, out var address, out var error))
                        {
                            throw Error(line, $"Address: {error}");
                        }
                        // ip address add refuses the second (EEXIST) once the TUN device exists: an
                        // IPv4 address with the same prefix length, an IPv6 address with any.
                        var assigned = address.IsIPv4 ? address : address with { PrefixLength = 128 };
                        if (!_addressLines.TryAdd(assigned, line))
                        {
                            throw Error(line, $"Address {address} is given twice (first on line {_addressLines[assigned]}){(address.IsIPv4 ? "" : ": an IPv6 address takes one prefix length")}");
                        }
                        _addresses.Add(address);
                        _addressLineOf.Add(line);
                        if (!address.IsIPv4 && _ipv6AddressLine == 0)
                        {
                            _ipv6AddressLine = line;
                        }
                    }
                    break;
                case "mtu":
                    Once(line, "MTU");
                    if (value.Length == 0)
                    {
                        // wg-quick keeps the empty value and tests it with -n: the automatic MTU.
                        _mtu = null;
                        _mtuLine = 0;
                        break;
                    }
                    // Below 1280 only IPv4 works (checked against the addresses in Finish). wg-quick
                    // hands the value to ip(8), so "01420" is octal there: 784.
                    if (!IpNumberText.TryParse(value, out uint mtu) || mtu < MinMtu || mtu > MaxMtu)
                    {
                        throw Error(line, $"MTU is not a number between {MinMtu} and {MaxMtu}");
                    }
                    _mtu = (int)mtu;
                    _mtuLine = line;
                    break;
                case "table":
                    Once(line, "Table");
                    // Empty: wg-quick's [[ -z $TABLE || $TABLE == auto ]], the default.
                    _table = value.Length == 0 ? RouteTable.Auto : ParseTable(line, value);
                    break;
                case "dns":
                    // wg-quick: `for v in ${value//,/ }`, an address (digits and dots, or anything with
                    // a colon) is a server, anything else a search domain.
                    foreach (var item in SplitList(value, ' ', '\t'))
                    {
                        (System.Text.RegularExpressions.Regex.IsMatch(item, "(^[0-9.]+$)|(^.*:.*$)") ? _dns : _dnsSearch).Add(item);
                    }
                    if (_dnsLine == 0)
                    {
                        _dnsLine = line;
                    }
                    break;
                case "preup":
                    _hooks.Add(new WgQuickHook(WgQuickHookStage.PreUp, value, line));
                    break;
                case "postup":
                    _hooks.Add(new WgQuickHook(WgQuickHookStage.PostUp, value, line));
                    break;
                case "predown":
                    _hooks.Add(new WgQuickHook(WgQuickHookStage.PreDown, value, line));
                    break;
                case "postdown":
                    _hooks.Add(new WgQuickHook(WgQuickHookStage.PostDown, value, line));
                    break;
                case "saveconfig":
                    if (!value.Equals("true", StringComparison.OrdinalIgnoreCase) && !value.Equals("false", StringComparison.OrdinalIgnoreCase))
                    {
                        throw Error(line, "SaveConfig is not true or false");
                    }
                    _saveConfig = value.Equals("true", StringComparison.OrdinalIgnoreCase);
                    break;
                default:
                    throw UnknownKey(line, key, "[Interface]");
            }
        }

        private void ReadPeerKey(int line, string key, string value)
        {
            var peer = _peers[^1];
            switch (KeyName(key))
            {
                case "publickey":
                    peer.Once(this, line, "PublicKey");
                    peer.PublicKey = ParseKey(line, "PublicKey", value);
                    break;
                case "presharedkey":
                    peer.Once(this, line, "PresharedKey");
                    peer.PresharedKey = ParseKey(line, "PresharedKey", value);
                    break;
                case "allowedips":
                    // wg refuses a line without a value (config.c's get_value needs a character after
                    // "AllowedIPs=": "Line unrecognized"; only `wg set` takes an empty list) and an
                    // empty entry (parse_allowedips): accepted here, the file would start but fail
                    // wg-quick and `systemctl reload` (wg syncconf).
                    if (value.Length == 0)
                    {
                        throw Error(line, "AllowedIPs has no value, which wg refuses ('Line unrecognized'): leave the line out for a peer without allowed IPs");
                    }
                    if (value.Split(',').Contains(""))
                    {
                        throw Error(line, "AllowedIPs: an empty entry (a comma too many), which wg refuses");
                    }
                    foreach (var item in SplitList(value))
                    {
                        // wg(8) reads the address with inet_pton(3), which IPAddress.TryParse alone is laxer than.
                        int slash = item.IndexOf('/');
                        if (!IpAddressText.TryParse(slash < 0 ? item : item[..slash], out var address) || !IpPrefix.TryParse(item, out var prefix, out _))
                        {
                            // IpPrefix's error quotes the entry; a misplaced key must not reach the log.
                            throw Error(line, "AllowedIPs: an entry is not a CIDR prefix (address/length)");
                        }
                        if (!prefix.Address.Equals(address))
                        {
                            // wg warns too (config.c, validate_netmask): usually a host written with
                            // its subnet's length, which routes the whole subnet to this peer.
                            Note(line, $"AllowedIPs {address}/{prefix.Length} has host bits set: read as {prefix}, as wg reads it (it warns of a nonzero host part)");
                        }
                        peer.AllowedIps.Add((prefix, line));
                    }
                    break;
                case "endpoint":
                    peer.Once(this, line, "Endpoint");
                    peer.Endpoint = ResolveEndpoint(line, value);
                    break;
                case "persistentkeepalive":
                    peer.Once(this, line, "PersistentKeepalive");
                    if (value.Equals("off", StringComparison.OrdinalIgnoreCase))
                    {
                        peer.Keepalive = 0;
                    }
                    else if (ushort.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                    {
                        peer.Keepalive = seconds;
                    }
                    else
                    {
                        throw Error(line, "PersistentKeepalive is not 'off' or a number of seconds up to 65535");
                    }
                    break;
                default:
                    throw UnknownKey(line, key, "[Peer]");
            }
        }

        private void ReadDirective(int line, string directive)
        {
            int equals = directive.IndexOf('=');
            if (equals < 0)
            {
                throw Error(line, "directive is not '#! Key = Value'");
            }
            string key = directive[..equals].Trim();
            string value = directive[(equals + 1)..].Trim();
            switch (key.ToLowerInvariant())
            {
                case "ecnmode":
                    var mode = ParseEcnMode(line, value);
                    if (_section == Section.Peer)
                    {
                        _peers[^1].EcnMode = mode;
                    }
                    else if (_section == Section.Interface)
                    {
                        _defaultEcn = mode;
                    }
                    else
                    {
                        throw Error(line, "#! EcnMode outside a section");
                    }
                    break;
                case "role":
                    if (_section != Section.Interface)
                    {
                        throw Error(line, "#! Role belongs in [Interface]");
                    }
                    _role = value.ToLowerInvariant() switch
                    {
                        "client" => HostRole.Client,
                        "gateway" => HostRole.Gateway,
                        _ => throw Error(line, "#! Role is not client or gateway"),
                    };
                    break;
                default:
                    throw Error(line, SafeText.IsQuotableName(key)
                        ? $"unknown directive '#! {key}' (known: EcnMode, Role)"
                        : "unknown directive (known: EcnMode, Role)");
            }
        }

        /// <summary>
        /// A key the parser does not know. Only a plain identifier is quoted: "PrivateKey: yAnz...="
        /// splits at the base64 padding, and its "key" is the secret (see <see cref="SafeText"/>).
        /// </summary>
        private ConfigException UnknownKey(int line, string key, string section) => key.ToLowerInvariant() switch
        {
            // A key of the other section: usually a [Peer] line left out, or an [Interface] key
            // (DNS, MTU) added at the end of the file, below the peers.
            _ when !SafeText.IsQuotableName(key) => Error(line, $"line in {section} is not 'Key = Value' with a known key"),
            "publickey" or "presharedkey" or "allowedips" or "endpoint" or "persistentkeepalive" when section == "[Interface]" =>
                Error(line, $"'{key}' belongs in [Peer], not [Interface] (is a [Peer] line missing above it?)"),
            "privatekey" or "listenport" or "fwmark" or "address" or "mtu" or "table" or "dns" or "preup" or "postup" or "predown" or "postdown" or "saveconfig" when section == "[Peer]" =>
                Error(line, $"'{key}' belongs in [Interface], not [Peer]: move it above the first [Peer]"),
            _ => Error(line, $"unknown key '{key}' in {section}"),
        };

        /// <summary>
        /// wg-quick's Table: off, auto, or what <c>ip route add ... table T</c> takes. Case counts:
        /// wg-quick compares the value with "off" and "auto" after it has turned nocasematch off,
        /// and hands anything else, "Off" too, to ip(8), which compares names with strcmp.
        /// </summary>
        private RouteTable ParseTable(int line, string value)
        {
            if (value == "off")
            {
                return RouteTable.Off;
            }
            if (value == "auto")
            {
                return RouteTable.Auto;
            }
            if (value.Length > 0 && char.IsAsciiDigit(value[0]))
            {
                // Table 0 is RT_TABLE_UNSPEC: the kernel would put the routes in main (fib_new_table).
                if (IpNumberText.TryParse(value, out uint number) && number != 0)
                {
                    return RouteTable.Named(number.ToString(CultureInfo.InvariantCulture));
                }
            }
            else if ((tableNames ?? RouteTableNames.System).Contains(value))
            {
                return RouteTable.Named(value);
            }
            else if (value.ToLowerInvariant() is "off" or "auto" or "main")
            {
                throw Error(line, "Table: write off, auto and main in lower case: wg-quick compares them as written and hands another case to ip(8) as a table name, which it refuses");
            }
            throw Error(line, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables");
        }

        private EcnMode ParseEcnMode(int line, string value) =>
            Uapi.UapiGetFormatter.TryParseEcnModeName(value, out var mode) ? mode : throw Error(line, "#! EcnMode is not normal, compatibility or off");

        private WireGuardKey ParseKey(int line, string name, string value)
        {
            if (!WireGuardKey.TryParseBase64(value, out var key))
            {
                // The value is a secret for PrivateKey/PresharedKey: name the problem, never echo it.
                throw Error(line, $"{name} is not a base64 WireGuard key (44 characters encoding 32 bytes)");
            }
            return key;
        }

        private uint ParseFwMark(int line, string value)
        {
            if (value.Equals("off", StringComparison.OrdinalIgnoreCase))
            {
                return 0;
            }
            // As wg reads it (config.c, parse_fwmark): hex only after a lower-case "0x", else decimal
            // ("010" is 10, and "0X10" no number).
            uint mark = 0;
            bool ok = value.StartsWith("0x", StringComparison.Ordinal)
                ? uint.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mark)
                : DecimalText.IsDigits(value) && uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out mark);
            if (!ok)
            {
                throw Error(line, "FwMark is not 'off' or a 32-bit number (decimal, or hex after a lower-case 0x)");
            }
            return mark;
        }

        private UdpEndpoint ResolveEndpoint(int line, string value)
        {
            if (!EndpointText.TrySplit(value, out var host, out var port, out var error, allowServiceName: true))
            {
                // wg (config.c, parse_endpoint) takes the port after the last colon also when the
                // rest holds colons, so "2001:db8::1:51820" is [2001:db8::1]:51820 there. Read so
                // when the rest is an IPv6 address, with a note: a forgotten port reads the last
                // group as one.
                int colon = value.LastIndexOf(':');
                if (value.StartsWith('[') || colon <= 0
                    || !IpAddressText.TryParse(value[..colon], out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
                {
                    throw Error(line, $"Endpoint: {error}");
                }
                if (!EndpointText.TrySplit($"[{value[..colon]}]{value[colon..]}", out host, out port, out error, allowServiceName: true))
                {
                    throw Error(line, $"Endpoint: {error}");
                }
                Note(line, "Endpoint: an IPv6 address without brackets, read as wg reads it, with the port after the last colon: write it as [address]:port");
            }
            // glibc's getaddrinfo (inet6_scopeid_pton), which wg resolves with, takes an interface
            // name as the zone only for a link-local or a node- or link-local multicast address.
            int zone = host.IndexOf('%');
            if (zone >= 0 && !DecimalText.IsDigits(host[(zone + 1)..])
                && IpAddressText.TryParse(host[..zone], out var bare) && bare.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                && !(bare.IsIPv6LinkLocal || (bare.IsIPv6Multicast && (bare.GetAddressBytes()[1] & 0x0f) is 1 or 2)))
            {
                throw Error(line, "Endpoint: an interface name as the zone goes only with a link-local address, as wg's getaddrinfo reads it: leave it out, or give the interface's number");
            }
            IReadOnlyList<IPAddress> addresses;
            try
            {
                addresses = resolver.Resolve(host);
            }
            catch (HostNameResolutionException e)
            {
                // Transient, as an empty answer: the name may resolve once the network is up.
                throw new ConfigException(path, line, $"Endpoint: {e.Message}") { Transient = true };
            }
            if (addresses.Count == 0)
            {
                throw new ConfigException(path, line, "Endpoint: cannot resolve the host name") { Transient = true };
            }
            // The first answer, as wg(8) takes it (config.c, parse_endpoint): getaddrinfo has already
            // ordered them by RFC 6724, so IPv6 first where the host has a usable global IPv6 route
            // and IPv4 first where not. Preferring IPv4 always gave a dual-stack name a different
            // endpoint here than under wg-quick, and `systemctl reload` (wg syncconf, which resolves
            // with wg) then moved the peer to the other family.
            return UdpEndpoint.FromIPEndPoint(new IPEndPoint(addresses[0], port));
        }

        private static string WithoutComment(string text)
        {
            int hash = text.IndexOf('#');
            return hash < 0 ? text : text[..hash];
        }

        /// <summary>True for "Key = ..." where Key is a plain word (so a directive written without the space after "#!").</summary>
        private static bool StartsWithDirectiveKey(string text)
        {
            int equals = text.IndexOf('=');
            return equals > 0 && SafeText.IsQuotableName(text[..equals].Trim());
        }

        /// <summary>
        /// A key's name in lower case, as wg (strncasecmp) and wg-quick (nocasematch, C locale) match
        /// it: ASCII letters only. A name with anything else matches no key (ToLowerInvariant would
        /// fold the Kelvin sign U+212A to 'k'; OrdinalIgnoreCase, used for sections, does not).
        /// </summary>
        private static string KeyName(string key) => System.Text.Ascii.IsValid(key) ? key.ToLowerInvariant() : "";

        /// <summary>The keys wg-quick reads itself (parse_options); their values keep their spaces.</summary>
        private static bool IsWgQuickKey(string key) => KeyName(key)
            is "address" or "mtu" or "dns" or "table" or "preup" or "predown" or "postup" or "postdown" or "saveconfig";

        /// <summary>The C locale's isspace(3): what wg's config.c takes out of a line and wg-quick trims.</summary>
        private static readonly char[] CSpace = [' ', '\t', '\n', '\v', '\f', '\r'];

        /// <summary>The index of the first white space character that is not the C locale's, or -1.</summary>
        private static int UnicodeSpaceIn(string text)
        {
            for (int i = 0; i < text.Length; i++)
            {
                if (char.IsWhiteSpace(text[i]) && Array.IndexOf(CSpace, text[i]) < 0)
                {
                    return i;
                }
            }
            return -1;
        }

        /// <summary>What wg's config.c takes out of a line: the C locale's isspace(3), not Unicode's spaces.</summary>
        private static string WithoutWhiteSpace(string text)
        {
            if (text.AsSpan().IndexOfAny(CSpace) < 0)
            {
                return text;
            }
            var kept = new System.Text.StringBuilder(text.Length);
            foreach (char c in text)
            {
                if (Array.IndexOf(CSpace, c) < 0)
                {
                    kept.Append(c);
                }
            }
            return kept.ToString();
        }

        private static IEnumerable<string> SplitList(string value, params char[] separators)
        {
            // The separators are all that splits, as bash's word splitting (IFS) in wg-quick.
            foreach (var item in value.Split([',', .. separators]))
            {
                if (item.Length > 0)
                {
                    yield return item;
                }
            }
        }

        private TunnelConfig Finish()
        {
            if (_interfaceLine == 0)
            {
                throw Error(1, "no [Interface] section");
            }
            // No PrivateKey is no mistake: wg setconf leaves such an interface without a key (as
            // wireguard-go starts), and wg-quick(8) suggests giving it one from a hook
            // (PostUp = wg set %i private-key <(pass ...)).
            var privateKey = _privateKey;
            if (_mtu < MinIPv6Mtu && _ipv6AddressLine != 0)
            {
                throw Error(_mtuLine, $"MTU {_mtu} is below {MinIPv6Mtu}, the IPv6 minimum (RFC 8200 section 5), and the Address on line {_ipv6AddressLine} is IPv6: the kernel disables IPv6 on such a link");
            }
            // The sections are applied in order, as wg setconf applies them (config.c, then the
            // UAPI or netlink): a second section with the same PublicKey changes the same peer, its
            // AllowedIPs replacing the earlier ones (setconf sets replace_allowed_ips on every peer)
            // and the other keys it gives replacing theirs; a prefix given to a second peer moves to
            // it (cryptokey routing, whitepaper section 2, maps a prefix to one peer). Nested
            // prefixes are not a conflict: routing is longest match.
            var merged = new List<MergedPeer>(_peers.Count);
            var byKey = new Dictionary<WireGuardKey, MergedPeer>();
            WireGuardKey? ownPublicKey = privateKey is { } key ? Firezone.Actors.Engine.Crypto.Curve25519.PublicKeyOf(key) : null;
            var owners = new Dictionary<IpPrefix, (MergedPeer Peer, int PeerLine, int Line)>();
            foreach (var builder in _peers)
            {
                if (builder.PublicKey is not { } publicKey)
                {
                    throw Error(builder.Line, "[Peer] has no PublicKey");
                }
                if (publicKey == ownPublicKey)
                {
                    // wg setconf (wireguard-go) ignores such a peer, and wg-quick then adds no route for
                    // its AllowedIPs; the same here, said out loud.
                    _notes.Add(new ConfigNote(builder.Line, "this [Peer] has the interface's own PublicKey (that of its PrivateKey): ignored, with its AllowedIPs, as wg setconf does"));
                    continue;
                }
                if (byKey.TryGetValue(publicKey, out var peer))
                {
                    Note(builder.Line, $"this [Peer] has the same PublicKey as the [Peer] on line {peer.Line}: both apply to one peer, as in wg setconf; this section's AllowedIPs replace the earlier ones, and the keys it gives replace theirs");
                    foreach (var prefix in peer.AllowedIps)
                    {
                        owners.Remove(prefix);
                    }
                    peer.AllowedIps.Clear();
                    if (builder.Gave("PresharedKey"))
                    {
                        peer.PresharedKey = builder.PresharedKey;
                    }
                    if (builder.Gave("Endpoint"))
                    {
                        peer.Endpoint = builder.Endpoint;
                    }
                    if (builder.Gave("PersistentKeepalive"))
                    {
                        peer.Keepalive = builder.Keepalive;
                    }
                    peer.EcnMode = builder.EcnMode ?? peer.EcnMode;
                }
                else
                {
                    if (merged.Count == Control.DeviceLimits.MaxPeers)
                    {
                        // wireguard-go's device.MaxPeers, where wg setconf fails against it.
                        throw Error(builder.Line, $"more than {Control.DeviceLimits.MaxPeers} peers (wireguard-go's limit): this is the {Control.DeviceLimits.MaxPeers + 1}th different PublicKey");
                    }
                    peer = new MergedPeer(builder);
                    byKey.Add(publicKey, peer);
                    merged.Add(peer);
                }
                foreach (var (prefix, line) in builder.AllowedIps)
                {
                    if (owners.TryGetValue(prefix, out var owner))
                    {
                        if (owner.Peer == peer)
                        {
                            continue;
                        }
                        Note(line, $"AllowedIPs {prefix} is also on the [Peer] on line {owner.PeerLine} (line {owner.Line}): it moves to this one, as in wg setconf");
                        owner.Peer.AllowedIps.Remove(prefix);
                    }
                    owners[prefix] = (peer, builder.Line, line);
                    peer.AllowedIps.Add(prefix);
                }
            }
            // An IPv6 allowed IP's route (Table other than off) is refused too on such a link (ip:
            // "No such device"), under AllowedIPs, which said nothing of the MTU.
            if (_mtu < MinIPv6Mtu && _table.Mode != RouteTableMode.Off
                && owners.Where(static o => !o.Key.IsIPv4).OrderBy(static o => o.Value.Line).FirstOrDefault() is { Key: { } ipv6Prefix, Value.Line: var ipv6Line })
            {
                throw Error(_mtuLine, $"MTU {_mtu} is below {MinIPv6Mtu}, the IPv6 minimum (RFC 8200 section 5), and AllowedIPs {ipv6Prefix} on line {ipv6Line} is IPv6: the kernel disables IPv6 on such a link and refuses a route to it: set MTU = 1280 or more (the outer datagrams are then fragmented on a smaller path) or leave IPv6 out of AllowedIPs (Table = off adds no routes, but IPv6 through the tunnel still does not work)");
            }
            var peers = new List<PeerConfig>(merged.Count);
            foreach (var peer in merged)
            {
                peers.Add(new PeerConfig
                {
                    PublicKey = peer.PublicKey,
                    PresharedKey = peer.PresharedKey,
                    Endpoint = peer.Endpoint,
                    PersistentKeepaliveSeconds = peer.Keepalive,
                    AllowedIps = peer.AllowedIps,
                    EcnMode = peer.EcnMode ?? _defaultEcn,
                });
            }
            return new TunnelConfig
            {
                SourcePath = path,
                Interface = new InterfaceConfig
                {
                    PrivateKey = privateKey,
                    ListenPort = _listenPort,
                    ListenPortLine = _listenPortLine,
                    FwMark = _fwMark,
                    FwMarkLine = _fwMarkLine,
                    Addresses = _addresses,
                    AddressLines = _addressLineOf,
                    Mtu = _mtu,
                    Table = _table,
                    Hooks = _hooks,
                    SaveConfig = _saveConfig,
                    Dns = _dns,
                    DnsSearch = _dnsSearch,
                    DnsLine = _dnsLine,
                    Role = _role,
                    DefaultEcnMode = _defaultEcn,
                },
                Peers = peers,
                AllowedIpLines = owners.ToDictionary(static o => o.Key, static o => o.Value.Line),
                Notes = _notes,
            };
        }

        /// <summary>One peer after every section with its PublicKey was applied.</summary>
        private sealed class MergedPeer(PeerBuilder first)
        {
            public int Line { get; } = first.Line;
            public WireGuardKey PublicKey { get; } = first.PublicKey!.Value;
            public WireGuardKey? PresharedKey { get; set; } = first.PresharedKey;
            public UdpEndpoint Endpoint { get; set; } = first.Endpoint;
            public ushort Keepalive { get; set; } = first.Keepalive;
            public EcnMode? EcnMode { get; set; } = first.EcnMode;
            public List<IpPrefix> AllowedIps { get; } = [];
        }

        /// <summary>One [Peer] section while it is being read.</summary>
        private sealed class PeerBuilder(int line)
        {
            private readonly Dictionary<string, int> _seen = new(StringComparer.OrdinalIgnoreCase);

            public int Line { get; } = line;
            public WireGuardKey? PublicKey { get; set; }
            public WireGuardKey? PresharedKey { get; set; }
            public UdpEndpoint Endpoint { get; set; }
            public ushort Keepalive { get; set; }
            public EcnMode? EcnMode { get; set; }
            public List<(IpPrefix Prefix, int Line)> AllowedIps { get; } = [];

            /// <summary>Whether the section gave the key: a later section for the same peer changes only those.</summary>
            public bool Gave(string key) => _seen.ContainsKey(key);

            public void Once(Reader reader, int line, string key)
            {
                if (_seen.TryGetValue(key, out int first))
                {
                    reader.Note(line, RepeatedKeyNote(key, "this [Peer]", first));
                }
                _seen[key] = line;
            }
        }
    }
}
