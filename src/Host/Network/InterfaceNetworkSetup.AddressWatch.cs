using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

public sealed partial class InterfaceNetworkSetup
{
    /// <summary>How long after an address change of the interface its addresses are read: `ip address flush` removes them one by one.</summary>
    internal static readonly TimeSpan AddressCheckDelay = TimeSpan.FromMilliseconds(200);

    private IDisposable? _addressWatch;
    private DebouncedCheck? _addressCheck;
    private IReadOnlyList<InterfaceAddress> _watchedAddresses = [];
    // The configured addresses last seen missing (the check's task only, one at a time).
    private readonly HashSet<InterfaceAddress> _missingAddresses = [];

    /// <summary>
    /// Starts a listener of the address changes of the interface (given its name, <c>onChange</c>
    /// and <c>onFailure</c>; <see cref="Native.AddressChangeListener"/> in the daemon); null, the
    /// default: the addresses are not watched.
    /// </summary>
    public Func<string, Action, Action<Exception>, IDisposable>? WatchAddresses { get; init; }

    /// <summary>
    /// Watches the addresses the configuration put on the interface, for the life of the setup: one
    /// removed (`ip address del`, `ip address flush`, or the kernel, which removes an interface's IPv6
    /// addresses when it goes down) took the traffic to and from it and the routes it covered,
    /// without a word in the log (the service review). Now each configured address that goes is
    /// named at Warning, with what it means and how to put it back, and at Information when it is
    /// there again. Not put back by the daemon: an operator who removes an address means it, and a
    /// restart of the interface restores the configuration whole. Nothing runs while the
    /// interface's addresses do not change.
    /// </summary>
    private void WatchAddressesOf(IReadOnlyList<InterfaceAddress> addresses)
    {
        if (WatchAddresses is null || addresses.Count == 0 || _addressWatch is not null)
        {
            return;
        }
        _watchedAddresses = addresses;
        _addressCheck = new DebouncedCheck(AddressCheckDelay, CheckAddressesAsync,
            e => logger.LogError(e, "Checking the addresses of {Interface} failed: {Problem}", interfaceName, e.Message));
        try
        {
            _addressWatch = WatchAddresses(interfaceName, _addressCheck.Request,
                e => logger.LogWarning("Stopped watching the addresses of {Interface}: {Problem}; if one is removed, the log will not say so", interfaceName, e.Message));
        }
        catch (IOException e)
        {
            logger.LogWarning("Cannot watch the addresses of {Interface}: {Problem}; if one is removed, the log will not say so", interfaceName, e.Message);
        }
    }

    private async Task CheckAddressesAsync(CancellationToken cancellationToken)
    {
        string listed;
        try
        {
            listed = await runner.RunAsync("ip", ["-o", "address", "show", "dev", interfaceName], null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            // The interface is gone (wg-quick down, ip link delete): the tunnel's stop says so.
            logger.LogDebug("The addresses of {Interface} could not be read: {Problem}", interfaceName, e.Message);
            return;
        }
        var present = ParseAddresses(listed);
        foreach (var address in _watchedAddresses)
        {
            if (!present.Contains(address))
            {
                if (_missingAddresses.Add(address))
                {
                    logger.LogWarning("Address {Address} of {Interface} was removed (by another program, or by the kernel when the link went down, which removes IPv6 addresses): traffic to and from it and the routes it covered are gone; restart the interface to set it up again, or add the address back with `{Command:l}`",
                        address.ToString(), interfaceName, $"ip address add {address} dev {interfaceName}");
                }
            }
            else if (_missingAddresses.Remove(address))
            {
                logger.LogInformation("Address {Address} is on {Interface} again", address.ToString(), interfaceName);
            }
        }
    }

    /// <summary>The addresses in `ip -o address show` lines ("2: wg0    inet 10.0.0.2/24 scope global wg0 ...").</summary>
    internal static HashSet<InterfaceAddress> ParseAddresses(string listed)
    {
        var addresses = new HashSet<InterfaceAddress>();
        foreach (string line in listed.Split('\n'))
        {
            string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (int i = 0; i + 1 < words.Length; i++)
            {
                if (words[i] is "inet" or "inet6" && InterfaceAddress.TryParse(words[i + 1], out var address, out _))
                {
                    addresses.Add(address);
                    break;
                }
            }
        }
        return addresses;
    }

    /// <summary>Stops the address watch and waits for a check under way (the stop's removal of the interface is no news).</summary>
    private async Task StopWatchingAddressesAsync()
    {
        if (_addressCheck is not null)
        {
            await _addressCheck.StopAsync().ConfigureAwait(false);
        }
        _addressWatch?.Dispose();
        _addressWatch = null;
    }
}
