using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

public sealed partial class InterfaceNetworkSetup
{
    /// <summary>
    /// Why forwarding must stay on when this gateway stops, or null. The forwarding switches are
    /// shared by every interface of the network namespace, and what else routes through it is told
    /// by its nftables ruleset (called after this gateway's own table is deleted):
    /// <list type="bullet">
    /// <item>another gateway's table (running, or left by a killed one whose next start needs
    /// forwarding as well): restoring this one's "0" would stop the other one forwarding;</item>
    /// <item>another program's address translation (masquerade, snat or dnat in a table not ours):
    /// Docker, libvirt, LXD and Kubernetes masquerade their containers' or guests' traffic and
    /// forward ports into them, in tables of their own or iptables-nft's <c>ip nat</c>. One that
    /// started after this gateway found forwarding on and did not set it itself, so the "0" this
    /// gateway found would cut its containers off.</item>
    /// </list>
    /// No Linux interface says who else needs forwarding; this is a heuristic, and rules of
    /// iptables-legacy (not in the nftables ruleset) are not seen. When nft cannot tell, the
    /// switches are restored as before.
    /// </summary>
    private async Task<string?> OtherForwarderAsync(CancellationToken cancellationToken)
    {
        string ruleset;
        try
        {
            ruleset = await runner.RunAsync("nft", ["list", "ruleset"], null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            logger.LogDebug("Cannot list the nftables ruleset: {Problem}", e.Message);
            return null;
        }
        return OtherForwarder(ruleset, TableName);
    }

    /// <summary>The first reason in <paramref name="ruleset"/> (<c>nft list ruleset</c>) for forwarding to stay on (see <see cref="OtherForwarderAsync"/>).</summary>
    internal static string? OtherForwarder(string ruleset, string ownTable)
    {
        const string tableKeyword = "table ";
        string? table = null;
        foreach (var rawLine in ruleset.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (rawLine.StartsWith(tableKeyword, StringComparison.Ordinal))
            {
                table = rawLine[tableKeyword.Length..].TrimEnd('{').TrimEnd(); // "inet firezone-tunnel-wg0"
                string name = table[(table.IndexOf(' ') + 1)..];
                if (name.StartsWith(TablePrefix, StringComparison.Ordinal) && name != ownTable)
                {
                    return $"nftables table {table} says another gateway still forwards here";
                }
                continue;
            }
            if (table is null || table.EndsWith(' ' + ownTable, StringComparison.Ordinal))
            {
                continue;
            }
            // The statements of a rule, without its comment (whose text could name one).
            int comment = rawLine.IndexOf(" comment \"", StringComparison.Ordinal);
            var statements = (comment < 0 ? rawLine : rawLine[..comment]).Split(' ');
            if (statements.Any(word => word is "masquerade" or "snat" or "dnat"))
            {
                return $"nftables table {table} translates addresses for another program (\"{rawLine}\"), which may need forwarding";
            }
        }
        return null;
    }
}
