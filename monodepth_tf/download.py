"""Downloading one file over HTTP(S) with the standard library: atomic, checked, resumable.

    >>> from monodepth_tf.download import download
    >>> download("https://example.org/data.zip", "data.zip", md5="...")  # doctest: +SKIP

The file is written to ``<destination>.part`` and renamed into place only once it is complete
(its size is the announced ``Content-Length``) and its MD5, when given, matches; a reader never
sees a partial file under the final name. On failure the partial file is removed, unless
``resume=True``: it is then kept, and the next call asks the server for the rest only (an HTTP
``Range`` request; a server that ignores ranges sends the whole file again, which is then
written from the start). A progress bar (size, percent, speed) is drawn on a terminal; on any
other stream a plain line is printed at each tenth of the file.

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
from pathlib import Path
from typing import Optional, TextIO

CHUNK_BYTES = 1 << 20
USER_AGENT = "monodepth_tf"


class DownloadError(OSError):
    """A download failed; the message names the address and the cause."""


class ChecksumError(DownloadError):
    """A downloaded file's MD5 differs from the expected one (the file has been removed)."""


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


def file_md5(path, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def format_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KB`` (powers of 1024, one decimal)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class ByteProgress:
    """Download progress on ``stream`` (stderr by default).

    On a terminal: ``\\r[######........]  12.0 MB / 45.0 MB  27%  3.1 MB/s`` redrawn in place;
    elsewhere (a log file, a pipe) a plain line at each tenth of the file (or each 10 MB when
    the size is unknown), and a last line when done.

    Args:
        total: expected bytes (None when the server does not say).
        done: bytes already there (a resumed download).
        stream: where to write; ``tty``: force the terminal style on or off (default: ask
            the stream).
    """

    def __init__(self, total: Optional[int], done: int = 0, stream: Optional[TextIO] = None,
                 tty: Optional[bool] = None, width: int = 30):
        self.total, self.done, self.width = total, done, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty if tty is not None else _isatty(self.stream)
        self.start_bytes, self.start = done, time.perf_counter()
        self.next_report = self._step()

    def _step(self) -> int:
        step = self.total // 10 if self.total else 10 * 1024 * 1024
        return (self.done // max(step, 1) + 1) * max(step, 1)

    def line(self) -> str:
        """The progress text, without the leading ``\\r``."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        speed = f"{format_bytes((self.done - self.start_bytes) / elapsed)}/s"
        if not self.total:
            return f"{format_bytes(self.done)}  {speed}"
        percent = 100 * self.done // self.total
        text = f"{format_bytes(self.done)} / {format_bytes(self.total)}  {percent:3d}%  {speed}"
        if not self.tty:
            return text
        filled = min(self.width, self.width * self.done // self.total)
        return f"[{'#' * filled}{'.' * (self.width - filled)}]  {text}"

    def update(self, count: int) -> None:
        self.done += count
        if self.tty:
            print("\r" + self.line(), end="", file=self.stream, flush=True)
        elif self.done >= self.next_report:
            print(self.line(), file=self.stream, flush=True)
            self.next_report = self._step()

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


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
    except (urllib.error.URLError, OSError) as error:
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


def _request(url: str, start: int = 0) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, headers=headers)


def _content_range_start(response) -> Optional[int]:
    """The first byte of a 206 response (``Content-Range: bytes 100-199/200``), else None."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if response.status == 206 and match else None


def _open(url: str, part: Path, resume: bool, timeout: float):
    """Opens the response, asking for the rest of ``part`` when resuming; returns ``(response,
    bytes already in part that the response continues)``."""
    start = part.stat().st_size if resume and part.is_file() else 0
    try:
        response = urllib.request.urlopen(_request(url, start), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not start:  # 416: the range starts at or past the end
            raise
        part.unlink()
        return _open(url, part, False, timeout)
    if start and response.status == 206 and _content_range_start(response) != start:
        response.close()
        raise DownloadError(f"{url}: asked for bytes {start}- but the server sent "
                            f"{response.headers.get('Content-Range')!r}")
    if start and response.status != 206:
        start = 0  # the server ignored the range: the whole file follows
    return response, start


def download(url: str, destination, md5: Optional[str] = None, resume: bool = False,
             progress: Optional[bool] = True, stream: Optional[TextIO] = None,
             timeout: float = 60.0, chunk_bytes: int = CHUNK_BYTES) -> Path:
    """Downloads ``url`` to ``destination`` atomically (via ``<destination>.part``).

    Args:
        url: an ``http(s)://`` (or ``file://``) address.
        destination: the file to write; its folder is created.
        md5: the expected hex MD5; a mismatch removes the file and raises ChecksumError.
        resume: keep ``<destination>.part`` on failure and continue it next time (HTTP
            ``Range``); without it a failed download leaves nothing behind.
        progress: draw progress on ``stream`` (stderr); None or False: silent.
        timeout: seconds to wait for the server at each read.

    Returns:
        ``destination``.

    Raises:
        DownloadError (an OSError): the message names ``url`` and the cause.
        ChecksumError: the MD5 differs.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    try:
        _fetch_into(url, part, resume, progress, stream, timeout, chunk_bytes)
    except BaseException as error:
        if not resume and part.exists():
            part.unlink()
        if isinstance(error, DownloadError):
            raise
        if isinstance(error, (OSError, ValueError, http.client.HTTPException)):
            raise DownloadError(f"{url}: {describe_error(error)}") from None
        raise
    if md5 is not None:
        verify_md5(part, md5, url)
    os.replace(part, destination)
    return destination


def verify_md5(path: Path, md5: str, url: str) -> None:
    """Checks a downloaded file's MD5; a mismatch removes the file.

    Raises:
        ChecksumError: the MD5 differs (the message names ``url`` and both digests).
    """
    actual = file_md5(path)
    if actual != md5.lower():
        Path(path).unlink()
        raise ChecksumError(f"{url}: MD5 {actual} differs from the expected {md5.lower()} "
                            "(a corrupt or different file; it has been removed)")


def _fetch_into(url: str, part: Path, resume: bool, progress: Optional[bool],
                stream: Optional[TextIO], timeout: float, chunk_bytes: int) -> None:
    """Writes (or continues) ``part`` from ``url``; raises DownloadError when the body ends
    before the announced length."""
    response, start = _open(url, part, resume, timeout)
    with response:
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        bar = ByteProgress(total, start, stream) if progress else None
        received = start
        with open(part, "ab" if start else "wb") as out:
            while True:
                try:
                    chunk = response.read(chunk_bytes)
                except http.client.IncompleteRead as error:  # the connection closed early
                    chunk = error.partial
                    out.write(chunk)
                    received += len(chunk)
                    break
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()
    if total is not None and received != total:
        raise DownloadError(f"{url}: interrupted after {received} of {total} bytes")
