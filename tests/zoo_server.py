"""Test helpers for downloads: a local HTTP server on 127.0.0.1 (random port, in a thread)
serving bytes from memory, release zips built from the reference checkpoints, and the address
of a closed port (an offline machine)."""

import hashlib
import io
import re
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterable, List, Optional

CHECKPOINTS = ("encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth")


class FileServer:
    """Serves ``files`` (``{path without leading /: bytes}``) on ``http://127.0.0.1:<port>/``.

    Attributes:
        files: what is served; anything else is a 404.
        cut: ``{path: n}``: announce the whole length but close after ``n`` bytes (an
            interrupted transfer).
        ranges: answer ``Range: bytes=N-`` with 206 (else the whole file, 200).
        shift: a broken server: its 206 answers start this many bytes before the range asked.
        requests: ``(path, Range header or None)`` of every request, in order.

    Use as a context manager: the server runs in a thread between enter and exit.
    """

    def __init__(self, files: Optional[Dict[str, bytes]] = None, ranges: bool = True):
        self.files = dict(files or {})
        self.cut: Dict[str, int] = {}
        self.ranges = ranges
        self.shift = 0
        self.requests: List[tuple] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                owner.requests.append((path, self.headers.get("Range")))
                if path not in owner.files:
                    self.send_error(404)
                    return
                body = owner.files[path]
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                start = max(int(match.group(1)) - owner.shift, 0) if match and owner.ranges else 0
                if start >= len(body) > 0:
                    self.send_error(416)
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                sent = body[start:owner.cut.get(path, len(body))]
                self.wfile.write(sent)
                if path in owner.cut:
                    self.close_connection = True

        return Handler


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>/`` where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def make_zip(members: Dict[str, bytes]) -> bytes:
    """A zip (stored, uncompressed) of ``{member path: content}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def release_zip(reference_dir: Path, folder: str = "", files: Iterable[str] = CHECKPOINTS) -> bytes:
    """A release zip of the reference checkpoints: in ``<folder>/`` as the original's zips, or
    at the root when ``folder`` is empty."""
    prefix = f"{folder}/" if folder else ""
    return make_zip({prefix + name: (Path(reference_dir) / name).read_bytes() for name in files})


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
