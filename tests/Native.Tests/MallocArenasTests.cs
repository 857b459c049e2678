namespace Firezone.Actors.Native.Tests;

/// <summary>The malloc arena cap the daemon sets at start (<see cref="MallocArenas"/>).</summary>
public sealed class MallocArenasTests
{
    /// <summary>
    /// glibc takes the cap (mallopt answers 1), and an operator's MALLOC_ARENA_MAX is left to win.
    /// Called in the test process, where a cap of 8 (16 is glibc's default on 2 cores) changes
    /// nothing the other tests look at.
    /// </summary>
    [Fact]
    public void The_cap_is_taken_unless_the_operator_set_one()
    {
        string? before = Environment.GetEnvironmentVariable(MallocArenas.Variable);
        try
        {
            Environment.SetEnvironmentVariable(MallocArenas.Variable, null);
            Assert.True(MallocArenas.Limit(8));
            Environment.SetEnvironmentVariable(MallocArenas.Variable, "4");
            Assert.False(MallocArenas.Limit(8));
        }
        finally
        {
            Environment.SetEnvironmentVariable(MallocArenas.Variable, before);
        }
    }
}
