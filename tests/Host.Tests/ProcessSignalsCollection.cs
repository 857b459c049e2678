namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Tests that send a stop signal to the test process itself, and tests whose code under test
/// handles one in-process: they do not run side by side. DnsHostNameResolverTests sends SIGTERM to
/// this process (its resolver's handler is the one meant to take it); beside it, DaemonTests' daemon,
/// run in-process on the generic host, had its ConsoleLifetime take that SIGTERM too and stopped in
/// the middle of its test. The other test classes handle no such signal in-process and still run
/// alongside.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ProcessSignalsCollection
{
    public const string Name = "process stop signals";
}
