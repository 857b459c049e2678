using System.Text;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Reads '\n'-terminated lines from a UAPI connection. Lines are capped so a client cannot make
/// the daemon buffer without bound (the protocol's longest line is a key, 64 hex, plus its name),
/// at the length wireguard-go's bufio.Scanner takes (MaxScanTokenSize, 64 KiB): a longer line fails
/// the request with EIO there ("failed to read input"), and here, so both answer the same errno.
/// A line is bytes to wireguard-go and wg; here it is read as UTF-8, decoded whole (a character
/// may be split between reads), so a path in a reply (fz_saved=) reads back as the daemon wrote it.
/// It was read as ASCII: each byte of such a character came back as '?'. A byte that is not UTF-8
/// reads as U+FFFD, which no key or value of a request parses as, so such a line is refused as
/// wireguard-go refuses it (and as a '?' was).
/// </summary>
public sealed class UapiLineReader(Stream stream)
{
    public const int MaxLineLength = 64 * 1024;

    /// <summary>UTF-8 that reads a byte that is not UTF-8 as U+FFFD instead of throwing.</summary>
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private readonly byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;

    /// <summary>A line longer than what was left in the buffer, gathered across reads until its '\n'.</summary>
    private byte[] _line = [];
    private int _lineLength;

    /// <summary>
    /// The next line without its '\n'; null at end of stream. A last line without its '\n' is dropped,
    /// or returned when <paramref name="keepPartialLastLine"/> (a set request's body, which
    /// wireguard-go reads with bufio.Scanner: its ScanLines returns that line too).
    /// </summary>
    public async Task<string?> ReadLineAsync(CancellationToken cancellationToken, bool keepPartialLastLine = false)
    {
        _lineLength = 0;
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                int count = newline - _start;
                if (_lineLength + count >= MaxLineLength)
                {
                    _start = newline + 1;
                    // bufio.Scanner's buffer must hold the line and its '\n'.
                    throw new UapiException(UapiErrno.EIO, $"line of {MaxLineLength} bytes or more");
                }
                string line;
                if (_lineLength == 0)
                {
                    line = Utf8.GetString(_buffer, _start, count);
                }
                else
                {
                    Gather(count);
                    line = Utf8.GetString(_line, 0, _lineLength);
                }
                _start = newline + 1;
                return line;
            }
            Gather(_end - _start);
            _start = _end = 0;
            if (_lineLength >= MaxLineLength)
            {
                throw new UapiException(UapiErrno.EIO, $"line of {MaxLineLength} bytes or more");
            }
            int read = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return keepPartialLastLine && _lineLength > 0 ? Utf8.GetString(_line, 0, _lineLength) : null;
            }
            _end = read;
        }
    }

    /// <summary>
    /// The next byte, or -1 at end of stream: what wireguard-go reads after <c>get=1</c>'s line
    /// (bufio.Reader.ReadByte), so a request whose blank line is missing is answered at its first byte.
    /// </summary>
    public async ValueTask<int> ReadByteAsync(CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            int read = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return -1;
            }
            _start = 0;
            _end = read;
        }
        return _buffer[_start++];
    }

    /// <summary>Adds the buffer's next <paramref name="count"/> bytes to the line read so far (the cap bounds its growth).</summary>
    private void Gather(int count)
    {
        if (count == 0)
        {
            return;
        }
        if (_lineLength + count > _line.Length)
        {
            Array.Resize(ref _line, Math.Max(_line.Length * 2, _lineLength + count));
        }
        Array.Copy(_buffer, _start, _line, _lineLength, count);
        _lineLength += count;
    }
}
