namespace Firezone.Actors.Host;

/// <summary>
/// A reason the daemon cannot start that the operator can fix (socket in use, no permission,
/// interface name taken): printed as one line, exit code 1, no stack trace (STYLE rule 11).
/// </summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>
    /// A program the configuration needs is not installed (nft for a gateway, resolvconf for DNS):
    /// every start would fail the same way until it is, so <c>up</c> exits with EX_CONFIG (78), on
    /// which the systemd unit does not restart, rather than 1 every 2.2 s forever.
    /// </summary>
    public bool NotInstalled { get; init; }

    /// <summary>
    /// A PreUp or PostUp hook of the file failed. wg-quick up fails there and wg-quick@.service, a
    /// oneshot, is not started again; a restart every 2.2 s would run the hooks again each time with
    /// no down hook in between (a failed start runs none), adding a PreUp's firewall rule again and
    /// again. So <c>up</c> exits with EX_CONFIG (78) here too.
    /// </summary>
    public bool HookFailed { get; init; }

    /// <summary>
    /// Another interface has the name (found before the TUN device was made: by the PreUp check):
    /// nothing of this start ran, as when the kernel refuses the TUN device's name.
    /// </summary>
    public bool NameTaken { get; init; }

    /// <summary>
    /// True when <paramref name="e"/> or one it wraps is a <see cref="NotInstalled"/> or
    /// <see cref="HookFailed"/> failure: a restart would repeat it, or repeat what it did.
    /// </summary>
    public static bool IsNotForRestart(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is StartupException { NotInstalled: true } or StartupException { HookFailed: true })
            {
                return true;
            }
        }
        return false;
    }
}
