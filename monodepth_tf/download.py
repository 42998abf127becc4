"""Downloading one file over HTTP(S) with the standard library: atomic, checked, resumable.

    >>> from monodepth_tf.download import download
    >>> download("https://example.org/data.zip", "data.zip", md5="...")  # doctest: +SKIP

The file is written to ``<destination>.part`` and renamed into place only once it is complete
(the announced ``Content-Length``, ``expected_size`` when given) and its MD5, when given,
matches: a reader never sees a partial file under the final name.

Resuming: with ``resume=True`` a failed download keeps its ``.part`` and the next call asks the
server for the rest only (an HTTP ``Range: bytes=<have>-`` request). A server that ignores
ranges sends the whole file again (200), which is then written from the start; a 206 answer for
another range than the one asked is refused; a 416 answer (nothing past ``<have>``) means the
part is already complete when the server's size says so, else the download starts again.
With ``retries=n`` a network failure (no answer, a dropped connection, a body that ends early,
an HTTP 500/502/503/504) is tried again up to ``n`` times, each attempt continuing the previous
one's bytes; any other HTTP error (404, 403...) fails at once.

Progress goes to ``stream`` (stderr): a bar with size, percent, rate and time left, redrawn in
place on a terminal; on any other stream (logs, CI) a plain line at each tenth of the file.

Every failure raises :class:`DownloadError` (an ``OSError``) whose message is one line naming
the address and the cause (``HTTP 404 Not Found``, ``Connection refused``, ``interrupted after
X of Y bytes``, ``MD5 ... differs from the expected ...``).
"""

import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TextIO, Union

from monodepth_tf.progress import bar

PathLike = Union[str, Path]

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60.0
PART_SUFFIX = ".part"
USER_AGENT = "monodepth_tf"
RETRIED_HTTP_CODES = (500, 502, 503, 504)  # server hiccups (e.g. S3's "slow down")
RETRY_DELAY_SECONDS = 1.0  # before the first retry; doubled at each next one, at most 30 s


class DownloadError(OSError):
    """A download failed; the message names the address and the cause."""


class ChecksumError(DownloadError):
    """A downloaded file's MD5 differs from the expected one (the file has been removed)."""


class ConnectionLost(DownloadError):
    """A network failure (no answer, the connection dropped, an HTTP 5xx): worth another
    attempt; ``<destination>.part`` holds the bytes that arrived."""


def describe_error(error: BaseException) -> str:
    """A short human cause of a network error: ``HTTP 404 Not Found``, ``Connection refused``,
    ``timed out``, ``Name or service not known``... (not just the exception's class)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return describe_error(reason) if isinstance(reason, BaseException) else str(reason)
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, http.client.HTTPException):
        return f"the server's answer is broken ({type(error).__name__}: {error})"
    return str(error) or type(error).__name__


def file_md5(path: PathLike, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def human_bytes(count: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, as servers and disks report sizes)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"01:02:05"`` (hours not wrapped at 24: a slow 175 GB download may take
    days)."""
    whole = int(round(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class ByteProgress:
    """Progress of one transfer on ``stream`` (stderr by default).

    On a terminal ``x.zip [#####.....]  1.2 MB / 3.4 MB   35%  12.0 MB/s  ETA 00:00:03`` is
    redrawn in place; elsewhere (a log file, a pipe) the same line without the bar is printed
    at each tenth of the file (each 10 MB when the size is unknown), and once more at the end
    when the last line printed is not the final count.

    Args:
        total: expected bytes (None when the server does not say: no bar, percent or ETA).
        done: bytes already there (a resumed download); the rate counts only new bytes.
        label: what is transferred (a file name), at the start of the line.
        stream: where to write; ``tty``: force the terminal style on or off (default: ask
            the stream).
    """

    def __init__(self, total: Optional[int], done: int = 0, label: str = "",
                 stream: Optional[TextIO] = None, tty: Optional[bool] = None, width: int = 30):
        self.total, self.done, self.label, self.width = total, done, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty if tty is not None else _isatty(self.stream)
        self.start_bytes, self.start = done, time.perf_counter()
        self.printed_at = done
        self.next_report = self._next_report()

    def _next_report(self) -> int:
        step = max(self.total // 10 if self.total else 10_000_000, 1)
        return (self.done // step + 1) * step

    def line(self) -> str:
        """The progress text, without the leading ``\\r``."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = (self.done - self.start_bytes) / elapsed
        label = f"{self.label} " if self.label else ""
        if not self.total:
            return f"{label}{human_bytes(self.done)}  {human_bytes(rate)}/s"
        left = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        text = (f"{human_bytes(self.done)} / {human_bytes(self.total)}  "
                f"{100 * self.done // self.total:3d}%  {human_bytes(rate)}/s  ETA {left}")
        if not self.tty:
            return label + text
        return f"{label}{bar(self.done, self.total, self.width)}  {text}"

    def update(self, count: int) -> None:
        """Adds ``count`` bytes; redraws (terminal) or prints a line per tenth reached."""
        self.done += count
        if self.tty:
            print("\r" + self.line(), end="", file=self.stream, flush=True)
        elif self.done >= self.next_report:
            self._print_line()

    def close(self) -> None:
        """Ends the bar's line (terminal), or prints the final count if not printed yet."""
        if self.tty:
            print(file=self.stream, flush=True)
        elif self.printed_at != self.done:
            self._print_line()

    def _print_line(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.printed_at, self.next_report = self.done, self._next_report()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _request(url: str, method: str = "GET", start: int = 0) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, method=method, headers=headers)


def fetch_text(url: str, timeout: float = 30.0, limit: int = 4096) -> Optional[str]:
    """A small text file's content (e.g. an ``.md5`` beside a zip), None when the server says
    it does not exist (HTTP 404 or 403).

    Raises:
        DownloadError: any other failure (named address and cause).
    """
    try:
        with urllib.request.urlopen(_request(url), timeout=timeout) as response:
            return response.read(limit).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        if error.code in (403, 404):
            return None
        raise DownloadError(f"{url}: {describe_error(error)}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise DownloadError(f"{url}: {describe_error(error)}") from None


def parse_md5(text: str, source: str = "checksum file") -> str:
    """The 32-hex-digit MD5 at the start of ``text`` (``md5sum``'s format, or the digest alone).

    Raises:
        DownloadError: there is none.
    """
    match = re.match(r"\s*([0-9a-fA-F]{32})\b", text)
    if not match:
        raise DownloadError(f"{source} holds no MD5 (32 hexadecimal digits): {text[:60]!r}")
    return match.group(1).lower()


def remote_size(url: str, timeout: float = TIMEOUT_SECONDS) -> Optional[int]:
    """The file's size from an HTTP ``HEAD`` (``Content-Length``); None when the server does not
    say or cannot be asked (no network: the caller falls back to an estimate)."""
    try:
        with urllib.request.urlopen(_request(url, "HEAD"), timeout=timeout) as response:
            length = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return None
    return int(length) if length and length.isdigit() else None


def verify_md5(path: PathLike, md5: str, url: str) -> None:
    """Checks a downloaded file's MD5; a mismatch removes the file.

    Raises:
        ChecksumError: the MD5 differs (the message names ``url`` and both digests).
    """
    actual = file_md5(path)
    if actual != md5.lower():
        Path(path).unlink()
        raise ChecksumError(f"{url}: MD5 {actual} differs from the expected {md5.lower()} "
                            "(a corrupt or different file; it has been removed)")


@dataclass
class _Transfer:
    """What every attempt of one download shares."""
    url: str
    part: Path
    expected_size: Optional[int]
    progress: bool
    stream: Optional[TextIO]
    timeout: float
    chunk_bytes: int


def _open_error(url: str, error: BaseException) -> DownloadError:
    """The DownloadError for a failed request: ConnectionLost (retried) for network failures
    and HTTP 5xx hiccups, a plain DownloadError for other HTTP errors and bad addresses."""
    cause = f"{url}: {describe_error(error)}"
    if isinstance(error, urllib.error.HTTPError):
        return (ConnectionLost if error.code in RETRIED_HTTP_CODES else DownloadError)(cause)
    if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, OSError):
        return DownloadError(cause)  # e.g. "unknown url type": not worth another attempt
    return (DownloadError if isinstance(error, ValueError) else ConnectionLost)(cause)


def _range_total(headers) -> Optional[int]:
    """The file size a ``Content-Range: bytes a-b/<size>`` (or ``bytes */<size>``) gives."""
    match = re.search(r"/(\d+)\s*$", (headers or {}).get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _body_start(url: str, response, have: int) -> int:
    """Where the response's body starts in the file: ``have`` for a 206 that continues the
    part, 0 for a 200 (the server ignored the range and sends the whole file).

    Raises:
        DownloadError: a 206 for another range than ``bytes=<have>-``.
    """
    if not have or response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    match = re.match(r"bytes (\d+)-", content_range)
    if not match or int(match.group(1)) != have:
        raise DownloadError(f"{url}: asked for bytes {have}- but the server sent "
                            f"{content_range!r}")
    return have


def _fetch_once(job: _Transfer, have: int) -> int:
    """One attempt: writes ``job.part`` from byte ``have`` on; returns the file's size.

    Raises:
        ConnectionLost: a network failure (``job.part`` keeps what arrived).
        DownloadError: an HTTP error, a wrong range, a size other than ``expected_size``.
    """
    expected = job.expected_size
    if expected is not None and have >= expected:
        if have == expected:
            return have  # a complete part from an earlier run
        have = 0  # longer than the file: not this file's start
    try:
        response = urllib.request.urlopen(_request(job.url, start=have), timeout=job.timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not have:
            raise _open_error(job.url, error) from None
        if expected is None and _range_total(error.headers) == have:
            return have  # nothing past the part's end, which is the file's: it is complete
        return _fetch_once(job, 0)  # the part is not this file's start: fetch it afresh
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        raise _open_error(job.url, error) from None
    with response:
        start = _body_start(job.url, response, have)
        length = response.headers.get("Content-Length")
        total = _range_total(response.headers) if start else None
        if total is None:
            total = start + int(length) if length and length.isdigit() else expected
        if expected is not None and total != expected:
            raise DownloadError(f"{job.url}: the server announces {total} bytes, "
                                f"expected {expected}")
        return _write_body(job, response, start, total)


def _write_body(job: _Transfer, response, start: int, total: Optional[int]) -> int:
    """Writes the response's body into ``job.part`` from byte ``start`` on (dropping what
    followed); returns the bytes the part then holds.

    Raises:
        ConnectionLost: the body ended before ``total`` bytes, or the connection failed.
    """
    label = job.part.name.removesuffix(PART_SUFFIX)
    bar = ByteProgress(total, start, label, job.stream) if job.progress else None
    received, cause = start, None
    try:
        with open(job.part, "r+b" if start else "wb") as out:
            out.seek(start)
            out.truncate()
            last = False
            while not last:
                try:
                    chunk = response.read(job.chunk_bytes)
                    last = not chunk
                except http.client.IncompleteRead as error:  # closed before Content-Length
                    chunk, last = error.partial, True
                except (OSError, http.client.HTTPException) as error:  # reset, timed out...
                    chunk, last, cause = b"", True, describe_error(error)
                out.write(chunk)
                received += len(chunk)
                if bar is not None and chunk:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    if cause is not None or (total is not None and received != total):
        of_total = f" of {total}" if total is not None else ""
        because = f" ({cause})" if cause is not None else ""
        raise ConnectionLost(f"{job.url}: interrupted after {received}{of_total} bytes{because}")
    return received


def _fetch_with_retries(job: _Transfer, have: int, retries: int) -> int:
    """:func:`_fetch_once`, tried again after a ConnectionLost (up to ``retries`` more times,
    waiting 1, 2, 4... s), each attempt continuing the bytes of the previous ones."""
    for attempt in range(retries + 1):
        try:
            return _fetch_once(job, have)
        except ConnectionLost:
            if attempt == retries:
                raise
            time.sleep(min(RETRY_DELAY_SECONDS * 2 ** attempt, 30.0))
            have = job.part.stat().st_size if job.part.exists() else 0
    raise AssertionError("unreachable")


def download(url: str, destination: PathLike, md5: Optional[str] = None,
             expected_size: Optional[int] = None, resume: bool = False, retries: int = 0,
             progress: bool = True, stream: Optional[TextIO] = None,
             timeout: float = TIMEOUT_SECONDS, chunk_bytes: int = CHUNK_BYTES) -> Path:
    """Downloads ``url`` to ``destination`` atomically (via ``<destination>.part``).

    Args:
        url: an ``http(s)://`` (or ``file://``) address.
        destination: the file to write; its folder is created.
        md5: the expected hex MD5; a mismatch removes the file and raises ChecksumError.
        expected_size: the bytes the file must have (None: trust the server's
            ``Content-Length``); a server announcing another size is refused.
        resume: continue an existing ``<destination>.part`` (HTTP ``Range``), and keep it on
            failure for the next call; without it a failed download leaves nothing behind.
        retries: further attempts after a network failure (not after an HTTP error such as
            404), each continuing the bytes already received.
        progress: draw progress on ``stream`` (stderr); False: silent.
        timeout: seconds to wait for the server at each read.
        chunk_bytes: bytes read at a time.

    Returns:
        ``destination`` as a Path.

    Raises:
        DownloadError (an OSError): the message names ``url`` and the cause.
        ChecksumError: the MD5 differs.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + PART_SUFFIX)
    job = _Transfer(url, part, expected_size, progress, stream, timeout, chunk_bytes)
    have = part.stat().st_size if resume and part.is_file() else 0
    try:
        _fetch_with_retries(job, have, retries)
        if md5 is not None:
            verify_md5(part, md5, url)
    except BaseException as error:
        if not resume and part.is_file():
            part.unlink()
        if isinstance(error, OSError) and not isinstance(error, DownloadError):
            raise DownloadError(f"{url}: cannot write {part}: {describe_error(error)}") \
                from None
        raise
    os.replace(part, destination)
    return destination
