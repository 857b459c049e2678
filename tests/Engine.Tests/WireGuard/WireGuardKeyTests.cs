using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>Key equality (compared word by word, in constant time) and what it is used with.</summary>
public class WireGuardKeyTests
{
    [Fact]
    public void Keys_that_differ_in_any_one_bit_are_unequal_and_equal_bytes_are_equal()
    {
        var bytes = new byte[WireGuardKey.Size];
        new SeededRandomSource(7).Fill(bytes);
        var key = new WireGuardKey(bytes);
        Assert.Equal(key, new WireGuardKey(bytes));
        Assert.True(key == new WireGuardKey((byte[])bytes.Clone()));
        for (int bit = 0; bit < WireGuardKey.Size * 8; bit++)
        {
            var changed = (byte[])bytes.Clone();
            changed[bit / 8] ^= (byte)(1 << (bit % 8));
            var other = new WireGuardKey(changed);
            Assert.False(key.Equals(other), $"bit {bit}");
            Assert.True(key != other, $"bit {bit}");
            Assert.False(key.Equals((object)other), $"bit {bit}");
        }
        Assert.NotEqual(default, key);
        Assert.Equal(default(WireGuardKey), new WireGuardKey(new byte[WireGuardKey.Size]));
    }

    [Fact]
    public void A_dictionary_finds_each_of_many_keys_that_share_their_first_bytes()
    {
        // Same hash code (the first four bytes) for all: only equality tells them apart.
        var keys = new List<WireGuardKey>();
        var random = new SeededRandomSource(8);
        for (int i = 0; i < 200; i++)
        {
            var bytes = new byte[WireGuardKey.Size];
            random.Fill(bytes);
            bytes[0] = bytes[1] = bytes[2] = bytes[3] = 0x42;
            keys.Add(new WireGuardKey(bytes));
        }
        var table = keys.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => p.i);
        Assert.Equal(200, table.Count);
        for (int i = 0; i < keys.Count; i++)
        {
            Assert.Equal(i, table[keys[i]]);
        }
    }

    /// <summary>
    /// 44 base64 characters carry 264 bits for the key's 256: wg(8) (encoding.c, key_from_base64)
    /// refuses a key whose last character before the '=' sets any of the two bits past the 32nd
    /// byte, as .NET's decoder does not. Found by the parity review of the configuration file.
    /// </summary>
    [Fact]
    public void A_base64_key_with_bits_set_past_its_32_bytes_is_refused_as_wg_refuses_it()
    {
        const string canonical = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
        Assert.True(WireGuardKey.TryParseBase64(canonical, out var key));
        Assert.Equal(canonical, key.ToBase64());
        // 'g' is 32 (100000); 'h', 'i' and 'j' set the low bits, which no byte holds.
        foreach (char last in "hij")
        {
            Assert.False(WireGuardKey.TryParseBase64(canonical[..42] + last + "=", out _), $"...{last}=");
        }
    }
}
