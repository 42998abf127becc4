"""A local HTTP server for download tests: 127.0.0.1, a random port, in a thread; GET and HEAD,
``Range: bytes=N-`` answered with 206, and ways to misbehave (cut transfers, ignored or wrong
ranges, a 5xx answer); plus the address of a closed port (an offline machine)."""

import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import unquote


class _QuietServer(ThreadingHTTPServer):
    """Does not print a traceback when a client drops its connection (the downloader closes
    an answer it refuses without reading its body)."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FileServer:
    """Serves ``files`` (``{path without leading /: bytes}``), then the files under ``root``,
    on ``url`` = ``http://127.0.0.1:<port>/``; anything else is a 404.

    Attributes:
        files, root: what is served (both may change while the server runs).
        cut: ``{path: n}``: announce the whole length but close after byte ``n`` of the file
            (an interrupted transfer), at every GET.
        cut_once: the same for the next GET of that path only.
        fail_once: ``{path: HTTP status}`` answered to the next GET of that path only.
        ranges: answer ``Range: bytes=N-`` with 206 (False: the whole file, 200).
        shift: a broken server: its 206 answers start this many bytes before the range asked.
        requests: ``(path, Range header or None)`` of every GET, in order.
        heads: the path of every HEAD, in order.

    Use as a context manager: the server runs in a thread between enter and exit.
    """

    def __init__(self, files: Optional[Dict[str, bytes]] = None, root: Optional[Path] = None,
                 ranges: bool = True):
        self.files, self.root, self.ranges = dict(files or {}), root, ranges
        self.cut: Dict[str, int] = {}
        self.cut_once: Dict[str, int] = {}
        self.fail_once: Dict[str, int] = {}
        self.shift = 0
        self.requests: List[tuple] = []
        self.heads: List[str] = []
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def content(self, path: str) -> Optional[bytes]:
        """The bytes served at ``path`` (no leading /), None when there are none."""
        if path in self.files:
            return self.files[path]
        if self.root is not None and path and (self.root / path).is_file():
            return (self.root / path).read_bytes()
        return None

    def _first_byte(self, range_header: Optional[str]) -> int:
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        return max(int(match.group(1)) - self.shift, 0) if match and self.ranges else 0

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_HEAD(self):
                owner.heads.append(unquote(self.path.lstrip("/")))
                self.answer(body=False)

            def do_GET(self):
                owner.requests.append((unquote(self.path.lstrip("/")), self.headers.get("Range")))
                self.answer(body=True)

            def answer(self, body: bool):
                path = unquote(self.path.lstrip("/"))
                data = owner.content(path)
                if data is None or (body and path in owner.fail_once):
                    self.send_error(owner.fail_once.pop(path, 404) if body else 404)
                    return
                start = self._start(len(data))
                if start is None:
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if body:
                    end = owner.cut_once.pop(path, owner.cut.get(path, len(data)))
                    self.wfile.write(data[start:end])
                    self.close_connection = end < len(data)

            def _start(self, size: int) -> Optional[int]:
                """The first byte to send; None when a 416 was answered (past the end)."""
                start = owner._first_byte(self.headers.get("Range"))
                if start and start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return start

        return Handler


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>/`` where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
