"""KITTI readers, LiDAR ground truth and data checks on real KITTI files."""

import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from monodepth_tf.data.calibration import read_calib_file, read_odometry_poses, velo_to_camera
from monodepth_tf.data.check import split_problems
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.gt_depth import lidar_depth_map
from monodepth_tf.data.kitti import (KittiOdometryLayout, KittiRawLayout, SplitEntry,
                                     load_depth_png, load_rgb, read_split, read_split_file)
from tests.conftest import PROJECT_ROOT

DATE, DRIVE = "2011_09_26", "2011_09_26/2011_09_26_drive_0000_sync"


def make_raw_tree(kitti_dir, root, frames=(1,)):
    """A raw-layout copy (symlinks) of the shared frame, under the given frame numbers."""
    (root / DATE).mkdir(parents=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        os.symlink(kitti_dir / "raw" / DATE / name, root / DATE / name)
    real = kitti_dir / "raw" / DRIVE
    for sub, name in (("image_02/data", "0000000001.png"), ("image_03/data", "0000000001.png"),
                      ("velodyne_points/data", "0000000001.bin")):
        (root / DRIVE / sub).mkdir(parents=True)
        for frame in frames:
            os.symlink(real / sub / name, root / DRIVE / sub / f"{frame:010d}{name[-4:]}")
    return root


def test_calibration_values_read_from_the_text(kitti_dir):
    path = kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt"
    calib = read_calib_file(path)
    line = next(l for l in path.read_text().splitlines() if l.startswith("P_rect_02:"))
    assert calib["P_rect_02"][3] == float(line.split()[4])
    assert calib["S_rect_02"].tolist() == [1242.0, 375.0]
    assert "calib_time" not in calib
    P, size = velo_to_camera(kitti_dir / "raw" / DATE, 2)
    assert P.shape == (3, 4) and size == (375, 1242)


def test_split_lists_parse(kitti_dir):
    test = read_split(kitti_dir / "splits", "eigen", "test")
    assert len(test) == 697
    assert test[0] == SplitEntry("2011_09_26/2011_09_26_drive_0002_sync", 69, "l")
    odom = read_split_file(kitti_dir / "splits" / "odom" / "test_files_09.txt")
    assert odom[1] == SplitEntry("9", 1, "l")


def test_malformed_split_line_names_file_and_line(tmp_path):
    path = tmp_path / "train_files.txt"
    path.write_text("2011_09_26/x 5 l\n2011_09_26/x five l\n")
    with pytest.raises(DataError, match=r"train_files.txt:2: expected"):
        read_split_file(path)


def test_images_load_as_rgb_and_grayscale_becomes_three_channels(kitti_dir):
    layout = KittiRawLayout(kitti_dir / "raw", "png")
    image = load_rgb(layout.image_path(DRIVE, 1, "l"))
    assert image.shape == (375, 1242, 3) and image.dtype == np.uint8
    bgr = cv2.imread(str(layout.image_path(DRIVE, 1, "l")))
    np.testing.assert_array_equal(image, bgr[..., ::-1])
    odometry = KittiOdometryLayout(kitti_dir / "odometry")
    grey = load_rgb(odometry.image_path(0, 3, image_folder=0))
    assert grey.shape == (376, 1241, 3)
    assert (grey[..., 0] == grey[..., 2]).all()
    poses = read_odometry_poses(odometry.poses_path(0))
    assert poses.shape == (6, 4, 4)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-6)


@pytest.mark.parametrize("cam", [2, 3])
def test_lidar_ground_truth_equals_the_original_exactly(kitti_dir, cam):
    reference = np.load(kitti_dir / "reference" / "gt_depth_2011_09_26_drive_0000_0000000001.npz")
    ours = lidar_depth_map(kitti_dir / "raw" / DATE,
                           kitti_dir / "raw" / DRIVE / "velodyne_points/data/0000000001.bin", cam)
    np.testing.assert_array_equal(ours.astype(np.float32), reference[f"cam{cam}"])
    assert (ours > 0).sum() > 19000


def test_export_gt_depth_tool_writes_the_same_map(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw")
    (tmp_path / "splits" / "eigen").mkdir(parents=True)
    (tmp_path / "splits" / "eigen" / "test_files.txt").write_text(f"{DRIVE} 1 l\n")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "export_gt_depth"),
                             "--data_path", str(root), "--split", "eigen",
                             "--split_dir", str(tmp_path / "splits")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = np.load(tmp_path / "splits" / "eigen" / "gt_depths.npz", allow_pickle=True)["data"]
    # the LiDAR forward coordinate, as the original's export writes (tests/test_gt_depth.py)
    reference = np.load(kitti_dir / "reference" /
                        "gt_depth_velodyne_2011_09_26_drive_0000_0000000001.npz")
    assert len(data) == 1
    np.testing.assert_array_equal(data[0], reference["cam2"])


def test_improved_ground_truth_png_is_value_over_256(tmp_path):
    raw = np.zeros((4, 5), np.uint16)
    raw[1, 2], raw[3, 4] = 256 * 12 + 128, 65535
    cv2.imwrite(str(tmp_path / "d.png"), raw)
    depth = load_depth_png(tmp_path / "d.png")
    assert depth[1, 2] == 12.5 and depth[3, 4] == pytest.approx(65535 / 256) and depth[0, 0] == 0
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(DataError, match="rgb.png"):
        load_depth_png(tmp_path / "rgb.png")


def test_bad_data_is_reported_file_by_file(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw", frames=(1, 2, 3))
    images = root / DRIVE / "image_02" / "data"
    # frame 2: truncated PNG; frame 3: random bytes; frame 4: missing
    real = (kitti_dir / "raw" / DRIVE / "image_02/data/0000000001.png").read_bytes()
    for frame, content in ((2, real[: len(real) // 2]), (3, os.urandom(4000))):
        (images / f"{frame:010d}.png").unlink()
        (images / f"{frame:010d}.png").write_bytes(content)
    entries = [SplitEntry(DRIVE, 2, "l"), SplitEntry(DRIVE, 4, "l"),
               SplitEntry("2011_09_26/2011_09_26_drive_0099_sync", 5, "l")]
    problems = split_problems(KittiRawLayout(root, "png"), entries, (0, -1, 1),
                              source="train_files.txt")
    text = "\n".join(problems)
    assert "0000000002.png: truncated PNG" in text
    assert "0000000003.png: not a PNG or JPEG image" in text
    assert "0000000004.png: missing (needed by train_files.txt line 2)" in text
    assert "0000000005.png: missing" in text
    assert "drive_0099_sync: drive folder missing (named by train_files.txt line 3)" in text
    with pytest.raises(DataError, match="0000000003.png is unreadable"):
        load_rgb(images / "0000000003.png")


def test_calibration_missing_a_key_is_named(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw")
    calib = root / DATE / "calib_cam_to_cam.txt"
    text = calib.read_text()
    calib.unlink()
    calib.write_text("\n".join(l for l in text.splitlines() if not l.startswith("P_rect_02")))
    problems = split_problems(KittiRawLayout(root, "png"), [SplitEntry(DRIVE, 1, "l")], (0,),
                              need_velodyne=True)
    assert any("calib_cam_to_cam.txt: calibration key 'P_rect_02' is missing" in p
               for p in problems)
    with pytest.raises(DataError, match="'P_rect_02' is missing"):
        lidar_depth_map(root / DATE, root / DRIVE / "velodyne_points/data/0000000001.bin")


def test_check_data_tool_exit_codes(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw", frames=(0, 1, 2, 3))
    split = tmp_path / "splits" / "mine"
    split.mkdir(parents=True)
    (split / "train_files.txt").write_text(f"{DRIVE} 1 l\n")
    (split / "val_files.txt").write_text(f"{DRIVE} 2 l\n")
    tool = [sys.executable, str(PROJECT_ROOT / "bin" / "check_data"), "--data_path", str(root),
            "--split", "mine", "--split_dir", str(tmp_path / "splits"), "--png"]
    ok = subprocess.run(tool, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "2 samples of split mine checked" in ok.stdout
    (root / DRIVE / "image_03" / "data" / "0000000002.png").unlink()
    bad = subprocess.run(tool + ["--use_stereo", "--frame_ids=0,-1,1,2"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert "image_02/data/0000000004.png: missing (needed by val_files.txt line 1)" in bad.stderr
    assert "image_03/data/0000000002.png: missing" in bad.stderr
    shutil.rmtree(tmp_path / "splits")
    gone = subprocess.run(tool, capture_output=True, text=True, timeout=120)
    assert gone.returncode == 2 and "train_files.txt does not exist" in gone.stderr
