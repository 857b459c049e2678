using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Caps glibc's malloc arenas. glibc gives a thread that meets a locked arena a new one, up to 8 a
/// core, and never returns an arena's pages once its allocations are freed; a daemon whose thread
/// pool grows and shrinks with traffic (each burst starts some threads) kept more resident memory
/// after every burst: the soak review saw the Gateway's anonymous memory rise in steps of 3 to 4
/// MB a burst, from 15 to 38 MB over 45 minutes, in 64 MB-aligned arena mappings, never during idle
/// spells, with the managed heap flat; with 2 arenas (MALLOC_ARENA_MAX=2) it stayed flat. The
/// packet path does not call malloc (pooled buffers, managed code, batched system calls), so two
/// arenas cost it no lock contention. An operator's own MALLOC_ARENA_MAX wins (glibc reads it at
/// start; this call would override it).
/// </summary>
public static class MallocArenas
{
    public const string Variable = "MALLOC_ARENA_MAX";

    /// <summary>Caps the arenas at <paramref name="arenas"/> unless <see cref="Variable"/> is set; true if capped.</summary>
    public static bool Limit(int arenas)
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 })
        {
            return false;
        }
        try
        {
            return Malloc.mallopt(Malloc.M_ARENA_MAX, arenas) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no arenas to cap).
            return false;
        }
    }
}
