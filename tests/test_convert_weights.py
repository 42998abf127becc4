"""bin/convert_weights writes a weights folder that reproduces the original's predictions."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import geometry
from monodepth_tf.weights.folder import WeightsFolderError, load_networks, read_config
from tests.helpers import PROJECT_ROOT
from tests.reference import load_npz, nhwc


def run_tool(*args):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "convert_weights"), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def converted(reference_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights") / "r18"
    result = run_tool("--pytorch_dir", str(reference_dir), "--output_dir", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_folder_records_architecture_and_feed_size(converted):
    config = json.loads((converted / "config.json").read_text())
    assert (config["height"], config["width"], config["num_layers"]) == (192, 640, 18)
    assert config["pose_model_type"] == "separate_resnet" and config["num_pose_frames"] == 2
    names = sorted(p.name for p in converted.iterdir())
    assert names == ["config.json", "depth.weights.h5", "encoder.weights.h5",
                     "pose.weights.h5", "pose_encoder.weights.h5"]


@pytest.mark.parametrize("source", ["converted", "pytorch"])
def test_loaded_folder_predicts_the_reference_scaled_disparity(converted, reference_dir, source):
    folder = converted if source == "converted" else reference_dir
    _, depth, pose = load_networks(folder)
    forward = load_npz(reference_dir, "forward.npz")
    disp = depth(tf.constant(nhwc(forward["full/input"])), training=False)[0]
    scaled, _ = geometry.disp_to_depth(disp, 0.1, 100.0)
    # 1e-4 in disparity, i.e. 9.99e-4 in scaled disparity (see test_networks)
    np.testing.assert_allclose(scaled.numpy(), nhwc(forward["full/scaled_disp"]), atol=9.99e-4)
    axisangle, _ = pose(tf.constant(nhwc(forward["eval/pose_input"])), training=False)
    np.testing.assert_allclose(axisangle.numpy(), forward["eval/axisangle"], atol=1e-4)


def test_missing_pytorch_folder_is_a_clear_error(tmp_path):
    result = run_tool("--pytorch_dir", str(tmp_path / "nowhere"), "--output_dir",
                      str(tmp_path / "out"))
    assert result.returncode != 0
    assert "nowhere" in result.stderr and "encoder.pth" in result.stderr
    assert not (tmp_path / "out").exists()


def test_folder_without_weights_is_rejected(tmp_path):
    with pytest.raises(WeightsFolderError, match="is not a weights folder"):
        read_config(tmp_path)
