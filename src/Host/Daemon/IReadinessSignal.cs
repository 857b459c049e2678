namespace Firezone.Actors.Host.Daemon;

/// <summary>How a daemon tells whoever started it that it is ready (or why it is not).</summary>
public interface IReadinessSignal
{
    void Ready();

    void Failed(string problem);

    /// <summary>A problem the daemon starts despite (one line), for whoever started it to see.</summary>
    void Warning(string problem);
}
