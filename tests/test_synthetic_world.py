"""The synthetic world: KITTI layout, exact geometry, LiDAR consistent with the depth."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from monodepth_tf.data.calibration import read_calib_file
from monodepth_tf.data.check import split_problems
from monodepth_tf.data.gt_depth import lidar_depth_map
from monodepth_tf.data.kitti import KittiRawLayout, load_rgb, read_split
from monodepth_tf.data.synthetic import BASELINE, Camera, make_synthetic_kitti
from tests.conftest import PROJECT_ROOT

H, W = 96, 320
DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_kitti(root, seed=5, num_drives=2, frames_per_drive=12, height=H, width=W)
    return root


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest(), len(files)


def test_same_seed_same_bytes_other_seed_other_world(world, tmp_path):
    make_synthetic_kitti(tmp_path / "a", seed=5, num_drives=2, frames_per_drive=12, height=H,
                         width=W)
    make_synthetic_kitti(tmp_path / "b", seed=6, num_drives=2, frames_per_drive=12, height=H,
                         width=W)
    assert digest(tmp_path / "a") == digest(world)
    assert digest(tmp_path / "b")[0] != digest(world)[0]


def test_layout_splits_and_calibration_are_kitti_raw(world, kitti_dir):
    layout = KittiRawLayout(world, "png")
    for name in ("train", "val", "test"):
        entries = read_split(world / "splits", "synthetic", name)
        assert not split_problems(layout, entries, (0, -1, 1, "s"), need_velodyne=True)
    real_keys = set(read_calib_file(kitti_dir / "raw/2011_09_26/calib_cam_to_cam.txt"))
    ours = read_calib_file(world / "2011_09_26" / "calib_cam_to_cam.txt")
    assert real_keys <= set(ours)
    P3 = ours["P_rect_03"].reshape(3, 4)
    assert P3[0, 3] == pytest.approx(-P3[0, 0] * BASELINE)
    train = read_split(world / "splits", "synthetic", "train")
    test = read_split(world / "splits", "synthetic", "test")
    assert {e.side for e in train} == {"l", "r"} and {e.side for e in test} == {"l"}
    assert not {(e.folder, e.frame_index) for e in train} & {(e.folder, e.frame_index)
                                                              for e in test}


def test_images_are_textured(world):
    image = load_rgb(world / DRIVE / "image_02" / "data" / "0000000005.png").astype(float)
    gradient = np.abs(np.diff(image, axis=1)).mean()
    assert image.shape == (H, W, 3) and gradient > 3.0


def exact_depth(world, frame):
    test = read_split(world / "splits", "synthetic", "test")
    gt = np.load(world / "splits" / "synthetic" / "gt_depths.npz", allow_pickle=True)["data"]
    return {(e.folder, e.frame_index): d for e, d in zip(test, gt)}[(DRIVE, frame)]


def test_right_image_warped_by_the_exact_depth_reproduces_the_left(world):
    """Independent geometry check: disparity = fx * 0.54 / depth moves right-image pixels onto
    the left image (bilinear sampling in NumPy), away from occlusions and the sky."""
    test_frame = read_split(world / "splits", "synthetic", "test")[0].frame_index
    left = load_rgb(world / DRIVE / "image_02/data" / f"{test_frame:010d}.png") / 255.0
    right = load_rgb(world / DRIVE / "image_03/data" / f"{test_frame:010d}.png") / 255.0
    depth = exact_depth(world, test_frame)
    fx = Camera.kitti(H, W).fx
    rows, cols = np.nonzero(depth > 0)
    x = cols - fx * BASELINE / depth[rows, cols]
    inside = x >= 0
    rows, cols, x = rows[inside], cols[inside], x[inside]
    x0 = np.floor(x).astype(int)
    a = (x - x0)[:, None]
    warped = right[rows, x0] * (1 - a) + right[rows, np.minimum(x0 + 1, W - 1)] * a
    error = np.abs(warped - left[rows, cols]).mean(axis=1)
    assert np.median(error) < 0.02
    assert np.mean(error < 0.08) > 0.9  # the rest: occlusion borders and texture aliasing


def test_lidar_points_project_onto_pixels_of_their_exact_depth(world):
    """KITTI's recipe, written here independently, lands every point on the pixel whose exact
    depth equals the point's forward coordinate."""
    frame = read_split(world / "splits", "synthetic", "test")[0].frame_index
    depth = exact_depth(world, frame)
    points = np.fromfile(world / DRIVE / "velodyne_points/data" / f"{frame:010d}.bin",
                         np.float32).reshape(-1, 4).astype(np.float64)
    calib = read_calib_file(world / "2011_09_26" / "calib_cam_to_cam.txt")
    velo = read_calib_file(world / "2011_09_26" / "calib_velo_to_cam.txt")
    Rt = np.eye(4)
    Rt[:3, :3], Rt[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    P = calib["P_rect_02"].reshape(3, 4)
    cam = P @ Rt @ np.c_[points[:, :3], np.ones(len(points))].T
    cols = np.round(cam[0] / cam[2]).astype(int) - 1
    rows = np.round(cam[1] / cam[2]).astype(int) - 1
    assert len(points) > 1000
    assert ((cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)).all()
    np.testing.assert_allclose(points[:, 0], depth[rows, cols], rtol=1e-5)
    # and the project's own ground-truth export agrees at every pixel it fills
    gt = lidar_depth_map(world / "2011_09_26", world / DRIVE / "velodyne_points/data"
                         / f"{frame:010d}.bin", cam=2)
    filled = gt > 0
    assert filled.sum() == len(points)
    np.testing.assert_allclose(gt[filled], depth[filled], rtol=1e-5)


def test_tool_writes_a_world(tmp_path):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "make_synthetic_kitti"),
                             "--output_dir", str(tmp_path), "--frames_per_drive", "10",
                             "--num_drives", "1", "--height", "64", "--width", "192"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote 10 stereo frames" in result.stdout
    bad = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "make_synthetic_kitti"),
                          "--output_dir", str(tmp_path), "--frames_per_drive", "3"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--frames_per_drive must be at least 10" in bad.stderr
