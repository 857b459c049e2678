using System.Text;

namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Reads '\n'-terminated lines from a UAPI connection. Lines are capped so a client cannot make
/// the daemon buffer without bound (the protocol's longest line is a key, 64 hex, plus its name),
/// at the length wireguard-go's bufio.Scanner takes (MaxScanTokenSize, 64 KiB): a longer line fails
/// the request with EIO there ("failed to read input"), and here, so both answer the same errno.
/// </summary>
public sealed class UapiLineReader(Stream stream)
{
    public const int MaxLineLength = 64 * 1024;

    private readonly byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;

    /// <summary>
    /// The next line without its '\n'; null at end of stream. A last line without its '\n' is dropped,
    /// or returned when <paramref name="keepPartialLastLine"/> (a set request's body, which
    /// wireguard-go reads with bufio.Scanner: its ScanLines returns that line too).
    /// </summary>
    public async Task<string?> ReadLineAsync(CancellationToken cancellationToken, bool keepPartialLastLine = false)
    {
        var line = new StringBuilder();
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                Append(line, _start, newline - _start);
                _start = newline + 1;
                if (line.Length >= MaxLineLength)
                {
                    // bufio.Scanner's buffer must hold the line and its '\n'.
                    throw new UapiException(UapiErrno.EIO, $"line of {MaxLineLength} bytes or more");
                }
                return line.ToString();
            }
            Append(line, _start, _end - _start);
            _start = _end = 0;
            if (line.Length >= MaxLineLength)
            {
                throw new UapiException(UapiErrno.EIO, $"line of {MaxLineLength} bytes or more");
            }
            int read = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return keepPartialLastLine && line.Length > 0 ? line.ToString() : null;
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

    private void Append(StringBuilder line, int offset, int count)
    {
        if (count > 0)
        {
            line.Append(Encoding.ASCII.GetString(_buffer, offset, count));
        }
    }
}
