namespace Firezone.Actors.Host.Config;

/// <summary>What to do with the routes of the peers' allowed IPs: wg-quick's <c>Table</c> key.</summary>
public enum RouteTableMode
{
    /// <summary>No Table key, or <c>Table = auto</c>: routes in the main table, a /0 by fwmark and policy rules (wg-quick's add_default).</summary>
    Auto,

    /// <summary><c>Table = off</c>: no routes at all.</summary>
    Off,

    /// <summary><c>Table = main</c>, a number or a name from rt_tables: every route, a /0 too, into that table and no policy rules.</summary>
    Named,
}

/// <summary>
/// wg-quick's <c>Table</c> (wg-quick(8): "Controls the routing table to which routes are added.
/// There are two special values: 'off' disables the creation of routes altogether, and 'auto'
/// (the default) adds routes to the default table and enables special handling of default routes.")
/// </summary>
public sealed record RouteTable
{
    private RouteTable(RouteTableMode mode, string name)
    {
        Mode = mode;
        Name = name;
    }

    public static RouteTable Auto { get; } = new(RouteTableMode.Auto, "auto");

    public static RouteTable Off { get; } = new(RouteTableMode.Off, "off");

    /// <summary>A table as ip(8) takes it after <c>table</c>: "main", a decimal number or a name from rt_tables.</summary>
    public static RouteTable Named(string name) => new(RouteTableMode.Named, name);

    public RouteTableMode Mode { get; }

    /// <summary>"auto", "off", or the table for <c>ip route add ... table NAME</c>.</summary>
    public string Name { get; }

    public override string ToString() => Name;
}
