using System.Text.Json;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The runtime settings the daemon's runtimeconfig.json carries (src/Host/Firezone.Actors.Host.csproj).
/// The tests' daemon runs from the build output beside this assembly, so the file checked here is
/// the one it starts with; PublishTests checks the published one.
/// </summary>
public sealed class RuntimeConfigTests
{
    public const string DynamicCodeSupported = "System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported";

    /// <summary>The <c>configProperties</c> of the runtimeconfig.json in <paramref name="directory"/>.</summary>
    public static JsonElement ConfigProperties(string directory)
    {
        string path = Path.Combine(directory, "firezone-tunnel.runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }

    /// <summary>
    /// The first-generation budget is bounded: the GC's default comes from the L3 cache size, and a
    /// VM reporting 260 MiB of L3 collected gen0 first after about 80 MiB of allocations, so a daemon
    /// allocating a few KB a second grew for hours (README "Memory at idle").
    /// </summary>
    [Fact]
    public void The_daemons_first_generation_budget_is_bounded()
    {
        var properties = ConfigProperties(AppContext.BaseDirectory);
        Assert.True(properties.TryGetProperty("System.GC.Gen0MaxBudget", out var value), "System.GC.Gen0MaxBudget is not set");
        Assert.InRange(value.GetInt64(), 1L << 20, 16L << 20);
    }

    [Fact]
    public void The_daemon_generates_no_code_at_run_time()
    {
        // Emitted IL (the DI container's engine, compiled expression trees and Regexes) left about
        // 7.5 MB of C heap resident in an idle daemon (README "Memory").
        var properties = ConfigProperties(AppContext.BaseDirectory);
        Assert.True(properties.TryGetProperty(DynamicCodeSupported, out var value), DynamicCodeSupported + " is not set");
        Assert.Equal(JsonValueKind.False, value.ValueKind);
    }
}
