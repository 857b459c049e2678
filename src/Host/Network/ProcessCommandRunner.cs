using System.Diagnostics;

namespace Firezone.Actors.Host.Network;

/// <summary>Runs commands as child processes, each with a time bound.</summary>
public sealed class ProcessCommandRunner : ICommandRunner
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static readonly ProcessCommandRunner Instance = new();

    public async Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Always a stdin of its own, empty when there is no input: the daemon's own stdin (a
            // terminal in the foreground, a pipe its starter keeps open) is not the tool's to take.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        // The tools' messages in English whatever the service's locale: they are logged, and
        // InterfaceNetworkSetup tells "already gone" from a failure by them.
        start.Environment["LC_ALL"] = "C";
        string commandLine = file + " " + string.Join(' ', arguments);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            // e.Message is .NET's "An error occurred trying to start process 'X' with working
            // directory 'Y'. REASON": the reason alone, and for a bare name what ENOENT means.
            const int NoSuchFile = 2;
            bool notInstalled = e.NativeErrorCode == NoSuchFile && !file.Contains('/');
            string reason = notInstalled
                ? "no such command on PATH" + (DebianPackage(file) is { } package ? $" (install Debian's {package})" : "")
                : new System.ComponentModel.Win32Exception(e.NativeErrorCode).Message;
            throw new StartupException($"cannot run {file}: {reason}", e) { NotInstalled = notInstalled };
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
            }
            process.StandardInput.Close();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                // The caller's own cancellation (a stop, its own time bound) is not this command's timeout.
                cancellationToken.ThrowIfCancellationRequested();
                throw new StartupException($"{commandLine}: did not finish within {Timeout.TotalSeconds:0} s");
            }
            string error = (await stderr.ConfigureAwait(false)).Trim();
            if (process.ExitCode != 0)
            {
                throw new StartupException($"{commandLine}: {(error.Length == 0 ? $"exit code {process.ExitCode}" : error.Split('\n')[0])}");
            }
            return await stdout.ConfigureAwait(false);
        }
    }

    /// <summary>The Debian package of a program the network setup runs, for the line that says it is missing.</summary>
    private static string? DebianPackage(string file) => file switch
    {
        "nft" => "nftables",
        "ip" => "iproute2",
        "sysctl" => "procps",
        "ls" or "readlink" => "coreutils",
        _ => null,
    };
}
