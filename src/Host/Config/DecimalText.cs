namespace Firezone.Actors.Host.Config;

/// <summary>
/// A number written as decimal digits only, as Go's strconv.ParseUint and C's strtoul read it to the
/// end: .NET's integer parsers with <c>NumberStyles.None</c> also take trailing NULs ("5\0" is 5).
/// </summary>
public static class DecimalText
{
    public static bool IsDigits(string text)
    {
        if (text.Length == 0)
        {
            return false;
        }
        foreach (char c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }
}
