"""Test helpers for the model zoo: release zips built from the reference checkpoints (the local
HTTP server and the closed port's address are in tests/http_server.py)."""

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Dict, Iterable

# re-exported: the command tests take the offline address from here
from tests.http_server import closed_port_url  # noqa: F401

CHECKPOINTS = ("encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth")


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
