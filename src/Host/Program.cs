namespace Firezone.Actors.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("firezone-tunnel: the service host is being built (issue 6).");
        return 1;
    }
}
