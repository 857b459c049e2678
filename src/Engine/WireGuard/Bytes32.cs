using System.Runtime.CompilerServices;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// 32 bytes held inside the object that declares the field (a key, a chaining key, a hash), used
/// as a span. A separate <c>byte[32]</c> costs 56 bytes plus an 8-byte reference; a Gateway keeps
/// thousands of idle peers, each with several such keys (issue 8: at most 5 KB per idle peer).
/// </summary>
[InlineArray(Size)]
internal struct Bytes32
{
    public const int Size = 32;

    private byte _element0;
}
