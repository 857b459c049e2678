namespace Firezone.Actors.Host.Config;

/// <summary>
/// A mistake in a configuration file, reported as the one line <c>FILE:LINE: problem</c>
/// (STYLE rule 11: errors for people name the file, the line and the problem, never a stack trace).
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string file, int line, string problem)
        : base($"{file}:{line}: {problem}")
    {
        File = file;
        Line = line;
        Problem = problem;
    }

    public string File { get; }

    public int Line { get; }

    public string Problem { get; }
}
