namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Tests that set the process's umask (a process-wide value) run alone: beside them a daemon test's
/// UapiServer.Start sets and restores umask 077 for its socket, and either could read the other's.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessUmaskCollection
{
    public const string Name = "process umask";
}
