namespace Firezone.Actors.Engine.WireGuard;

/// <summary>The first byte of every WireGuard message (whitepaper section 5.4).</summary>
public enum MessageType : byte
{
    Invalid = 0,
    Initiation = 1,
    Response = 2,
    CookieReply = 3,
    TransportData = 4,
}
