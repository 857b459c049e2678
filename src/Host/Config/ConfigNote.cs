namespace Firezone.Actors.Host.Config;

/// <summary>
/// Something the parser accepted but does not act on (a wg-quick-only key such as DNS or PostUp),
/// reported to the operator so nothing is silently ignored.
/// </summary>
/// <param name="Line">1-based; 0 for a note about the whole file (its permissions).</param>
public sealed record ConfigNote(int Line, string Message);
