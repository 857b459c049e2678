using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Uapi;
using Serilog.Events;

namespace Firezone.Actors.Host.Cli;

/// <summary>
/// The <c>firezone-tunnel</c> command line: <c>firezone-tunnel [-f] INTERFACE</c> (wireguard-go's
/// interface, so wg-quick can start it), <c>up CONFIG_FILE | INTERFACE</c> or <c>up --config FILE</c> (service mode),
/// <c>show [INTERFACE | all]</c> and <c>save INTERFACE</c>.
/// </summary>
public static class CommandLine
{
    /// <summary>What <c>--version</c> prints and the log's start line says: the version and the commit built ("0.1.0+SHA").</summary>
    public static string Version =>
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>
    /// wg-quick up's reading of its argument: a valid interface name (wg-quick's pattern,
    /// <c>^[a-zA-Z0-9_=+.-]{1,15}$</c>) stands for /etc/wireguard/NAME.conf, anything else is a path.
    /// </summary>
    public static string WgQuickConfigPath(string argument) =>
        System.Text.RegularExpressions.Regex.IsMatch(argument, "^[a-zA-Z0-9_=+.-]{1,15}$") ? $"/etc/wireguard/{argument}.conf" : argument;

    /// <summary>
    /// <c>up wg0.conf</c> in the file's directory reads /etc/wireguard/wg0.conf.conf, as wg-quick up
    /// does; when that is missing and the argument names a file here, say how to give it.
    /// </summary>
    private static string BareNameHint(string? argument, string path) =>
        argument is not null && path != argument && !File.Exists(path) && File.Exists(argument)
            ? $" (a bare name means /etc/wireguard/NAME.conf, as in wg-quick up: for the file in this directory, give ./{argument})"
            : "";

    public static RootCommand Build(ITunnelComposition composition)
    {
        var foreground = new Option<bool>("--foreground", "-f")
        {
            Description = "Stay in the foreground instead of detaching once the interface is ready (also WG_PROCESS_FOREGROUND=1)",
        };
        var logFile = new Option<string?>("--log-file")
        {
            Description = $"JSON-lines log file (default {LogOptions.DefaultDirectory}/INTERFACE.log)",
        };
        var logLevel = new Option<string?>("--log-level")
        {
            Description = "trace, debug, info, warning, error or silent (default info; also LOG_LEVEL, as wireguard-go, where a word none of these means the default)",
        };
        var logFormat = new Option<string?>(LogFormats.Option)
        {
            Description = $"auto (the default: human lines at a terminal, lines with a syslog priority for the journal, else JSON lines), json (JSON lines on stdout and stderr alike, for a container whose log merges them) or text (human lines on stdout wherever it goes); also {LogFormats.Variable}",
            // Empty (a spec's `FIREZONE_LOG_FORMAT=` left blank) is the default, as LOG_LEVEL's.
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(LogFormats.Variable) is { Length: > 0 } format ? format : null,
        };
        var replyPoll = new Option<string?>("--reply-poll-us")
        {
            Description = $"After a packet wakes an idle reader, poll the other device up to this many microseconds for the reply instead of sleeping (lower ping, some CPU); 0 turns it off (default {(int)TunnelSettings.DefaultReplyPollMax.TotalMicroseconds}, also {ReplyPollVariable})",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(ReplyPollVariable),
        };
        var readModeration = new Option<string?>("--read-moderation-us")
        {
            Description = $"While a stream runs, pause a reader this many microseconds after a read of a few full-size packets so the next read finds more (fewer system calls and wake-ups per byte, up to this much added delay for bulk packets; never after idle or for small packets); 0 turns it off (default {(int)TunnelSettings.DefaultReadModeration.TotalMicroseconds}, also {ReadModerationVariable})",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(ReadModerationVariable),
        };
        var noUdpCoalescing = new Option<bool>("--no-udp-coalescing")
        {
            Description = $"Write UDP packets to the TUN device one by one instead of merging a flow's into one offload super-packet (for a host that forwards them into a tunnel endpoint that mishandles UDP GSO; also {NoUdpCoalescingVariable}=1)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(NoUdpCoalescingVariable) == "1",
        };
        var noUdpGro = new Option<bool>("--no-udp-gro")
        {
            Description = $"Receive datagrams one by one instead of letting the kernel merge a flow's into one read (UDP_GRO), for kernels older than 6.9 without the stable fix that keeps datagrams with different ECN codepoints apart (see the README); also {NoUdpGroVariable}=1",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(NoUdpGroVariable) == "1",
        };
        var ecnMode = new Option<string?>("--ecn-mode")
        {
            Description = $"The ECN mode of every peer wg configures (wg-quick, wg setconf, wg set): normal (the default; RFC 6040 copy-in and copy-out), compatibility (sends Not-ECT, still applies the table on receipt) or off (neither, as wireguard-go); wg strips a file's #! EcnMode, so this is how to choose under wg-quick. Not for up, where the file's #! EcnMode decides (also {EcnModeVariable})",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(EcnModeVariable),
        };
        var interfaceName = new Argument<string?>("INTERFACE")
        {
            Description = "The TUN interface to create; its UAPI socket is /var/run/wireguard/INTERFACE.sock",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var root = new RootCommand("firezone-tunnel: a userspace WireGuard tunnel that carries ECN (RFC 6040), a drop-in for wireguard-go")
        {
            foreground, logFile, logLevel, logFormat, replyPoll, readModeration, noUdpCoalescing, noUdpGro, ecnMode, interfaceName,
        };
        root.SetAction((result, token) =>
        {
            string? name = result.GetValue(interfaceName);
            if (!IsUsableInterfaceName(name, out string? problem))
            {
                Console.Error.WriteLine("firezone-tunnel: " + problem);
                return Task.FromResult(2);
            }
            if (!TryLogOptions(result.GetValue(logFile), result.GetValue(logLevel), result.GetValue(logFormat), name, out var log)
                || !TryReplyPoll(result.GetValue(replyPoll), out var replyPollMax)
                || !TryReadModeration(result.GetValue(readModeration), out var moderation)
                || !TryEcnMode(result.GetValue(ecnMode), out var peerEcnMode))
            {
                return Task.FromResult(2);
            }
            // As PID 1 (a container's command) it never detaches: when PID 1 exits the kernel kills
            // every other process of its PID namespace, the detached daemon too, so the container
            // ended at once with exit code 0 and no tunnel.
            bool stayInForeground = result.GetValue(foreground) || Environment.GetEnvironmentVariable("WG_PROCESS_FOREGROUND") == "1"
                || Environment.ProcessId == 1;
            if (!stayInForeground && !DetachedChild.IsDetachedChild)
            {
                return Task.FromResult(Detacher.Run(ArgumentsWithoutForeground(result)));
            }
            return RunDaemonAsync(new DaemonOptions
            {
                InterfaceName = name, Log = log, ReplyPollMax = replyPollMax, ReadModeration = moderation, UdpCoalescing = !result.GetValue(noUdpCoalescing), UdpGro = !result.GetValue(noUdpGro),
                PeerEcnMode = peerEcnMode,
            }, composition, token);
        });

        var configFile = new Option<string?>("--config", "-c")
        {
            Description = "A wg-quick style configuration file (or give it, or an interface name, after up)",
        };
        var upConfig = new Argument<string?>("CONFIG_FILE | INTERFACE")
        {
            Description = "As wg-quick up: a configuration file, or an interface name for /etc/wireguard/INTERFACE.conf",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var upInterface = new Option<string?>("--interface", "-i")
        {
            Description = "Interface name (default: the configuration file's name without .conf, as wg-quick)",
        };
        var upCheck = new Option<bool>("--check")
        {
            Description = "Only read the file, as a start would: its mistake as FILE:LINE: problem and exit code 78 (1 for a host name that does not resolve), else its warnings and 0; nothing is created (the unit's ExecReload runs it before wg syncconf, which reads only wg's keys)",
        };
        // The daemon's options belong to the root (drop-in mode) and to up, not to show: added to
        // both rather than Recursive, so `show --help` lists only what show takes.
        var up = new Command("up", "Service mode: read a wg-quick file, bring the interface up with its addresses and routes, run in the foreground (systemd Type=notify)")
        {
            upConfig, configFile, upInterface, upCheck, logFile, logLevel, logFormat, replyPoll, readModeration, noUdpCoalescing, noUdpGro,
        };
        up.SetAction((result, token) =>
        {
            if (result.GetValue(ecnMode) is not null)
            {
                // Two sources for one setting would leave one of them ignored without a word.
                Console.Error.WriteLine(EcnModeNotForUp);
                return Task.FromResult(2);
            }
            string? option = result.GetValue(configFile), argument = result.GetValue(upConfig);
            if (argument is ['-', _, ..])
            {
                // System.CommandLine gave an unknown option to the free argument (see
                // IsUsableInterfaceName): `up --bogus` read /etc/wireguard/--bogus.conf (exit code 78,
                // a mistake in the file) and `up --config FILE --log-lvl` said "two configurations".
                Console.Error.WriteLine(UnknownOption(argument));
                return Task.FromResult(2);
            }
            if ((option is null) == (argument is null))
            {
                Console.Error.WriteLine(option is null
                    ? "firezone-tunnel: up needs a configuration: up wg0 (reads /etc/wireguard/wg0.conf, as wg-quick up), up FILE or up --config FILE (see --help)"
                    : $"firezone-tunnel: two configurations, '{argument}' and --config '{option}': give one");
                return Task.FromResult(2);
            }
            string path = option ?? WgQuickConfigPath(argument!);
            // The name: --interface, or the one before "up" (`firezone-tunnel wg0 up --config ...`, as
            // the usage line offers), or else the file's name without .conf, as wg-quick takes it.
            string? given = result.GetValue(upInterface);
            string? positional = result.GetValue(interfaceName);
            if (given is not null && positional is not null && given != positional)
            {
                Console.Error.WriteLine($"firezone-tunnel: two interface names, '{positional}' and --interface '{given}': give one");
                return Task.FromResult(2);
            }
            string? explicitName = given ?? positional;
            string name = explicitName ?? Path.GetFileNameWithoutExtension(path);
            if (explicitName is not null && !IsUsableInterfaceName(explicitName, out string? problem))
            {
                Console.Error.WriteLine("firezone-tunnel: " + problem);
                return Task.FromResult(2);
            }
            if (!UapiSocketPath.IsValidInterfaceName(name))
            {
                Console.Error.WriteLine($"firezone-tunnel: '{name}', the configuration file's name without .conf, is not a valid interface name (1 to 15 characters, no '/' or spaces): name the file INTERFACE.conf, as wg-quick wants it, or give --interface NAME");
                return Task.FromResult(2);
            }
            if (name.IndexOfAny(['"', '\\', '*']) >= 0)
            {
                // up names the interface in nftables rules (a gateway's masquerade, a full tunnel's
                // mark tables), where a '"' cannot be quoted, '\' escapes and '*' is a wildcard
                // (iifname "wg*" matches wg0 too); wg-quick refuses every name outside [a-zA-Z0-9_=+.-].
                Console.Error.WriteLine($"firezone-tunnel: '{name}' cannot be named in nftables rules (no '\"', '\\' or '*'): give --interface NAME or rename the file, with letters, digits and _=+.- as wg-quick wants");
                return Task.FromResult(2);
            }
            // Before --check too: a check that passed options a start refuses (`--log-level bogus`)
            // said 0, where the start they were meant for exits 2.
            if (!TryLogOptions(result.GetValue(logFile), result.GetValue(logLevel), result.GetValue(logFormat), name, out var log)
                || !TryReplyPoll(result.GetValue(replyPoll), out var replyPollMax)
                || !TryReadModeration(result.GetValue(readModeration), out var moderation))
            {
                return Task.FromResult(2);
            }
            TunnelConfig config;
            try
            {
                config = new WgQuickConfigParser().ParseFile(path);
            }
            catch (ConfigException e)
            {
                Console.Error.WriteLine("firezone-tunnel: " + e.Message + BareNameHint(argument, path));
                return Task.FromResult(e.Transient ? 1 : ConfigMistakeExitCode);
            }
            if (ConfigFileAccess.IsWorldAccessible(path))
            {
                config = config with { Notes = [new ConfigNote(0, ConfigFileAccess.WorldAccessibleNote), .. config.Notes] };
            }
            if (result.GetValue(upCheck))
            {
                // systemctl reload (wg syncconf of wg-quick strip's output) takes a file whose
                // Address, MTU, Table or #! directive no longer reads without a word, and the next
                // start (a restart on failure, a reboot) then fails on it with exit code 78 and
                // stays down: the unit's ExecReload runs this first, so the reload fails instead,
                // naming the line, and the running tunnel goes on unchanged. A note is a warning, as
                // a start logs it: not the journal's error priority a reload that worked would show.
                foreach (var note in config.Notes)
                {
                    Console.Error.WriteLine(JournalErrorWriter.NoticeLine(note.Line > 0 ? $"firezone-tunnel: {path}:{note.Line}: {note.Message}" : $"firezone-tunnel: {path}: {note.Message}"));
                }
                return Task.FromResult(0);
            }
            return RunDaemonAsync(new DaemonOptions
            {
                InterfaceName = name, Config = config, Log = log, ReplyPollMax = replyPollMax, ReadModeration = moderation, UdpCoalescing = !result.GetValue(noUdpCoalescing), UdpGro = !result.GetValue(noUdpGro),
            }, composition, token);
        });

        var showInterface = new Argument<string?>("INTERFACE")
        {
            Description = "A running firezone-tunnel interface, or all (the default): every interface in /var/run/wireguard, as wg show",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var show = new Command("show", "Show an interface's peers, or every interface's, as wg show does, with each peer's ECN mode and counters") { showInterface };
        show.SetAction(async (result, token) =>
        {
            string? name = result.GetValue(showInterface);
            if (result.GetValue(interfaceName) is { } before)
            {
                Console.Error.WriteLine($"firezone-tunnel: show takes the interface after it: firezone-tunnel show {before}");
                return 2;
            }
            return await ShowCommand.RunAsync(name, UapiSocketPath.DefaultDirectory, token).ConfigureAwait(false);
        });

        var saveInterface = new Argument<string>("INTERFACE") { Description = "A running interface started with firezone-tunnel up" };
        var save = new Command("save", "Write a running interface's configuration (peers, addresses, as they are now) to its file, as wg-quick save does") { saveInterface };
        save.SetAction(async (result, token) =>
        {
            if (result.GetValue(interfaceName) is { } before)
            {
                Console.Error.WriteLine($"firezone-tunnel: save takes the interface after it: firezone-tunnel save {before}");
                return 2;
            }
            return await SaveCommand.RunAsync(result.GetValue(saveInterface)!, UapiSocketPath.DefaultDirectory, token).ConfigureAwait(false);
        });

        root.Subcommands.Add(up);
        root.Subcommands.Add(show);
        root.Subcommands.Add(save);
        // show and save refuse the root's INTERFACE before them; their help does not offer it.
        SubcommandHelp.ListOwnArgumentsOnly(root, interfaceName, show, save);
        return root;
    }

    /// <summary>
    /// Whether the root command's INTERFACE can be used, and if not why. System.CommandLine gives an
    /// unknown option (<c>--bogus</c>) to the free INTERFACE argument, so it is refused here, before
    /// a daemon detaches or a TUN device is named after it; so is a name Linux would refuse only
    /// after the host had started.
    /// </summary>
    internal static bool IsUsableInterfaceName([NotNullWhen(true)] string? name, [NotNullWhen(false)] out string? problem)
    {
        problem = name switch
        {
            null => "an INTERFACE name is required (see --help)",
            ['-', ..] => $"unknown option '{name}' (see --help)",
            _ when name.Contains('%') => $"'{name}' is not a valid interface name: with a '%' in it the kernel picks the name (wg%d gives wg0), which the socket would not be named after; give the name itself",
            _ when !UapiSocketPath.IsValidInterfaceName(name) => $"'{name}' is not a valid interface name (1 to 15 characters, no '/' or spaces)",
            _ => null,
        };
        return problem is null;
    }

    /// <summary>
    /// An unknown option that System.CommandLine gave to a command's free argument (<c>--forground
    /// wg0</c>: "--forground" became INTERFACE), in the command parsed or one it is under. Its
    /// error names the token after it instead ("Unrecognized command or argument 'wg0'"), the one
    /// thing on the line that was right.
    /// </summary>
    private static string? UnknownOptionTakenAsArgument(CommandResult? command)
    {
        for (; command is not null; command = command.Parent as CommandResult)
        {
            foreach (var argument in command.Children.OfType<ArgumentResult>())
            {
                if (argument.Tokens.FirstOrDefault(t => t.Value is ['-', _, ..]) is { } token)
                {
                    return token.Value;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// <c>firezone-tunnel down wg0</c>, as a wg-quick user types it: there is no such command, and
    /// the parser said "Unrecognized command or argument 'wg0'", the one word on the line that was
    /// right (and <c>firezone-tunnel down</c> alone started a daemon for an interface named "down").
    /// The usage error says how an interface that <c>up</c> started is stopped; null for any other
    /// command line.
    /// </summary>
    internal static string? NoDownCommand(string[] args)
    {
        if (args is not ["down", ..])
        {
            return null;
        }
        // The interface a file names, as up names it (office.conf gives office), for the example.
        string? given = args.Skip(1).FirstOrDefault(a => !a.StartsWith('-'));
        string name = given is null ? "wg0"
            : given.Contains('/') || given.EndsWith(".conf", StringComparison.Ordinal) ? Path.GetFileNameWithoutExtension(given) : given;
        if (!UapiSocketPath.IsValidInterfaceName(name))
        {
            name = "wg0";
        }
        return $"firezone-tunnel: there is no down command: stop the process that runs up (Ctrl-C, or kill PID: SIGTERM), systemctl stop firezone-tunnel@{name} for the service, or ip link del {name} (also wg-quick down); each removes its routes and rules";
    }

    /// <summary>Runs a parsed command line; signals are left to the generic host, which stops cleanly on them.</summary>
    public static Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        if (NoDownCommand(args) is { } downProblem)
        {
            Console.Error.WriteLine(downProblem);
            return Task.FromResult(2);
        }
        var result = root.Parse(args);
        if (result.Action is ParseErrorAction && result.Errors.Count > 0)
        {
            // A usage error is one line and exit code 2, like the ones the actions report, rather
            // than System.CommandLine's error followed by the whole help text and exit code 1.
            // An unknown option after the free argument was filled (`up FILE --bogus`) is left
            // unmatched: name it as such rather than "Unrecognized command or argument".
            Console.Error.WriteLine((UnknownOptionTakenAsArgument(result.CommandResult) ?? result.UnmatchedTokens.FirstOrDefault(t => t is ['-', _, ..])) is { } option
                ? UnknownOption(option)
                : $"firezone-tunnel: {result.Errors[0].Message.TrimEnd('.')} (see --help)");
            return Task.FromResult(2);
        }
        return result.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }

    private static string EcnModeNotForUp =>
        $"firezone-tunnel: --ecn-mode and {EcnModeVariable} are for a daemon that wg configures; up takes the ECN mode from the file: #! EcnMode = normal, compatibility or off under [Interface] (every peer) or under a [Peer]";

    /// <summary>The usage error for an option the command does not take; <c>up ... --ecn-mode</c> gets the reason.</summary>
    private static string UnknownOption(string option) =>
        option == "--ecn-mode" || option.StartsWith("--ecn-mode=", StringComparison.Ordinal)
            ? EcnModeNotForUp
            : $"firezone-tunnel: unknown option '{option}' (see --help)";

    private static async Task<int> RunDaemonAsync(DaemonOptions options, ITunnelComposition composition, CancellationToken token)
    {
        IReadinessSignal? readiness = DetachedChild.IsDetachedChild ? new DetachedChild() : null;
        if (readiness is not null)
        {
            // A detached daemon's stdout is /dev/null once it is ready: log to the file only.
            options = options with { Log = options.Log with { Console = false } };
        }
        try
        {
            return await TunnelDaemon.RunAsync(options, composition, readiness, token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The --log-file named on the command line cannot be opened (a default file that cannot
            // be is skipped, TunnelDaemon): a mistake in how the daemon is configured, which a restart
            // does not mend, so EX_CONFIG, on which the unit does not restart (RestartPreventExitStatus).
            string problem = e.Message;
            if (readiness is not null)
            {
                readiness.Failed(problem);
            }
            else
            {
                Console.Error.WriteLine("firezone-tunnel: " + problem);
            }
            return ConfigMistakeExitCode;
        }
    }

    /// <summary>wireguard-go's log level variable, read when --log-level is not given.</summary>
    public const string LogLevelVariable = "LOG_LEVEL";

    /// <summary>
    /// Exit code of <c>up</c> for a mistake in the file: EX_CONFIG (sysexits.h), which the systemd unit
    /// does not restart on (RestartPreventExitStatus), since every start would fail the same way.
    /// </summary>
    public const int ConfigMistakeExitCode = 78;

    public const string ReplyPollVariable = "FIREZONE_REPLY_POLL_US";

    public const string EcnModeVariable = "FIREZONE_ECN_MODE";

    public const string NoUdpCoalescingVariable = "FIREZONE_NO_UDP_COALESCING";

    public const string NoUdpGroVariable = "FIREZONE_NO_UDP_GRO";

    public const string ReadModerationVariable = "FIREZONE_READ_MODERATION_US";

    /// <summary>--ecn-mode (or its environment variable, for wg-quick, which passes no options): normal, compatibility or off; null when neither is given.</summary>
    private static bool TryEcnMode(string? text, out EcnMode? mode)
    {
        mode = null;
        if (text is null)
        {
            return true;
        }
        if (!UapiGetFormatter.TryParseEcnModeName(text, out var parsed))
        {
            Console.Error.WriteLine($"firezone-tunnel: --ecn-mode (or {EcnModeVariable}) '{text}' is not normal, compatibility or off");
            return false;
        }
        mode = parsed;
        return true;
    }

    /// <summary>--reply-poll-us (or its environment variable, for wg-quick, which passes no options): 0 to 100000.</summary>
    private static bool TryReplyPoll(string? text, out TimeSpan max) =>
        TryMicroseconds(text, "--reply-poll-us", ReplyPollVariable, 100_000, TunnelSettings.DefaultReplyPollMax, out max);

    /// <summary>--read-moderation-us (or its environment variable): 0 to 10000.</summary>
    private static bool TryReadModeration(string? text, out TimeSpan pause) =>
        TryMicroseconds(text, "--read-moderation-us", ReadModerationVariable, TunnelSettings.MostReadModerationMicroseconds, TunnelSettings.DefaultReadModeration, out pause);

    /// <summary>A whole number of microseconds from 0 to <paramref name="most"/>; empty: <paramref name="fallback"/>.</summary>
    private static bool TryMicroseconds(string? text, string option, string variable, int most, TimeSpan fallback, out TimeSpan value)
    {
        value = fallback;
        if (string.IsNullOrWhiteSpace(text))
        {
            return true;
        }
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int us) || us > most)
        {
            Console.Error.WriteLine($"firezone-tunnel: {option} / {variable} '{text}' is not a number of microseconds from 0 to {most}");
            return false;
        }
        value = TimeSpan.FromMicroseconds(us);
        return true;
    }

    private static bool TryLogOptions(string? file, string? level, string? formatText, string interfaceName, out LogOptions options)
    {
        options = null!;
        if (!LogFormats.TryParse(formatText, out var format))
        {
            Console.Error.WriteLine($"firezone-tunnel: {LogFormats.Option} (or {LogFormats.Variable}) '{formatText}' is not {LogFormats.Words} (see --help)");
            return false;
        }
        if (file is { Length: 0 })
        {
            // `--log-file "$LOG"` with LOG unset, or `--log-file=`: Path.GetFullPath would throw with a stack trace.
            Console.Error.WriteLine("firezone-tunnel: --log-file is empty: give the log file's path (see --help)");
            return false;
        }
        LogEventLevel parsed = LogEventLevel.Information;
        if (level is not null)
        {
            if (!LogOptions.TryParseLevel(level, out parsed))
            {
                Console.Error.WriteLine($"firezone-tunnel: unknown log level '{level}': use trace, debug, info, warning, error or silent (see --help)");
                return false;
            }
        }
        else if (Environment.GetEnvironmentVariable(LogLevelVariable) is { Length: > 0 } variable
            && !LogOptions.TryParseLevel(variable, out parsed))
        {
            // LOG_LEVEL is a name many programs read, and wireguard-go runs at its default with a
            // word it does not know: a value meant for something else must not stop `wg-quick up`.
            // Said once, by the process the caller sees (a detached child's stderr is relayed by its parent).
            parsed = LogEventLevel.Information;
            if (!DetachedChild.IsDetachedChild)
            {
                Console.Error.WriteLine(JournalErrorWriter.NoticeLine($"firezone-tunnel: {LogLevelVariable} '{variable}' is not trace, debug, info, warning, error or silent: logging at info"));
            }
        }
        options = new LogOptions
        {
            FilePath = file ?? LogOptions.DefaultFileFor(interfaceName),
            FileIsDefault = file is null,
            MinimumLevel = parsed,
            HumanConsole = format == LogFormat.Text || (format == LogFormat.Auto && !Console.IsOutputRedirected),
            JournalConsole = format == LogFormat.Auto && JournalStream.IsConnected(1),
            JsonConsoleForJournal = format == LogFormat.Json && JournalStream.IsConnected(1),
            ConsoleIsStandardError = StandardErrorProblem.OutputIsStandardError(),
        };
        return true;
    }

    private static List<string> ArgumentsWithoutForeground(ParseResult result)
    {
        var arguments = new List<string>();
        foreach (var token in result.Tokens)
        {
            if (token.Value is not ("-f" or "--foreground"))
            {
                arguments.Add(token.Value);
            }
        }
        return arguments;
    }
}
