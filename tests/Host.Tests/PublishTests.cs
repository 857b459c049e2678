using System.Reflection.PortableExecutable;
using System.Text.Json;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The README's install command, `dotnet publish src/Host -c Release -o out`, gives a daemon
/// precompiled to native code (ReadyToRun), which starts and answers its first handshake without
/// compiling those paths first (src/Host/Firezone.Actors.Host.csproj).
/// </summary>
[Collection(PublishCollection.Name)]
public sealed class PublishTests
{
    private static string HostProject
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                string candidate = Path.Combine(directory.FullName, "src", "Host", "Firezone.Actors.Host.csproj");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
            throw new FileNotFoundException("src/Host/Firezone.Actors.Host.csproj above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>True when the assembly carries a ReadyToRun image (the CLI header's managed native header).</summary>
    private static bool IsReadyToRun(string assembly)
    {
        using var stream = File.OpenRead(assembly);
        using var reader = new PEReader(stream);
        var cor = reader.PEHeaders.CorHeader ?? throw new InvalidDataException(assembly + ": no CLI header");
        return cor.ManagedNativeHeaderDirectory.Size > 0;
    }

    [Fact]
    public async Task Publishing_gives_a_ReadyToRun_daemon_that_runs()
    {
        var directory = Directory.CreateTempSubdirectory("fzt-publish");
        try
        {
            string output = Path.Combine(directory.FullName, "out");
            // Its own build and intermediate directories (--artifacts-path): nothing of the repository's
            // bin and obj, which the other tests run from, is touched.
            var publish = await ProcessRunner.RunAsync("dotnet",
                // No MSBuild node, build server or compiler server left behind: one would hold the
                // output pipes (and the machine) after the publish has exited.
                ["publish", HostProject, "-c", "Release", "-o", output, "--artifacts-path", Path.Combine(directory.FullName, "artifacts"), "-nologo",
                    "-nodeReuse:false", "-p:UseSharedCompilation=false"],
                environment: new Dictionary<string, string>
                {
                    ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1",
                    ["MSBUILDDISABLENODEREUSE"] = "1", ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
                },
                timeout: TimeSpan.FromMinutes(5));
            Assert.True(publish.ExitCode == 0, publish.Stdout + publish.Stderr);

            foreach (string name in new[] { "firezone-tunnel.dll", "Firezone.Actors.Engine.dll", "Firezone.Actors.Native.dll", "Firezone.Actors.Actors.dll", "Akka.dll" })
            {
                Assert.True(IsReadyToRun(Path.Combine(output, name)), name + " is not ReadyToRun");
            }
            // The published daemon carries the build output's runtime settings (RuntimeConfigTests).
            Assert.Equal(JsonValueKind.False, RuntimeConfigTests.ConfigProperties(output).GetProperty(RuntimeConfigTests.DynamicCodeSupported).ValueKind);
            // Framework-dependent, as before: no runtime of its own in the directory.
            Assert.False(File.Exists(Path.Combine(output, "System.Private.CoreLib.dll")));
            // The build output the tests run from is plain IL, so the check above can tell them apart.
            Assert.False(IsReadyToRun(Path.Combine(AppContext.BaseDirectory, "firezone-tunnel.dll")));

            var version = await ProcessRunner.RunAsync(Path.Combine(output, "firezone-tunnel"), ["--version"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(version.ExitCode == 0, version.Stderr);
            Assert.StartsWith("0.1.0", version.Stdout);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}

/// <summary>
/// The publish keeps both cores busy for half a minute: it runs alone, not beside the daemon tests
/// and their time bounds.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PublishCollection
{
    public const string Name = "publish";
}
