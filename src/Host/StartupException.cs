namespace Firezone.Actors.Host;

/// <summary>
/// A reason the daemon cannot start that the operator can fix (socket in use, no permission,
/// interface name taken): printed as one line, exit code 1, no stack trace (STYLE rule 11).
/// </summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
