using Serilog;
using Serilog.Core;

namespace Firezone.Actors.Host.Logging;

/// <summary>Builds the Serilog logger every part of the host (and Akka, through Akka.Logger.Serilog) writes to.</summary>
public static class SerilogSetup
{
    public const string HumanTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}";

    public static Logger Create(LogOptions options)
    {
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(options.MinimumLevel)
            .Enrich.FromLogContext();
        if (options.Console)
        {
            configuration = options.HumanConsole
                ? configuration.WriteTo.Console(outputTemplate: HumanTemplate, formatProvider: System.Globalization.CultureInfo.InvariantCulture)
                : configuration.WriteTo.Console(JsonLogFormat.Create());
        }
        if (options.FilePath is { } path)
        {
            string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
            if (directory is not null)
            {
                Directory.CreateDirectory(directory);
            }
            // Flushed every second and on dispose, so a crash loses at most a second of lines.
            configuration = configuration.WriteTo.File(JsonLogFormat.Create(), path, flushToDiskInterval: TimeSpan.FromSeconds(1));
        }
        return configuration.CreateLogger();
    }
}
