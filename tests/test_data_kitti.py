"""KITTI readers on the real files in ../shared/kitti: calibration, poses, split lists, folder
layouts, images and KITTI depth's 16-bit PNGs, and the errors bad files raise."""

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from monodepth_tf.data.calibration import (read_calib_file, read_odometry_calibration,
                                           read_odometry_poses, velo_to_camera)
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.images import load_depth_png, load_rgb
from monodepth_tf.data.kitti import KittiOdometryLayout, KittiRawLayout
from monodepth_tf.data.splits import SplitEntry, default_split_dir, read_split, read_split_file
from tests.helpers import DATE, DRIVE, FRAME, PROJECT_ROOT, make_raw_tree, replace_file


def value_from_text(path: Path, key: str, index: int) -> float:
    """The ``index``-th number of ``key``'s line, read from the text without the reader."""
    line = next(line for line in path.read_text().splitlines() if line.startswith(key + ":"))
    return float(line.split(":", 1)[1].split()[index])


def raises_naming(message: str):
    """Expects a DataError whose message contains ``message`` literally."""
    return pytest.raises(DataError, match=re.escape(message))


# --- calibration and poses ------------------------------------------------------------------

def test_raw_calibration_values_come_from_the_file(kitti_dir):
    path = kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt"
    calib = read_calib_file(path)
    assert calib["P_rect_02"][3] == value_from_text(path, "P_rect_02", 3) == 44.85728
    assert calib["P_rect_03"].shape == (12,) and calib["R_rect_00"].shape == (9,)
    assert calib["S_rect_02"].tolist() == [1242.0, 375.0]
    assert calib["P_rect_02"].dtype == np.float64
    assert "calib_time" not in calib  # a date, not numbers
    velo = read_calib_file(kitti_dir / "raw" / DATE / "calib_velo_to_cam.txt")
    assert velo["R"].size == 9 and velo["T"][2] == -2.717806e-01


def test_velodyne_projection_composes_rect_projection_rectification_and_motion(kitti_dir):
    cam = read_calib_file(kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt")
    velo = read_calib_file(kitti_dir / "raw" / DATE / "calib_velo_to_cam.txt")
    motion, rect = np.eye(4), np.eye(4)
    motion[:3] = np.c_[velo["R"].reshape(3, 3), velo["T"]]
    rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    for side_cam in (2, 3):
        P, size = velo_to_camera(kitti_dir / "raw" / DATE, side_cam)
        assert size == (375, 1242)
        np.testing.assert_array_equal(P, cam[f"P_rect_0{side_cam}"].reshape(3, 4) @ rect @ motion)


def test_calibration_missing_key_names_file_and_key(kitti_dir, tmp_path):
    path = tmp_path / "calib_cam_to_cam.txt"
    text = (kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt").read_text()
    path.write_text("\n".join(l for l in text.splitlines() if not l.startswith("R_rect_00")))
    calib = read_calib_file(path)
    with raises_naming(f"{path}: calibration key 'R_rect_00' is missing"):
        calib["R_rect_00"]
    with pytest.raises(DataError, match=r"'S_rect_02' has 2 numbers, expected 4"):
        calib.matrix("S_rect_02", (2, 2))
    with raises_naming(f"{tmp_path / 'absent.txt'}: calibration file missing"):
        read_calib_file(tmp_path / "absent.txt")


def test_odometry_calibration_and_poses(kitti_dir):
    calib_path = kitti_dir / "odometry" / "sequences" / "00" / "calib.txt"
    calib = read_odometry_calibration(calib_path)
    assert calib.projections.shape == (4, 3, 4)
    assert calib.projections[2, 0, 3] == value_from_text(calib_path, "P2", 3)
    assert calib.velo_to_cam[2, 3] == value_from_text(calib_path, "Tr", 11)
    assert calib.velo_to_cam[3].tolist() == [0, 0, 0, 1]
    poses_path = kitti_dir / "odometry" / "poses" / "00.txt"
    poses = read_odometry_poses(poses_path)
    assert poses.shape == (6, 4, 4)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-6)
    second = [float(v) for v in poses_path.read_text().splitlines()[1].split()]
    np.testing.assert_array_equal(poses[1, :3].ravel(), second)
    assert (poses[:, 3] == [0, 0, 0, 1]).all()


def test_malformed_pose_line_names_file_and_line(tmp_path):
    path = tmp_path / "00.txt"
    path.write_text(" ".join(["1"] * 12) + "\n" + " ".join(["1"] * 11) + "\n")
    with raises_naming(f"{path}:2: expected 12 numbers"):
        read_odometry_poses(path)


# --- split lists ----------------------------------------------------------------------------

def test_real_split_lists_parse(kitti_dir):
    splits = kitti_dir / "splits"
    test = read_split(splits, "eigen", "test")
    assert len(test) == 697
    assert test[0] == SplitEntry("2011_09_26/2011_09_26_drive_0002_sync", 69, "l")
    assert test[2] == SplitEntry("2011_09_26/2011_09_26_drive_0002_sync", 42, "l")
    last = (splits / "eigen" / "test_files.txt").read_text().split("\n")[696].split()
    assert test[-1] == SplitEntry(last[0], int(last[1]), last[2])
    assert len(read_split(splits, "eigen_benchmark", "test")) == 652
    zhou = read_split(splits, "eigen_zhou", "train")
    assert len(zhou) == 39810
    assert zhou[0] == SplitEntry("2011_09_26/2011_09_26_drive_0022_sync", 473, "r")
    assert read_split_file(splits / "odom" / "test_files_09.txt")[1] == SplitEntry("9", 1, "l")
    assert read_split(splits, "benchmark", "test")[0] == SplitEntry("image", 0, "l")


def test_missing_split_file_is_named(tmp_path):
    with raises_naming(f"{tmp_path / 'eigen' / 'val_files.txt'} does not exist"):
        read_split(tmp_path, "eigen", "val")


@pytest.mark.parametrize("bad_line", ["2011_09_26/x five l", "2011_09_26/x 5 left",
                                      "2011_09_26/x", "2011_09_26/x 5 l extra",
                                      "2011_09_26/x -3 l"])
def test_malformed_split_line_names_file_and_line_number(tmp_path, bad_line):
    path = tmp_path / "train_files.txt"
    path.write_text(f"2011_09_26/x 5 l\n\n{bad_line}\n")
    with raises_naming(f"{path}:3: expected '<folder> <frame index> <l|r>'"):
        read_split_file(path)


def test_default_split_dir_is_the_repository_splits_folder():
    assert default_split_dir() == PROJECT_ROOT / "splits"


# --- layouts --------------------------------------------------------------------------------

def test_raw_layout_paths(tmp_path):
    layout = KittiRawLayout(tmp_path, "png")
    entry = SplitEntry(DRIVE, 5, "l")
    left = tmp_path / DRIVE / "image_02" / "data"
    right = tmp_path / DRIVE / "image_03" / "data"
    assert layout.image_path(entry) == left / "0000000005.png"
    assert layout.image_path(DRIVE, 5, "r") == right / "0000000005.png"
    assert layout.image_path(DRIVE, 5) == left / "0000000005.png"
    assert layout.frame_path(entry, 0) == left / "0000000005.png"
    assert layout.frame_path(entry, -1) == left / "0000000004.png"
    assert layout.frame_path(entry, "3") == left / "0000000008.png"
    assert layout.frame_path(entry, "s") == right / "0000000005.png"
    assert layout.frame_path(entry._replace(side="r"), "s") == left / "0000000005.png"
    assert layout.sample_paths(entry, (0, -1, 1, "s")) == {
        "0": left / "0000000005.png", "-1": left / "0000000004.png",
        "1": left / "0000000006.png", "s": right / "0000000005.png"}
    assert layout.velodyne_path(entry) == \
        tmp_path / DRIVE / "velodyne_points" / "data" / "0000000005.bin"
    assert layout.calib_dir(entry) == layout.calib_dir(DRIVE) == tmp_path / DATE
    assert layout.depth_png_path(entry, side="r") == \
        tmp_path / DRIVE / "proj_depth" / "groundtruth" / "image_03" / "0000000005.png"
    assert KittiRawLayout(tmp_path).image_path(entry).suffix == ".jpg"


def test_raw_layout_refuses_bad_frames_sides_and_extensions(tmp_path):
    layout = KittiRawLayout(tmp_path, "png")
    with raises_naming(f"{tmp_path / DRIVE}: frame index -1 is before the first frame"):
        layout.frame_path(SplitEntry(DRIVE, 0, "l"), -1)
    with pytest.raises(DataError, match="side 'x'"):
        layout.image_path(DRIVE, 0, "x")
    with pytest.raises(DataError, match="neither an integer offset nor 's'"):
        layout.frame_path(SplitEntry(DRIVE, 0, "l"), "next")
    with pytest.raises(DataError, match="'bmp'"):
        KittiRawLayout(tmp_path, "bmp")


def test_odometry_layout_paths_exist(kitti_dir):
    root = kitti_dir / "odometry"
    colour, grey = KittiOdometryLayout(root), KittiOdometryLayout(root, grayscale=True)
    assert colour.image_path(0, 3) == root / "sequences" / "00" / "image_2" / "000003.png"
    assert colour.image_path("0", 3, "r") == root / "sequences" / "00" / "image_3" / "000003.png"
    assert grey.image_path(0, 3).is_file() and grey.image_path(0, 0, "r").is_file()
    assert colour.image_path(0, 5, image_folder=0) == grey.image_path(0, 5)
    assert colour.calib_path(0).is_file() and colour.poses_path("00").is_file()
    with pytest.raises(DataError, match="'x'"):
        colour.image_path("x", 0)


# --- images ---------------------------------------------------------------------------------

def test_colour_images_load_as_rgb_uint8(kitti_dir):
    layout = KittiRawLayout(kitti_dir / "raw", "png")
    for side in ("l", "r"):
        path = layout.image_path(DRIVE, FRAME, side)
        image = load_rgb(path)
        assert image.shape == (375, 1242, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, cv2.imread(str(path))[..., ::-1])


def test_grayscale_odometry_images_get_three_equal_channels(kitti_dir):
    layout = KittiOdometryLayout(kitti_dir / "odometry", grayscale=True)
    path = layout.image_path(0, 3)
    image = load_rgb(path)
    assert image.shape == (376, 1241, 3) and image.dtype == np.uint8
    grey = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert grey.ndim == 2
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], grey)


def test_bad_image_files_raise_naming_the_file(kitti_dir, tmp_path):
    real = (kitti_dir / "raw" / DRIVE / "image_02" / "data" / f"{FRAME:010d}.png").read_bytes()
    cases = {"truncated.png": real[: len(real) // 2], "cut_end.png": real[:-20],
             "random.png": np.random.default_rng(0).bytes(5000), "empty.png": b"",
             "png_head_random_body.png": real[:8] + np.random.default_rng(1).bytes(5000)
             + real[-12:]}
    for name, content in cases.items():
        replace_file(tmp_path / name, content)
        with raises_naming(f"image {tmp_path / name} is unreadable"):
            load_rgb(tmp_path / name)
    with raises_naming(f"image {tmp_path / 'absent.png'} does not exist"):
        load_rgb(tmp_path / "absent.png")


def test_jpeg_round_trip_and_truncated_jpeg(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image[..., ::-1])
    assert ok
    (tmp_path / "a.jpg").write_bytes(encoded.tobytes())
    assert load_rgb(tmp_path / "a.jpg").shape == (40, 60, 3)
    (tmp_path / "b.jpg").write_bytes(encoded.tobytes()[:-100])
    with pytest.raises(DataError, match=r"b.jpg is unreadable \(truncated JPEG"):
        load_rgb(tmp_path / "b.jpg")


# --- KITTI depth's improved ground truth ------------------------------------------------------

def test_depth_png_is_sixteen_bit_value_over_256(tmp_path):
    raw = np.zeros((5, 7), np.uint16)
    raw[1, 2], raw[3, 4], raw[4, 6] = 256 * 12 + 128, 65535, 1
    assert cv2.imwrite(str(tmp_path / "depth.png"), raw)
    depth = load_depth_png(tmp_path / "depth.png")
    assert depth.dtype == np.float32 and depth.shape == (5, 7)
    assert depth[1, 2] == 12.5 and depth[3, 4] == 65535 / 256 and depth[4, 6] == 1 / 256
    assert (depth[raw == 0] == 0).all()


def test_depth_png_refuses_eight_bit_colour_and_missing_files(tmp_path):
    cv2.imwrite(str(tmp_path / "colour.png"), np.zeros((4, 5, 3), np.uint8))
    with raises_naming(f"depth map {tmp_path / 'colour.png'} is uint8"):
        load_depth_png(tmp_path / "colour.png")
    with raises_naming(f"depth map {tmp_path / 'absent.png'} does not exist"):
        load_depth_png(tmp_path / "absent.png")


def test_make_raw_tree_links_without_copying(kitti_dir, tmp_path):
    root = make_raw_tree(kitti_dir, tmp_path / "raw", frames=(0, 1, 2))
    layout = KittiRawLayout(root, "png")
    assert all(layout.frame_path(SplitEntry(DRIVE, 1, "l"), f).is_symlink() for f in (-1, 0, 1))
    assert os.path.samefile(layout.velodyne_path(DRIVE, 2),
                            kitti_dir / "raw" / DRIVE / "velodyne_points/data/0000000001.bin")
