using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Firezone.Actors.Host.Cli;

/// <summary>
/// The help of the subcommands that take no argument of the root's (show, save): System.CommandLine
/// lists every ancestor's arguments in a command's usage line and Arguments section, so
/// <c>show --help</c> offered the root's INTERFACE (the TUN interface to create), which show refuses
/// before it. The library's help layout is internal in 2.0, and replacing the help option's action
/// is the documented way to change help: this action hides the root's argument while the library's
/// own help is written for those commands, and writes it unchanged for every other.
/// </summary>
internal sealed class SubcommandHelp(HelpAction help, Argument rootArgument, Command[] commands) : SynchronousCommandLineAction
{
    public override bool ClearsParseErrors => help.ClearsParseErrors;

    public static void ListOwnArgumentsOnly(RootCommand root, Argument rootArgument, params Command[] commands)
    {
        foreach (var option in root.Options)
        {
            if (option is HelpOption { Action: HelpAction help } helpOption)
            {
                helpOption.Action = new SubcommandHelp(help, rootArgument, commands);
            }
        }
    }

    public override int Invoke(ParseResult parseResult)
    {
        if (Array.IndexOf(commands, parseResult.CommandResult.Command) < 0 || rootArgument.Hidden)
        {
            return help.Invoke(parseResult);
        }
        // Help ends the process's invocation, and nothing else reads the flag meanwhile.
        rootArgument.Hidden = true;
        try
        {
            return help.Invoke(parseResult);
        }
        finally
        {
            rootArgument.Hidden = false;
        }
    }
}
