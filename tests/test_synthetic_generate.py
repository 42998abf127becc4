"""The generator's process pool: a worker that dies or raises fails the run at once, naming the
job (the jobs here render nothing: they die or raise in the "spawn" child, which must import
them from this module)."""

import os
import re
import time
from pathlib import Path

import pytest

from monodepth_tf.synthetic import Intrinsics, generate

DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"  # drive index 1


def _die(job) -> dict:
    """A job that kills its worker process, as the out-of-memory killer would."""
    os._exit(3)


def _fail(job) -> dict:
    raise OSError(f"disk full (frame {job.start})")


def _jobs(root: Path) -> list:
    intrinsics = Intrinsics.kitti(32, 96)
    return [generate._Job(str(root), 0, 1, 20, start, start + 10, intrinsics, "png", ())
            for start in (0, 10)]


def test_a_worker_that_dies_fails_the_run_naming_the_job(tmp_path):
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=re.escape(
            f"a worker process died while writing frames 0-9 of {DRIVE} under {tmp_path}")):
        generate._run_jobs(_jobs(tmp_path), 2, _die)
    assert time.monotonic() - started < 120  # failed, not hung


def test_a_worker_that_raises_fails_the_run_with_its_error(tmp_path):
    with pytest.raises(RuntimeError, match=re.escape(
            f"writing frames 0-9 of {DRIVE} under {tmp_path} failed: OSError: disk full "
            "(frame 0)")):
        generate._run_jobs(_jobs(tmp_path), 2, _fail)
