"""Checking a split before training: every bad file reported at once, naming it, by
check_split / require_split and by bin/check_data (exit code and message)."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest

from monodepth_tf.data.check import (check_split, raise_on_problems, require_split,
                                     split_problems)
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.splits import SplitEntry
from tests.helpers import DATE, DRIVE, FRAME, PROJECT_ROOT, make_raw_tree, replace_file

ABSENT_DRIVE = "2011_09_26/2011_09_26_drive_0099_sync"


def write_split(split_dir: Path, split: str, **lists: str) -> Path:
    """``<split_dir>/<split>/<name>_files.txt`` for each ``name=text``."""
    (split_dir / split).mkdir(parents=True, exist_ok=True)
    for name, text in lists.items():
        (split_dir / split / f"{name}_files.txt").write_text(text)
    return split_dir


def image(root: Path, frame: int, camera: str = "02") -> Path:
    return root / DRIVE / f"image_{camera}" / "data" / f"{frame:010d}.png"


@pytest.fixture
def tree(kitti_dir, tmp_path):
    """A raw tree with frames 0..4 (links to the real frame) and a split ``mine`` whose train
    list needs left frames 0..4 and its val list left frames 1..3 (offsets -1, +1)."""
    root = make_raw_tree(kitti_dir, tmp_path / "raw", frames=range(5))
    split_dir = write_split(tmp_path / "splits", "mine", train=f"{DRIVE} 1 l\n{DRIVE} 3 l\n",
                            val=f"{DRIVE} 2 l\n")
    return root, split_dir


def check(tree, **options):
    root, split_dir = tree
    return check_split(root, "mine", split_dir, ext="png", **options)


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "check_data"), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_a_complete_split_has_no_problem(tree):
    assert check(tree, use_stereo=True, lidar=True) == []
    root, split_dir = tree
    assert require_split(root, "mine", split_dir, ext="png", use_stereo=True) == 3


def break_tree(kitti_dir: Path, root: Path, split_dir: Path) -> List[str]:
    """Damages the ``tree`` fixture in five ways; returns the problems expected, in order."""
    real = image(kitti_dir / "raw", FRAME).read_bytes()
    replace_file(image(root, 0), real[: len(real) // 3])                       # truncated
    replace_file(image(root, 2), np.random.default_rng(0).bytes(3000))         # corrupt
    image(root, 4).unlink()                                                    # missing
    calib = root / DATE / "calib_cam_to_cam.txt"
    replace_file(calib, "\n".join(line for line in calib.read_text().splitlines()
                                  if not line.startswith("S_rect_02")).encode())
    write_split(split_dir, "mine", val=f"{DRIVE} 2 l\n{ABSENT_DRIVE} 7 l\n{ABSENT_DRIVE} 8 l\n")
    return [
        f"{calib}: calibration key 'S_rect_02' is missing (needed by train_files.txt line 1)",
        f"{image(root, 0)}: truncated PNG (no IEND chunk at its end) "
        "(needed by train_files.txt line 1)",
        f"{image(root, 2)}: not a PNG or JPEG image (needed by train_files.txt line 1)",
        f"{image(root, 4)}: missing (needed by train_files.txt line 2)",
        f"{root / ABSENT_DRIVE}: drive folder missing (named by val_files.txt line 2)",
    ]


def test_every_bad_file_is_reported_at_once(kitti_dir, tree):
    root, split_dir = tree
    expected = break_tree(kitti_dir, root, split_dir)
    assert check(tree) == expected
    with pytest.raises(DataError) as error:
        require_split(root, "mine", split_dir, ext="png")
    message = str(error.value)
    assert "5 problem(s)" in message and all(problem in message for problem in expected)


def test_stereo_needs_the_other_camera_and_jpg_is_the_default(tree):
    root, _ = tree
    image(root, 1, "03").unlink()
    assert check(tree, frame_ids=(0,)) == []
    problems = check(tree, frame_ids=(0,), use_stereo=True)
    assert problems == [f"{image(root, 1, '03')}: missing (needed by train_files.txt line 1)"]
    root, split_dir = tree
    jpg = check_split(root, "mine", split_dir, frame_ids=(0,))
    assert len(jpg) == 3 and all(".jpg: missing" in problem for problem in jpg)


def test_frames_before_the_first_are_reported(tree):
    root, split_dir = tree
    write_split(split_dir, "mine", val=f"{DRIVE} 0 l\n")
    assert check(tree, names=("val",)) == [
        f"{root / DRIVE}: frame index -1 is before the first frame "
        "(needed by val_files.txt line 1)"]


def test_calibration_missing_a_key_is_reported(tree):
    root, _ = tree
    calib = root / DATE / "calib_cam_to_cam.txt"
    text = calib.read_text()
    replace_file(calib, "\n".join(l for l in text.splitlines()
                                  if not l.startswith("P_rect_03")).encode())
    assert check(tree) == [f"{calib}: calibration key 'P_rect_03' is missing "
                           "(needed by train_files.txt line 1)"]
    (root / DATE / "calib_velo_to_cam.txt").unlink()
    assert f"{root / DATE / 'calib_velo_to_cam.txt'}: calibration file missing" in \
        "\n".join(check(tree))


def test_val_scans_are_checked_by_default_and_all_scans_on_request(tree):
    """The val list's scans are its ground truth: checked unless --nolidar (a missing one used
    to pass the check, and validation then dropped to loss only)."""
    root, _ = tree
    scans = root / DRIVE / "velodyne_points" / "data"
    train_scan = scans / f"{FRAME:010d}.bin"  # train_files.txt line 1 (frame 1)
    replace_file(train_scan, train_scan.read_bytes()[:-3])
    val_scan = scans / f"{2:010d}.bin"  # val_files.txt line 1 (frame 2)
    val_scan.unlink()
    val_missing = f"{val_scan}: missing (needed by val_files.txt line 1)"
    train_truncated = (f"{train_scan}: truncated LiDAR scan (1866093 bytes is not a positive "
                       "multiple of 16) (needed by train_files.txt line 1)")
    assert check(tree) == [val_missing]
    assert check(tree, lidar=True) == [train_truncated, val_missing]
    assert check(tree, lidar=False) == []


def damage_inside(path: Path, fill: bytes) -> None:
    """Overwrites 2,000 bytes in the middle of an image with ``fill`` (its signature and end
    marker stay), as a bad disk or an interrupted copy can."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = fill * 2000
    replace_file(path, bytes(data))


@pytest.mark.parametrize("kind", ["png", "jpg"])
def test_decode_finds_damage_that_the_cheap_checks_miss(tree, kind):
    root, split_dir = tree
    if kind == "jpg":  # a JPEG tree: every frame re-encoded, one of them damaged
        for frame in range(5):
            replace_file(image(root, frame).with_suffix(".jpg"),
                         cv2.imencode(".jpg", cv2.imread(str(image(root, frame))))[1].tobytes())
    damaged = image(root, 2).with_suffix(f".{kind}")
    damage_inside(damaged, b"\xff" if kind == "jpg" else b"\0")
    assert check_split(root, "mine", split_dir, ext=kind, lidar=False) == []
    problems = check_split(root, "mine", split_dir, ext=kind, lidar=False, decode=True)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{damaged}: damaged image (it does not decode: ")
    assert problems[0].endswith("(needed by train_files.txt line 1)")
    assert "function_node" not in problems[0] and "[Op:" not in problems[0]


def test_missing_and_malformed_split_lists_are_reported(tree):
    root, split_dir = tree
    (split_dir / "mine" / "val_files.txt").unlink()
    write_split(split_dir, "mine", train=f"{DRIVE} 1 l\n{DRIVE} one l\n")
    problems = check(tree)
    assert len(problems) == 2
    assert problems[0].startswith(f"{split_dir / 'mine' / 'train_files.txt'}:2: expected")
    assert problems[1].startswith(f"split file {split_dir / 'mine' / 'val_files.txt'} does "
                                  "not exist")


def test_split_problems_reports_each_file_once(tree):
    root, _ = tree
    image(root, 2).unlink()
    entries = [SplitEntry(DRIVE, 1, "l"), SplitEntry(DRIVE, 3, "l"), SplitEntry(DRIVE, 2, "l")]
    problems = split_problems(KittiRawLayout(root, "png"), entries, (0, -1, 1), source="x.txt")
    assert problems == [f"{image(root, 2)}: missing (needed by x.txt line 1)"]


def test_raise_on_problems_lists_fifty_then_counts():
    raise_on_problems([], "nothing")
    problems = [f"/data/{index}.png: missing" for index in range(60)]
    with pytest.raises(DataError, match=re.escape("my split: 60 problem(s)")) as error:
        raise_on_problems(problems, "my split")
    assert "/data/49.png: missing" in str(error.value)
    assert "/data/50.png" not in str(error.value)
    assert str(error.value).endswith("... and 10 more")


def test_check_data_tool_exit_codes_and_messages(kitti_dir, tree):
    root, split_dir = tree
    tool = ["--data_path", str(root), "--split", "mine", "--split_dir", str(split_dir), "--png"]
    ok = run_tool(*tool, "--frame_ids=0,-1,1,s")
    assert ok.returncode == 0, ok.stderr
    assert ("3 samples of split mine checked (train, val; images, calibration, the LiDAR scans "
            "of val and test samples): every file is present and whole") in ok.stdout
    decoded = run_tool(*tool, "--decode", "--lidar")
    assert decoded.returncode == 0, decoded.stderr
    assert "every LiDAR scan; every image decoded)" in decoded.stdout

    expected = break_tree(kitti_dir, root, split_dir)
    bad = run_tool(*tool)
    assert bad.returncode == 2
    assert all(problem in bad.stderr for problem in expected)
    assert f"error: 5 problem(s) with split {split_dir / 'mine'} on {root}" in bad.stderr

    absent = run_tool(*tool, "--split", "other")
    assert absent.returncode == 2
    assert f"split file {split_dir / 'other' / 'train_files.txt'} does not exist" in absent.stderr
