namespace Firezone.Actors.Actors.Io;

/// <summary>
/// Told by a reader thread (<see cref="BatchReaderThread{TSteps}"/>) to its actor when it found no
/// buffer to read into: every buffer of the pool is in flight, so its reads wait (back-pressure)
/// and the tunnel moves nothing through it meanwhile. At most once per <see cref="Interval"/> per
/// reader; the actor logs it at Warning, since an operator otherwise sees only a stalled tunnel.
/// </summary>
internal sealed record ReadsPaused(string Reader, int Leased, int MaxBuffers)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    public const string LogTemplate = "{Reader}: every packet buffer is in use ({Leased} of {MaxBuffers}); its reads wait until buffers come back (this line at most every 10 s)";
}
