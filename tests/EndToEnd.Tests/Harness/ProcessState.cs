namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>Whether a PID still runs (a zombie has exited: it only waits for its parent to reap it).</summary>
public static class ProcessState
{
    public static bool IsRunning(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return false;
        }
        // Field 3 follows the parenthesised command name, which may itself contain spaces.
        var state = stat[(stat.LastIndexOf(')') + 2)..];
        return state.Length > 0 && state[0] != 'Z';
    }
}
