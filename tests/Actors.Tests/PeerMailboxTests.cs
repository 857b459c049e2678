using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>The PeerConnection mailbox: FIFO, and what is left at stop goes to dead letters.</summary>
public sealed class PeerMailboxTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void The_queue_is_first_in_first_out_and_hands_leftovers_to_dead_letters()
    {
        var queue = new PeerMessageQueue();
        Assert.False(queue.HasMessages);
        for (int i = 0; i < 100; i++)
        {
            queue.Enqueue(TestActor, new Envelope(i, TestActor));
        }
        Assert.True(queue.HasMessages);
        Assert.Equal(100, queue.Count);
        for (int i = 0; i < 60; i++)
        {
            Assert.True(queue.TryDequeue(out var envelope));
            Assert.Equal(i, envelope.Message);
        }
        var deadLetters = new PeerMessageQueue();
        queue.CleanUp(TestActor, deadLetters);
        Assert.False(queue.HasMessages);
        Assert.Equal(40, deadLetters.Count);
        Assert.True(deadLetters.TryDequeue(out var first));
        Assert.Equal(60, first.Message);
    }

    [Fact]
    public void An_actor_on_the_peer_mailbox_gets_its_messages_in_order()
    {
        PeerMailbox.Register(Sys);
        var echo = Sys.ActorOf(Props.Create(() => new EchoActor()).WithMailbox(PeerMailbox.Id));
        for (int i = 0; i < 50; i++)
        {
            echo.Tell(i, TestActor);
        }
        for (int i = 0; i < 50; i++)
        {
            ExpectMsg(i, Wait); // not the 3 s default: the echo actor runs on the shared default dispatcher, late on a loaded machine
        }
    }

    private sealed class EchoActor : ReceiveActor
    {
        public EchoActor() => ReceiveAny(m => Sender.Tell(m));
    }
}
