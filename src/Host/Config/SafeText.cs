namespace Firezone.Actors.Host.Config;

/// <summary>
/// What an error message may quote from a configuration file or a UAPI request. A mistyped line
/// such as <c>PrivateKey: yAnz...=</c> splits at the base64 padding '=', so the "key name" can hold
/// the secret itself; errors therefore quote a key name only when it is a short plain identifier
/// and never quote values or whole lines (they go to stderr, the journal and UAPI logs).
/// </summary>
public static class SafeText
{
    /// <summary>
    /// Longest name quoted: the longest real key (persistent_keepalive_interval) is 29 characters,
    /// while a base64 key before its padding is 43 and a hex key 64, so no key fits.
    /// </summary>
    public const int MaxQuotedName = 32;

    /// <summary>True when <paramref name="name"/> is [A-Za-z_]+ and at most <see cref="MaxQuotedName"/> long.</summary>
    public static bool IsQuotableName(string name)
    {
        if (name.Length == 0 || name.Length > MaxQuotedName)
        {
            return false;
        }
        foreach (char c in name)
        {
            if (!(c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or '_'))
            {
                return false;
            }
        }
        return true;
    }
}
