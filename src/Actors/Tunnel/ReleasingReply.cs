using Akka.Actor;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// The reply address of one request from outside the actor system that lets go of the reply once it
/// has been handed over. Akka's ActorCell keeps the Sender of the last message it processed until
/// its next message, and an Ask's FutureActorRef holds its task and so the reply: after a
/// `wg show` of 10,000 peers the whole status (about 370 bytes a peer) stayed reachable from the
/// idle TunnelActor and PeerSupervisor until the next control message (issue 8, item 4). The cells
/// now hold this small object, which holds nothing once it has delivered or timed out.
/// </summary>
internal sealed class ReleasingReply<T> : MinimalActorRef
{
    private TaskCompletionSource<T>? _promise = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ReleasingReply(IActorRefProvider provider)
    {
        Provider = provider;
        Path = provider.TempPath();
    }

    public override ActorPath Path { get; }

    public override IActorRefProvider Provider { get; }

    /// <summary>Sends <paramref name="request"/> to <paramref name="target"/> and waits up to <paramref name="timeout"/> for a <typeparamref name="T"/>, as Ask does.</summary>
    public static async Task<T> Ask(IActorRef target, object request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reply = new ReleasingReply<T>(((IInternalActorRef)target).Provider);
        var task = reply._promise!.Task;
        target.Tell(request, reply);
        try
        {
            return await task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new AskTimeoutException($"Timeout after {timeout} seconds");
        }
        finally
        {
            reply._promise = null;
        }
    }

    protected override void TellInternal(object message, IActorRef sender)
    {
        if (Interlocked.Exchange(ref _promise, null) is not { } promise)
        {
            return; // a second reply, or one after the time bound: nobody waits for it
        }
        switch (message)
        {
            case T result:
                promise.TrySetResult(result);
                break;
            case Status.Failure failure:
                promise.TrySetException(failure.Cause);
                break;
            default:
                promise.TrySetException(new ArgumentException($"expected a {typeof(T).Name} reply, got {message?.GetType().Name ?? "null"}"));
                break;
        }
    }
}
