using System.Net.Sockets;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

[Collection(ProcessUmaskCollection.Name)]
public sealed class UapiSocketModeTests
{
    /// <summary>
    /// The socket file is born owner-only whatever the daemon's umask, as wireguard-go binds it
    /// under umask 077: bound with the caller's umask and chmod'ed after, it was 0777 under umask 0
    /// until the chmod, and a local user who connected in that window kept a connection that reads
    /// and sets the private key (connect(2) checks the mode only when it connects).
    /// </summary>
    [Fact]
    public void The_socket_file_is_created_owner_only_under_a_permissive_umask()
    {
        string directory = Directory.CreateTempSubdirectory("fz-uapi-mode-").FullName;
        string path = Path.Combine(directory, "fzm0.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var previous = Tmds.Linux.LibC.umask(0);
        try
        {
            UapiServer.BindOwnerOnly(listener, path);
            Assert.Equal(0, (int)Tmds.Linux.LibC.umask(0));
            Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(path) & (UnixFileMode)0x3f);
        }
        finally
        {
            Tmds.Linux.LibC.umask(previous);
            Directory.Delete(directory, recursive: true);
        }
    }
}
