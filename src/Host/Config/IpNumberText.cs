namespace Firezone.Actors.Host.Config;

/// <summary>
/// A number as ip(8) reads it (strtoul(3) with base 0: get_unsigned, rtnl_rttable_a2n): "0x10" is
/// hex, a leading 0 makes it octal, so "010" is 8 and "08" is no number. wg-quick hands MTU, Table
/// and the Address prefix length to ip as they are written, so the daemon reads them the same way.
/// </summary>
public static class IpNumberText
{
    public static bool TryParse(string text, out uint number)
    {
        number = 0;
        int radix = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? 16 : text.Length > 1 && text[0] == '0' ? 8 : 10;
        string digits = radix == 16 ? text[2..] : text;
        if (digits.Length == 0)
        {
            return false;
        }
        ulong value = 0;
        foreach (char c in digits)
        {
            int digit = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiHexDigit(c) ? char.ToLowerInvariant(c) - 'a' + 10 : radix;
            if (digit >= radix)
            {
                return false;
            }
            value = value * (ulong)radix + (ulong)digit;
            if (value > uint.MaxValue)
            {
                return false;
            }
        }
        number = (uint)value;
        return true;
    }
}
