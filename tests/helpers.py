"""Builders shared by several test modules: where the project and ../shared are, hand-made KITTI
trees, and PyTorch checkpoints assembled without PyTorch. (Fixtures live in conftest.py; the
readers of the original's reference outputs in reference.py.)"""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The ../shared folder (override with MONODEPTH_SHARED); fails loudly when it is absent."""
    path = Path(os.environ.get("MONODEPTH_SHARED", PROJECT_ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.fail(
            f"the shared test material is missing: {path} is not a folder "
            "(set MONODEPTH_SHARED to the folder holding reference/ and kitti/)"
        )
    return path
