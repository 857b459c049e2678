namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>Where the repository's lab scripts are, found by walking up from the test assembly.</summary>
public static class Paths
{
    public static string RepositoryRoot { get; } = FindRoot();
    public static string LabScript => Path.Combine(RepositoryRoot, "scripts", "lab", "lab.sh");
    public static string TransferScript => Path.Combine(RepositoryRoot, "scripts", "lab", "xfer.py");
    public static string FloodScript => Path.Combine(RepositoryRoot, "scripts", "lab", "flood.py");
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "lab", "lab.sh")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"scripts/lab/lab.sh not found above {AppContext.BaseDirectory}");
    }
}
