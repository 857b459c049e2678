namespace Firezone.Actors.Host.Config;

/// <summary>When a wg-quick hook runs (wg-quick(8): PreUp, PostUp, PreDown, PostDown).</summary>
public enum WgQuickHookStage
{
    /// <summary>Before the interface is created.</summary>
    PreUp,

    /// <summary>Once the interface is up with its addresses and routes.</summary>
    PostUp,

    /// <summary>On stop, before the interface is taken down.</summary>
    PreDown,

    /// <summary>On stop, once the interface is gone.</summary>
    PostDown,
}

/// <summary>
/// One hook line of the [Interface]: a bash command, run as wg-quick runs it (<c>%i</c> replaced by
/// the interface's name, <c>set -e -o pipefail</c>), with the line it came from for the log.
/// </summary>
public sealed record WgQuickHook(WgQuickHookStage Stage, string Command, int Line);
