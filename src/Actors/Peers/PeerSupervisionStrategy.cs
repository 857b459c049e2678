using Akka.Actor;
using Akka.Actor.Internal;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// One-for-one: only the failing PeerConnection is affected. The decision (restart, or stop after
/// too many failures / bad configuration) is made by the PeerSupervisor, which knows which peer
/// the child is and logs it; Akka's decider only gives the exception.
/// </summary>
internal sealed class PeerSupervisionStrategy : OneForOneStrategy
{
    private readonly Func<IActorRef, Exception, bool, bool> _shouldRestart;

    /// <param name="shouldRestart">Called in the supervisor's context with (child, cause, restartable): true to restart the child, false to stop it.</param>
    public PeerSupervisionStrategy(Func<IActorRef, Exception, bool, bool> shouldRestart)
        : base(static e => e is ActorInitializationException ? Directive.Stop : Directive.Restart)
    {
        _shouldRestart = shouldRestart;
    }

    public override void ProcessFailure(IActorContext context, bool restart, IActorRef child, Exception cause, ChildRestartStats stats, IReadOnlyCollection<ChildRestartStats> children)
    {
        if (_shouldRestart(child, cause, restart))
        {
            RestartChild(child, cause, suspendFirst: false);
        }
        else
        {
            context.Stop(child);
        }
    }

    // The supervisor writes its own line naming the peer (public key) and the reason.
    protected override void LogFailure(IActorContext context, IActorRef child, Exception cause, Directive directive)
    {
    }
}
