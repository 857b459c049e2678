namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>The lab's namespaces, in Firezone's picture: Client, then Router, Gateway, Resource.</summary>
public static class Roles
{
    public const string Client = "client";
    public const string Router = "router";
    public const string Gateway = "gateway";
    public const string Resource = "resource";
}
