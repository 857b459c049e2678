using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>The RFC 6479 window against a naive model: a set of every counter seen plus the highest.</summary>
public class ReplayWindowTests
{
    private const ulong Limit = ProtocolConstants.RejectAfterMessages;

    private sealed class Model
    {
        private readonly HashSet<ulong> _seen = [];
        private ulong _max;

        public bool TryAccept(ulong counter)
        {
            if (counter >= Limit || _seen.Contains(counter) || (counter <= _max && _max - counter > ReplayWindow.WindowSize))
            {
                return false;
            }
            _seen.Add(counter);
            _max = Math.Max(_max, counter);
            return true;
        }
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(2, 3000)]
    [InlineData(3, 20000)]
    [InlineData(4, 1_000_000)]
    public void Agrees_with_the_naive_model_on_random_counter_streams(int seed, int spread)
    {
        var random = new Random(seed);
        var window = new ReplayWindow();
        var model = new Model();
        ulong baseCounter = 0;
        for (int i = 0; i < 50_000; i++)
        {
            baseCounter += (ulong)random.Next(0, 4);
            long offset = random.Next(-spread, spread / 4 + 2);
            ulong counter = offset < 0 && (ulong)(-offset) > baseCounter ? 0 : (ulong)((long)baseCounter + offset);
            bool expected = model.TryAccept(counter);
            Assert.Equal(expected, window.WouldAccept(counter, Limit));
            Assert.Equal(expected, window.TryAccept(counter, Limit));
        }
    }

    [Fact]
    public void Accepts_at_least_2048_counters_behind_the_highest()
    {
        var window = new ReplayWindow();
        Assert.True(window.TryAccept(10_000, Limit));
        for (ulong c = 10_000 - 2048; c < 10_000; c++)
        {
            Assert.True(window.TryAccept(c, Limit));
        }
        Assert.True(ReplayWindow.WindowSize >= 2048);
        Assert.False(window.TryAccept(10_000 - ReplayWindow.WindowSize - 1, Limit));
        Assert.False(window.TryAccept(10_000, Limit));
    }

    [Fact]
    public void Rejects_counters_at_or_beyond_reject_after_messages()
    {
        var window = new ReplayWindow();
        Assert.False(window.TryAccept(Limit, Limit));
        Assert.False(window.TryAccept(ulong.MaxValue, Limit));
        Assert.True(window.TryAccept(Limit - 1, Limit));
        Assert.False(window.TryAccept(Limit - 1, Limit));
    }

    [Fact]
    public void A_big_jump_clears_the_whole_ring()
    {
        var window = new ReplayWindow();
        for (ulong c = 0; c < 200; c++)
        {
            Assert.True(window.TryAccept(c, Limit));
        }
        ulong far = 1_000_000;
        Assert.True(window.TryAccept(far, Limit));
        // Counters that share ring slots with the old ones must read as unseen.
        for (ulong c = far - 200; c < far; c++)
        {
            Assert.True(window.TryAccept(c, Limit));
        }
        window.Reset();
        Assert.True(window.TryAccept(5, Limit));
    }
}
