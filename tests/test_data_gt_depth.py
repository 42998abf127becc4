"""LiDAR ground truth: the original's maps reproduced bit for bit on the real KITTI frame (both
depth conventions: the LiDAR forward coordinate its Eigen export writes, the camera depth its
validation loads), the duplicate-pixel rule, and gt_depths.npz exported in process and by
bin/export_gt_depth."""

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from monodepth_tf.data.errors import DataError
from monodepth_tf.data.gt_depth import (export_gt_depths, lidar_depth_map, load_velodyne_points,
                                        project_points, scatter_nearest)
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.pipeline import lidar_ground_truth
from monodepth_tf.data.splits import SplitEntry
from tests.helpers import DATE, DRIVE, FRAME, PROJECT_ROOT, make_raw_tree, replace_file

# camera depth w (vel_depth=False) and the LiDAR forward coordinate x (vel_depth=True)
REFERENCES = {"camera": "gt_depth_2011_09_26_drive_0000_0000000001.npz",
              "velodyne": "gt_depth_velodyne_2011_09_26_drive_0000_0000000001.npz"}
SCAN = f"velodyne_points/data/{FRAME:010d}.bin"


@pytest.fixture(scope="module")
def reference(kitti_dir):
    """``{"camera" | "velodyne": {"cam2" | "cam3": [375, 1242] float32}}``."""
    maps = {}
    for kind, name in REFERENCES.items():
        with np.load(kitti_dir / "reference" / name) as data:
            maps[kind] = {key: data[key] for key in data.files}
    return maps


def write_test_list(split_dir: Path, split: str, lines: str) -> Path:
    (split_dir / split).mkdir(parents=True, exist_ok=True)
    (split_dir / split / "test_files.txt").write_text(lines)
    return split_dir


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "export_gt_depth"), *args],
                          capture_output=True, text=True, timeout=120, env=env)


# --- the map ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["camera", "velodyne"])
@pytest.mark.parametrize("cam", [2, 3])
def test_lidar_map_equals_the_original_bit_for_bit(kitti_dir, reference, cam, kind):
    ours = lidar_depth_map(kitti_dir / "raw" / DATE, kitti_dir / "raw" / DRIVE / SCAN, cam,
                           velodyne_depth=kind == "velodyne")
    expected = reference[kind][f"cam{cam}"]
    assert ours.shape == expected.shape == (375, 1242)
    assert np.array_equal(ours.astype(np.float32), expected)
    assert (expected > 0).sum() > 19000


def test_the_two_references_differ_by_the_sensor_offset(reference):
    """The maps are not the same numbers: same pixels, x larger than w by ~0.285 m, so the
    tests above could not pass with the wrong convention."""
    camera, velodyne = reference["camera"]["cam2"], reference["velodyne"]["cam2"]
    both = velodyne > 0
    assert np.array_equal(both, camera > 0)
    difference = velodyne[both] - camera[both]
    assert 0.28 < np.median(difference) < 0.29 and (difference > 0.2).mean() > 0.99


def test_camera_depth_is_lidar_depth_maps_default_and_what_validation_loads(kitti_dir,
                                                                            reference):
    """The original's validation loads the camera depth (vel_depth=False): so do
    ``lidar_depth_map`` by default and the validation pipeline's ``lidar_ground_truth``."""
    default = lidar_depth_map(kitti_dir / "raw" / DATE, kitti_dir / "raw" / DRIVE / SCAN, 3)
    assert np.array_equal(default.astype(np.float32), reference["camera"]["cam3"])
    layout = KittiRawLayout(kitti_dir / "raw", "png")
    for side, cam in (("l", "cam2"), ("r", "cam3")):
        validation = lidar_ground_truth(layout, SplitEntry(DRIVE, FRAME, side))
        assert validation.dtype == np.float32
        assert np.array_equal(validation, reference["camera"][cam])


def test_points_behind_are_dropped_and_pixels_round_half_to_even():
    # a projection with u = y / x, v = z / x, w = x: easy to place points on pixels by hand
    projection = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float64)
    points = np.array([[2, 5, 7, 0.3],     # u 2.5 -> 2 (half to even), v 3.5 -> 4
                       [1, 1.5, 0.5, 0.3],  # u 1.5 -> 2, v 0.5 -> 0
                       [-1, -3, -3, 0.3]],  # behind (x < 0): dropped
                      dtype=np.float32)
    rows, cols, depth = project_points(points, projection)
    assert cols.tolist() == [1, 1] and rows.tolist() == [3, -1] and depth.tolist() == [2, 1]


def original_rule(rows, cols, depth, size):
    """The duplicate rule written as a plain loop over groups, for comparison."""
    height, width = size
    keep = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    rows, cols, depth = rows[keep].astype(int), cols[keep].astype(int), depth[keep]
    out = np.zeros(size)
    for r, c, d in zip(rows, cols, depth):
        out[r, c] = d
    keys = rows * (width - 1) + cols - 1
    for key in set(keys.tolist()):
        members = np.flatnonzero(keys == key)
        if len(members) > 1:
            out[rows[members[0]], cols[members[0]]] = depth[members].min()
    out[out < 0] = 0
    return out


def test_points_on_one_pixel_keep_the_nearest():
    rows, cols = np.array([1.0, 1, 1, 2]), np.array([2.0, 2, 2, 0])
    depth = np.array([9.0, 4.0, 6.0, 3.0])
    out = scatter_nearest(rows, cols, depth, (3, 4))
    assert out[1, 2] == 4 and out[2, 0] == 3 and (out > 0).sum() == 2


def test_last_column_and_next_rows_first_share_a_group_as_in_the_original():
    # (0, 3) and (1, 0) share the original's key 0 * 3 + 3 - 1 == 1 * 3 + 0 - 1 in a 3x4 image:
    # the first point's pixel gets the group's minimum, the other pixel keeps its own depth
    rows, cols, depth = np.array([0.0, 1]), np.array([3.0, 0]), np.array([8.0, 5.0])
    out = scatter_nearest(rows, cols, depth, (3, 4))
    assert out[0, 3] == 5 and out[1, 0] == 5
    np.testing.assert_array_equal(out, original_rule(rows, cols, depth, (3, 4)))


def test_duplicate_rule_matches_the_loop_on_random_points():
    rng = np.random.default_rng(0)
    size = (6, 5)
    rows = rng.integers(-2, 8, 400).astype(float)
    cols = rng.integers(-2, 7, 400).astype(float)
    depth = rng.uniform(-1, 50, 400)
    np.testing.assert_array_equal(scatter_nearest(rows, cols, depth, size),
                                  original_rule(rows, cols, depth, size))


# --- bad inputs -------------------------------------------------------------------------------

def test_scan_reader_and_its_errors(kitti_dir, tmp_path):
    real = kitti_dir / "raw" / DRIVE / SCAN
    points = load_velodyne_points(real)
    assert points.shape == (116631, 4) and points.dtype == np.float32
    replace_file(tmp_path / "cut.bin", real.read_bytes()[:-5])
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'cut.bin'}: LiDAR scan truncated")):
        load_velodyne_points(tmp_path / "cut.bin")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'no.bin'}: LiDAR scan missing")):
        load_velodyne_points(tmp_path / "no.bin")


def test_calibration_missing_a_key_names_file_and_key(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw")
    calib = root / DATE / "calib_velo_to_cam.txt"
    text = calib.read_text()
    replace_file(calib, "\n".join(l for l in text.splitlines() if not l.startswith("T:")).encode())
    with pytest.raises(DataError, match=re.escape(f"{calib}: calibration key 'T' is missing")):
        lidar_depth_map(root / DATE, root / DRIVE / SCAN)


# --- export -----------------------------------------------------------------------------------

def test_export_writes_an_object_array_in_list_order(kitti_dir, reference, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw", frames=(FRAME, 7))
    split_dir = write_test_list(tmp_path / "splits", "eigen", f"{DRIVE} 7 l\n{DRIVE} 1 r\n")
    output = tmp_path / "out" / "gt_depths.npz"
    assert export_gt_depths(root, "eigen", split_dir, output) == 2
    with pytest.raises(ValueError, match="allow_pickle"):
        np.load(output)["data"]
    data = np.load(output, allow_pickle=True)["data"]
    assert data.dtype == object and data.shape == (2,)
    assert data[0].dtype == np.float32
    # by default the LiDAR forward coordinate, as the original's export writes
    assert np.array_equal(data[0], reference["velodyne"]["cam2"])
    assert np.array_equal(data[1], reference["velodyne"]["cam3"])
    assert not list(output.parent.glob("*.partial"))
    assert export_gt_depths(root, "eigen", split_dir, output, velodyne_depth=False) == 2
    data = np.load(output, allow_pickle=True)["data"]
    assert np.array_equal(data[0], reference["camera"]["cam2"])
    assert np.array_equal(data[1], reference["camera"]["cam3"])


@pytest.mark.parametrize("flag,kind", [((), "velodyne"), (("--novelodyne_depth",), "camera")])
def test_export_tool_writes_the_reference_map_into_the_split_folder(kitti_dir, reference,
                                                                     tmp_path, flag, kind):
    """End to end: a one-line eigen test list naming the real frame; the default is the
    original export's map, ``--novelodyne_depth`` the camera depth."""
    root = make_raw_tree(kitti_dir, tmp_path / "raw")
    split_dir = write_test_list(tmp_path / "splits", "eigen", f"{DRIVE} {FRAME:010d} l\n")
    result = run_tool("--data_path", str(root), "--split", "eigen", "--split_dir", str(split_dir),
                      *flag)
    assert result.returncode == 0, result.stderr
    output = split_dir / "eigen" / "gt_depths.npz"
    assert f"wrote 1 ground-truth maps to {output}" in result.stdout
    data = np.load(output, allow_pickle=True)["data"]
    assert len(data) == 1
    assert data[0].dtype == np.float32
    assert np.array_equal(data[0], reference[kind]["cam2"])


def test_export_tool_help_names_both_conventions():
    result = run_tool("--helpfull")  # absl prints the flags, then exits with 1
    text = " ".join(result.stdout.split())
    assert "--[no]velodyne_depth" in text and "forward coordinate x" in text
    assert "--novelodyne_depth: the depth along the camera axis" in text


def test_export_tool_names_every_missing_file(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw")
    split_dir = write_test_list(tmp_path / "splits", "eigen",
                                f"{DRIVE} 1 l\n{DRIVE} 2 l\n{DRIVE} 3 l\n")
    result = run_tool("--data_path", str(root), "--split", "eigen", "--split_dir", str(split_dir),
                      "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2
    for frame, line in ((2, 2), (3, 3)):
        scan = root / DRIVE / f"velodyne_points/data/{frame:010d}.bin"
        assert f"{scan}: missing (needed by {split_dir / 'eigen' / 'test_files.txt'} line " \
               f"{line})" in result.stderr
    assert not (tmp_path / "out").exists()


def test_eigen_benchmark_export_reads_the_improved_maps(tmp_path):
    root = tmp_path / "raw"
    maps = {}
    for frame in (4, 9):
        raw = np.zeros((6, 8), np.uint16)
        raw[frame % 6, frame % 8] = 256 * frame + 64
        path = root / DRIVE / "proj_depth/groundtruth/image_02" / f"{frame:010d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), raw)
        maps[frame] = raw.astype(np.float32) / 256
    split_dir = write_test_list(tmp_path / "splits", "eigen_benchmark",
                                f"{DRIVE} 9 l\n{DRIVE} 4 l\n")
    output = tmp_path / "gt_depths.npz"
    assert export_gt_depths(root, "eigen_benchmark", split_dir, output) == 2
    data = np.load(output, allow_pickle=True)["data"]
    np.testing.assert_array_equal(data[0], maps[9])
    np.testing.assert_array_equal(data[1], maps[4])
    assert data[0][3, 1] == 9.25


@pytest.mark.parametrize("split", ["benchmark", "odom"])
def test_export_refuses_splits_without_raw_frames(tmp_path, split):
    with pytest.raises(DataError, match=f"'{split}': its test list does not name raw KITTI"):
        export_gt_depths(tmp_path, split, tmp_path, tmp_path / "gt_depths.npz")
