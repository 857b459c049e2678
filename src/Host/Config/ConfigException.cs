namespace Firezone.Actors.Host.Config;

/// <summary>
/// A mistake in a configuration file, reported as the one line <c>FILE:LINE: problem</c>
/// (STYLE rule 11: errors for people name the file, the line and the problem, never a stack trace).
/// </summary>
public sealed class ConfigException : Exception
{
    /// <param name="line">1-based; 0 for a problem with the whole file (it cannot be read), reported as <c>FILE: problem</c>.</param>
    public ConfigException(string file, int line, string problem)
        : base(line > 0 ? $"{file}:{line}: {problem}" : $"{file}: {problem}")
    {
        File = file;
        Line = line;
        Problem = problem;
    }

    public string File { get; }

    public int Line { get; }

    public string Problem { get; }

    /// <summary>
    /// The problem may go away without a change to the file: an Endpoint host name that does not
    /// resolve (yet, at boot). The others are mistakes in the file, which a restart repeats.
    /// </summary>
    public bool Transient { get; init; }
}
