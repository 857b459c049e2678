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
        if (parseResult.CommandResult.Command is RootCommand root)
        {
            return WithOptionalArgumentsBracketed(parseResult, root);
        }
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

    /// <summary>
    /// The root's help with a subcommand's optional argument in brackets in the Commands section
    /// (<c>show [&lt;INTERFACE&gt;]</c>), as the subcommand's own usage line has it: the library lists
    /// every argument there as <c>&lt;NAME&gt;</c>, so <c>show &lt;INTERFACE&gt;</c> read as if show
    /// needed one. The brackets take two of the spaces before the description, so its column stays.
    /// </summary>
    private int WithOptionalArgumentsBracketed(ParseResult parseResult, RootCommand root)
    {
        var configuration = parseResult.InvocationConfiguration;
        var output = configuration.Output;
        var text = new StringWriter();
        int exitCode;
        configuration.Output = text;
        try
        {
            exitCode = help.Invoke(parseResult);
        }
        finally
        {
            configuration.Output = output;
        }
        output.Write(BracketOptionalArguments(text.ToString(), root.Subcommands));
        return exitCode;
    }

    /// <summary>
    /// The Commands section of <paramref name="help"/> laid out again with each optional argument in
    /// brackets, its description column moved to fit the widest entry (descriptions the library
    /// wrapped keep their continuation lines under the column).
    /// </summary>
    internal static string BracketOptionalArguments(string help, IEnumerable<Command> subcommands)
    {
        var bracketed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var command in subcommands)
        {
            if (command.Arguments is [{ Arity.MinimumNumberOfValues: 0, Hidden: false } argument])
            {
                string name = argument.HelpName ?? argument.Name;
                bracketed[$"{command.Name} <{name}>"] = $"{command.Name} [<{name}>]";
            }
        }
        var lines = help.Split('\n');
        int section = Array.IndexOf(lines, "Commands:");
        if (bracketed.Count == 0 || section < 0)
        {
            return help;
        }
        var rows = new List<(string? Entry, string Text)>();
        int end = section + 1;
        for (; end < lines.Length && lines[end].StartsWith("  ", StringComparison.Ordinal); end++)
        {
            string body = lines[end][2..];
            if (body.StartsWith(' '))
            {
                rows.Add((null, body.Trim())); // a wrapped description's next line
                continue;
            }
            int gap = body.IndexOf("  ", StringComparison.Ordinal); // an entry has no two spaces in a row
            string entry = gap < 0 ? body : body[..gap];
            rows.Add((bracketed.GetValueOrDefault(entry, entry), gap < 0 ? "" : body[gap..].Trim()));
        }
        int column = rows.Max(r => r.Entry?.Length ?? 0) + 2;
        for (int i = 0; i < rows.Count; i++)
        {
            var (entry, text) = rows[i];
            lines[section + 1 + i] = ("  " + (entry ?? "").PadRight(column) + text).TrimEnd();
        }
        return string.Join('\n', lines);
    }
}
