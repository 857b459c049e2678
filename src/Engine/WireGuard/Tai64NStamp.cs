using System.Runtime.CompilerServices;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>A 12-byte TAI64N timestamp held inside its owner (see <see cref="Bytes32"/> for why not a <c>byte[]</c>).</summary>
[InlineArray(Tai64N.Size)]
internal struct Tai64NStamp
{
    private byte _element0;
}
