using System.Runtime.ExceptionServices;

namespace Firezone.Actors.Actors;

/// <summary>
/// Sent by an I/O actor's dedicated thread to the actor itself when the blocking call threw (the
/// device or socket is gone): the actor rethrows it inside its own context so the failure reaches
/// its supervisor, which escalates (TunnelActor maps it to <c>TunnelFailed</c>).
/// </summary>
internal sealed class IoThreadFailed(ExceptionDispatchInfo error)
{
    public ExceptionDispatchInfo Error { get; } = error;
}
