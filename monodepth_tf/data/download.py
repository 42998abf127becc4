"""HTTP downloads that survive interruptions: ``download(url, dest)``.

A file is fetched into ``<dest>.part`` and renamed to ``dest`` only once every byte has arrived,
so ``dest`` existing means complete. When ``<dest>.part`` is left by an interrupted run, the next
call asks the server for the rest with an HTTP ``Range: bytes=<have>-`` request (servers that
ignore it answer 200 with the whole file, which then replaces the partial one). Progress goes to
stderr: a bar with size, rate and ETA redrawn in place on a terminal, a plain line every 10 %
otherwise (logs, CI).

Standard library only (``urllib``), so the module runs wherever the project does.
"""

import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, TextIO, Union

PathLike = Union[str, Path]

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60
PART_SUFFIX = ".part"
USER_AGENT = "monodepth_tf-download"


class DownloadError(OSError):
    """A download failed: the message names the address and what went wrong."""


class ConnectionLost(DownloadError):
    """The network failed (no answer, or the body ended early): worth another attempt."""


def human_bytes(count: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, as servers and disks report sizes)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class ByteProgress:
    """Progress of one transfer on ``stream``.

    Args:
        label: what is transferred (a file name).
        total: expected bytes (None when unknown: no bar, no ETA).
        done: bytes already there (a resumed download); the rate counts only new bytes.
        stream: where to write (default stderr); a terminal gets a bar redrawn in place,
            anything else a plain line at every 10 %.
    """

    def __init__(self, label: str, total: Optional[int], done: int = 0,
                 stream: Optional[TextIO] = None, width: int = 30):
        self.label, self.total, self.done = label, total, done
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.start_done, self.start = done, time.monotonic()
        self.last_tenth = self._tenth()

    def _tenth(self) -> int:
        return 10 * self.done // self.total if self.total else 0

    def line(self) -> str:
        """``name [#####.....] 1.2 GB/3.4 GB  12.0 MB/s  ETA 0:03:12``."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        if not self.total:
            return f"{self.label} {human_bytes(self.done)}  {human_bytes(rate)}/s"
        filled = min(self.width, self.width * self.done // self.total)
        bar = "#" * filled + "." * (self.width - filled)
        left = (self.total - self.done) / rate if rate > 0 else None
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left is not None else "?"
        return (f"{self.label} [{bar}] {human_bytes(self.done)}/{human_bytes(self.total)}  "
                f"{human_bytes(rate)}/s  ETA {eta}")

    def update(self, count: int) -> None:
        """Adds ``count`` bytes and redraws (terminal) or prints a line per new 10 % step."""
        self.done += count
        if self.interactive:
            print("\r" + self.line(), end="", file=self.stream, flush=True)
        elif self._tenth() > self.last_tenth:
            self.last_tenth = self._tenth()
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """Ends the bar's line (terminal) or prints the final line once."""
        if self.interactive:
            print(file=self.stream, flush=True)
        elif not self.total:
            print(self.line(), file=self.stream, flush=True)


def _request(url: str, method: str = "GET", start: int = 0) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, method=method, headers=headers)


def remote_size(url: str) -> Optional[int]:
    """The file's size from an HTTP ``HEAD`` (``Content-Length``); None when the server does not
    say or cannot be asked (no network: the caller falls back to an estimate)."""
    try:
        with urllib.request.urlopen(_request(url, "HEAD"), timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return int(length) if length and length.isdigit() else None


def _resume_offset(response, start: int) -> int:
    """Where the response body starts: ``start`` for a 206 whose Content-Range begins there,
    0 for a 200 (the server sent the whole file)."""
    if response.status != 206:
        return 0
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != start:
        raise DownloadError(f"{response.url}: the server answered a request for bytes {start}- "
                            f"with Content-Range {response.headers.get('Content-Range')!r}")
    return start


def _fetch_once(url: str, part: Path, expected_size: Optional[int], progress: bool,
                resume: bool) -> int:
    """One attempt: appends the missing bytes to ``part``; returns the file's total size.

    Raises:
        DownloadError: HTTP error, or the connection ended before the announced length.
    """
    have = part.stat().st_size if resume and part.exists() else 0
    if expected_size is not None and have > expected_size:  # not this file: start again
        have = 0
    if expected_size is not None and have == expected_size:
        return have
    try:
        response = urllib.request.urlopen(_request(url, start=have), timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have and expected_size in (None, have):  # nothing left
            return have
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ConnectionLost(f"{url}: {getattr(error, 'reason', error)}") from None
    with response:
        offset = _resume_offset(response, have)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else expected_size
        bar = ByteProgress(Path(part.name[:-len(PART_SUFFIX)]).name, total, offset) \
            if progress else None
        received = offset
        try:
            with open(part, "r+b" if offset else "wb") as out:
                out.seek(offset)
                out.truncate()
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    if bar:
                        bar.update(len(chunk))
        except (OSError, ValueError, http.client.HTTPException) as error:  # e.g. IncompleteRead
            raise ConnectionLost(f"{url}: connection lost after {received} bytes ({error})") \
                from None
        finally:
            if bar:
                bar.close()
    if total is not None and received != total:
        raise ConnectionLost(f"{url}: connection lost after {received} of {total} bytes")
    return received


def download(url: str, dest: PathLike, expected_size: Optional[int] = None,
             progress: bool = True, resume: bool = True, retries: int = 2) -> Path:
    """Fetches ``url`` into ``dest`` (through ``<dest>.part``), resuming a previous attempt.

    Args:
        url: http(s) address.
        dest: the file to write; its folder is created.
        expected_size: bytes the file must have (None: trust the server's Content-Length).
        progress: show a progress bar on stderr.
        resume: continue ``<dest>.part`` with a Range request (False: start again).
        retries: further attempts, each resuming, after a dropped connection or a network
            error (not after an HTTP error such as 404).

    Returns:
        ``dest`` as a Path.

    Raises:
        DownloadError: the server refused, the connection kept dropping (``<dest>.part`` is
            kept, so the next call resumes), or the size is not ``expected_size``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    for attempt in range(retries + 1):
        try:
            size = _fetch_once(url, part, expected_size, progress, resume or attempt > 0)
            break
        except ConnectionLost:
            if attempt == retries:
                raise
            time.sleep(min(2 ** attempt, 30))
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise DownloadError(f"{url}: got {size} bytes, expected {expected_size} (the partial "
                            "file was removed; run again to download it afresh)")
    os.replace(part, dest)
    return dest
