"""bin/show_sample draws a sample's frames, their network copies and the LiDAR ground truth."""

import subprocess
import sys

import cv2
import numpy as np

from monodepth_tf.cli.show_sample import depth_overlay
from monodepth_tf.synthetic import make_synthetic_kitti
from tests.helpers import PROJECT_ROOT


def test_sheet_has_a_row_per_frame_and_the_lidar_row(tmp_path):
    world = tmp_path / "world"
    make_synthetic_kitti(world, seed=2, num_drives=1, frames_per_drive=10, height=96, width=320)
    tool = [sys.executable, str(PROJECT_ROOT / "bin" / "show_sample"), "--data_path", str(world),
            "--split", "synthetic", "--split_dir", str(world / "splits"), "--png",
            "--use_stereo", "--height", "64", "--width", "192", "--output",
            str(tmp_path / "sheet.png")]
    result = subprocess.run(tool + ["--index", "3"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    # four frames (0, -1, 1, s) of 64 rows, then the ground truth resized to 384 wide
    assert sheet.shape == (4 * 64 + round(96 * 384 / 320), 384, 3)
    bad = subprocess.run(tool + ["--index", "999"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--index=999" in bad.stderr


def test_overlay_colours_only_pixels_with_depth():
    image = np.full((20, 30, 3), 200, np.uint8)
    depth = np.zeros((20, 30))
    depth[10, 15], depth[2, 3] = 5.0, 50.0
    out = depth_overlay(image, depth)
    assert (out[18, 25] == 100).all()  # darkened, untouched
    near, far = out[10, 15].astype(int), out[2, 3].astype(int)
    assert near.sum() > far.sum()  # near points are brighter
