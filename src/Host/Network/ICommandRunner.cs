namespace Firezone.Actors.Host.Network;

/// <summary>Runs ip(8), nft(8), sysctl(8) (and ls(1) of /proc/sys); a seam so tests can run them inside a namespace.</summary>
public interface ICommandRunner
{
    /// <summary>Runs the command; <see cref="StartupException"/> naming it and its stderr when it fails.</summary>
    Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken);
}
