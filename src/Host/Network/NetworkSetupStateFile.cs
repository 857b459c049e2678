using System.Text.Json;
using System.Text.Json.Serialization;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// <see cref="NetworkSetupState"/> in <c>/run/firezone-tunnel/INTERFACE.json</c> (a tmpfs, so it
/// goes with a reboot, as the rules and switches it describes do). The directory is created 0700 and
/// the file 0600; a write goes to a temporary file renamed over the old one, so a kill mid-write
/// leaves the previous state, never half a file.
/// </summary>
public sealed class NetworkSetupStateFile(string path)
{
    public const string DefaultDirectory = "/run/firezone-tunnel";

    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public string Path { get; } = path;

    public static NetworkSetupStateFile For(string interfaceName, string? directory = null) =>
        new(System.IO.Path.Combine(directory ?? DefaultDirectory, interfaceName + ".json"));

    /// <summary>The saved state, or null when there is none; <see cref="IOException"/> when it cannot be read or parsed.</summary>
    public NetworkSetupState? Load()
    {
        string text;
        try
        {
            text = File.ReadAllText(Path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(text, NetworkSetupStateJson.Default.NetworkSetupState)
                ?? throw new IOException($"{Path}: not a saved network setup state");
        }
        catch (JsonException e)
        {
            throw new IOException($"{Path}: not a saved network setup state ({e.Message})", e);
        }
    }

    /// <summary>Writes <paramref name="state"/>; <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when it cannot.</summary>
    public void Save(NetworkSetupState state)
    {
        string directory = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(directory, DirectoryMode);
        string temporary = Path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode };
        using (var stream = new FileStream(temporary, options))
        {
            JsonSerializer.Serialize(stream, state, NetworkSetupStateJson.Default.NetworkSetupState);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, Path, overwrite: true);
    }

    public void Delete()
    {
        if (File.Exists(Path))
        {
            File.Delete(Path);
        }
    }
}

[JsonSerializable(typeof(NetworkSetupState))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class NetworkSetupStateJson : JsonSerializerContext;
