using System.Text;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The lines of a UAPI connection are bytes (wireguard-go's bufio reads them so), read here as
/// UTF-8: a path in a reply (fz_saved=) comes back as it was written, whatever the reads' sizes.
/// </summary>
public sealed class UapiLineReaderTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task A_line_in_UTF_8_reads_back_whole_however_the_reads_split_it(int chunk)
    {
        const string path = "fz_saved=/tmp/wg-conf-é-日本-😀/wg0.conf";
        var reader = new UapiLineReader(new TrickleStream(Encoding.UTF8.GetBytes(path + "\nerrno=0\n\n"), chunk));
        Assert.Equal(path, await reader.ReadLineAsync(CancellationToken.None));
        Assert.Equal("errno=0", await reader.ReadLineAsync(CancellationToken.None));
    }

    /// <summary>A character split by the end of the reader's 4096-byte buffer.</summary>
    [Fact]
    public async Task A_character_across_the_buffers_end_reads_back_whole()
    {
        string line = new string('a', 4095) + "é" + new string('b', 5000) + "日";
        var reader = new UapiLineReader(new MemoryStream(Encoding.UTF8.GetBytes(line + "\n")));
        Assert.Equal(line, await reader.ReadLineAsync(CancellationToken.None));
    }

    /// <summary>Bytes that are not UTF-8 are read, not thrown on: U+FFFD, which no key or value parses as.</summary>
    [Fact]
    public async Task Bytes_that_are_not_UTF_8_read_as_replacement_characters()
    {
        var reader = new UapiLineReader(new MemoryStream([(byte)'k', 0xff, 0xc3, (byte)'=', 0xe9, (byte)'\n']));
        Assert.Equal("k\uFFFD\uFFFD=\uFFFD", await reader.ReadLineAsync(CancellationToken.None));
    }

    /// <summary>The cap counts bytes, as wireguard-go's bufio.Scanner does, not the characters they decode to.</summary>
    [Theory]
    [InlineData(UapiLineReader.MaxLineLength / 2 - 1, false)]
    [InlineData(UapiLineReader.MaxLineLength / 2, true)]
    public async Task The_line_cap_counts_bytes(int characters, bool refused)
    {
        var reader = new UapiLineReader(new MemoryStream(Encoding.UTF8.GetBytes(new string('é', characters) + "\n")));
        if (refused)
        {
            var e = await Assert.ThrowsAsync<UapiException>(() => reader.ReadLineAsync(CancellationToken.None));
            Assert.Equal(UapiErrno.EIO, e.Errno);
        }
        else
        {
            Assert.Equal(characters, (await reader.ReadLineAsync(CancellationToken.None))!.Length);
        }
    }

    /// <summary>A stream that hands out at most <paramref name="chunk"/> bytes a read.</summary>
    private sealed class TrickleStream(byte[] bytes, int chunk) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(chunk, buffer.Length)], cancellationToken);
    }
}
