namespace Firezone.Actors.Host.Config;

/// <summary>
/// Something the parser accepted but does not act on (a wg-quick-only key such as DNS or PostUp),
/// reported to the operator so nothing is silently ignored.
/// </summary>
public sealed record ConfigNote(int Line, string Message);
