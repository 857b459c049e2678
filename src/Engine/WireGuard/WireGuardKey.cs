using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// A 32-byte Curve25519 key (private, public or preshared) as a value type: usable as a dictionary
/// key, formatted as base64 (wg-quick files, wg(8)) or lowercase hex (the cross-platform UAPI).
/// <see cref="ToString"/> never prints the key, so a key that slips into a log line leaks nothing.
/// </summary>
public readonly struct WireGuardKey : IEquatable<WireGuardKey>
{
    public const int Size = 32;

    [InlineArray(Size)]
    private struct Bytes32
    {
        private byte _element0;
    }

    private readonly Bytes32 _bytes;

    public WireGuardKey(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"a WireGuard key is {Size} bytes, got {bytes.Length}", nameof(bytes));
        }
        bytes.CopyTo(_bytes);
    }

    /// <summary>A copy of the 32 key bytes (allocates; for the handshake path and configuration, not per packet).</summary>
    public byte[] ToArray() => ((ReadOnlySpan<byte>)_bytes).ToArray();

    public void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)_bytes).CopyTo(destination);

    /// <summary>All zero: how the UAPI says "no key" (for example, remove the preshared key).</summary>
    public bool IsZero => ((ReadOnlySpan<byte>)_bytes).IndexOfAnyExcept((byte)0) < 0;

    public string ToBase64() => Convert.ToBase64String(_bytes);

    public string ToHex() => Convert.ToHexStringLower(_bytes);

    /// <summary>The 64 lowercase hex characters of <see cref="ToHex"/> as UTF-8 into <paramref name="utf8"/>, without a string (a UAPI get of thousands of peers).</summary>
    public bool TryFormatHex(Span<byte> utf8, out int bytesWritten) => Convert.TryToHexStringLower(_bytes, utf8, out bytesWritten);

    /// <summary>
    /// The 44-character base64 form, only in its one encoding: as wg(8) reads it (encoding.c,
    /// key_from_base64), the two bits of the last character that fall past the 32nd byte must be
    /// zero, which .NET's decoder does not check (it drops them), nor does it refuse spaces inside.
    /// </summary>
    public static bool TryParseBase64(string? text, out WireGuardKey key)
    {
        key = default;
        Span<byte> buffer = stackalloc byte[Size + 3];
        if (text is null || text.Length != 44 || !Convert.TryFromBase64String(text, buffer, out int written) || written != Size)
        {
            return false;
        }
        Span<char> canonical = stackalloc char[44];
        if (!Convert.TryToBase64Chars(buffer[..Size], canonical, out _) || !canonical.SequenceEqual(text))
        {
            return false;
        }
        key = new WireGuardKey(buffer[..Size]);
        return true;
    }

    public static bool TryParseHex(string? text, out WireGuardKey key)
    {
        key = default;
        if (text is null || text.Length != Size * 2)
        {
            return false;
        }
        Span<byte> buffer = stackalloc byte[Size];
        if (Convert.FromHexString(text, buffer, out _, out int written) != System.Buffers.OperationStatus.Done || written != Size)
        {
            return false;
        }
        key = new WireGuardKey(buffer);
        return true;
    }

    /// <summary>
    /// Constant-time comparison, since keys may be secrets: the four 64-bit words are compared with
    /// XOR and OR and one test at the end, no early exit. Not <see cref="CryptographicOperations.FixedTimeEquals"/>,
    /// whose byte loop (not inlined across assemblies) took 3.6% of the daemon's CPU during a TCP
    /// stream: every packet compares keys twice (the allowed-IPs owner against the peer on receive,
    /// the peer table's lookup on send).
    /// </summary>
    public bool Equals(WireGuardKey other)
    {
        ReadOnlySpan<byte> a = _bytes;
        ReadOnlySpan<byte> b = other._bytes;
        ulong difference = (BinaryPrimitives.ReadUInt64LittleEndian(a) ^ BinaryPrimitives.ReadUInt64LittleEndian(b))
            | (BinaryPrimitives.ReadUInt64LittleEndian(a[8..]) ^ BinaryPrimitives.ReadUInt64LittleEndian(b[8..]))
            | (BinaryPrimitives.ReadUInt64LittleEndian(a[16..]) ^ BinaryPrimitives.ReadUInt64LittleEndian(b[16..]))
            | (BinaryPrimitives.ReadUInt64LittleEndian(a[24..]) ^ BinaryPrimitives.ReadUInt64LittleEndian(b[24..]));
        return difference == 0;
    }

    public override bool Equals(object? obj) => obj is WireGuardKey other && Equals(other);

    public override int GetHashCode()
    {
        ReadOnlySpan<byte> bytes = _bytes;
        return BitConverter.ToInt32(bytes);
    }

    public static bool operator ==(WireGuardKey a, WireGuardKey b) => a.Equals(b);
    public static bool operator !=(WireGuardKey a, WireGuardKey b) => !a.Equals(b);

    /// <summary>Redacted on purpose; use <see cref="ToBase64"/> where a key must be shown (a public key in `show`).</summary>
    public override string ToString() => "(key)";
}
