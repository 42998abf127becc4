"""Shared test fixtures: where ../shared lives, and TensorFlow kept quiet and small."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# hermetic: a test without its local server gets "Connection refused" (port 9), never the internet
os.environ.setdefault("MONODEPTH_ZOO_URL", "http://127.0.0.1:9/")
os.environ.setdefault("MONODEPTH_KITTI_URL", "http://127.0.0.1:9/")
os.environ.setdefault("MONODEPTH_SPLITS_URL", "http://127.0.0.1:9/")

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


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def reference_dir(shared) -> Path:
    return shared / "reference" / "monodepth2_r18_seed0"


@pytest.fixture(scope="session")
def kitti_dir(shared) -> Path:
    return shared / "kitti"
