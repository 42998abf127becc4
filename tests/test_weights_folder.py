"""monodepth_tf.weights.folder: a folder that does not fit, or whose files are damaged, is
refused with one line naming the folder or file and what is wrong (before: Keras' pages of
variable dumps, or h5py's "file signature not found" with no file named)."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.weights.folder import (WeightsFolderError, build_networks, load_keras_weights,
                                         load_networks, load_weights_folder, save_weights_folder)
from tests.helpers import PROJECT_ROOT, random_depth_weights


@pytest.fixture(scope="module")
def resnet34_folder(tmp_path_factory):
    """A ResNet-34 mono folder (depth and separate-ResNet pose networks) at 64x192."""
    config = ModelConfig(num_layers=34, height=64, width=192)
    depth, pose = build_networks(config)
    return save_weights_folder(tmp_path_factory.mktemp("weights") / "r34", config, depth, pose)


def test_a_folder_of_another_depth_is_refused_before_reading_naming_the_setting(
        resnet34_folder):
    depth, pose = build_networks(ModelConfig(num_layers=18, height=64, width=192))
    before = [v.numpy() for v in depth.variables[:3]]
    with pytest.raises(WeightsFolderError) as error:
        load_weights_folder(resnet34_folder, depth, pose)
    message = str(error.value)
    assert message.startswith(f"weights folder {resnet34_folder} holds a ResNet-34 depth "
                              "encoder (num_layers 34), the network built has num_layers 18; "
                              "a ResNet-34 pose encoder")
    assert "--num_layers 34" in message and "\n" not in message and len(message) < 400
    for old, variable in zip(before, depth.variables[:3]):  # nothing was read
        np.testing.assert_array_equal(old, variable.numpy())


def test_a_folder_of_another_pose_network_is_refused(resnet34_folder):
    depth, pose = build_networks(ModelConfig(num_layers=34, height=64, width=192,
                                             pose_model_type="posecnn"))
    with pytest.raises(WeightsFolderError, match="holds a separate_resnet pose network, the one "
                                                 "built is posecnn"):
        load_weights_folder(resnet34_folder, depth, pose)
    # the depth network alone still loads from it
    load_weights_folder(resnet34_folder, depth, None, ("encoder", "depth"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_weights_file_is_named(tmp_path, damage):
    folder = random_depth_weights(tmp_path / "weights", seed=0)
    path = folder / "depth.weights.h5"
    data = path.read_bytes()
    path.write_bytes({"garbage": b"not hdf5 " * 100, "truncated": data[:len(data) // 2],
                      "empty": b""}[damage])
    with pytest.raises(WeightsFolderError) as error:
        load_networks(folder)
    message = str(error.value)
    assert message.startswith(f"{path} is not a readable weights file (")
    assert message.endswith("the file is damaged or incomplete; write or download the folder "
                            "again") and "\n" not in message


def test_a_file_that_does_not_fit_is_named_in_one_line(tmp_path):
    """Loading one part's file into another architecture directly (no config to compare):
    Keras' multi-page report is cut to its first line, after the file's name."""
    config = ModelConfig(num_layers=34, height=64, width=192, pose_model_type=None)
    depth34, _ = build_networks(config, with_pose=False)
    depth34.encoder.save_weights(str(tmp_path / "encoder.weights.h5"))
    depth18, _ = build_networks(ModelConfig(height=64, width=192, pose_model_type=None),
                                with_pose=False)
    with pytest.raises(WeightsFolderError) as error:
        load_keras_weights(depth18.encoder, tmp_path / "encoder.weights.h5", "encoder")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'encoder.weights.h5'} ")
    assert "encoder network" in message and "\n" not in message and len(message) < 300


def test_a_good_folder_still_loads_exactly(tmp_path):
    folder = random_depth_weights(tmp_path / "weights", seed=3)
    _, depth, _ = load_networks(folder)
    _, again, _ = load_networks(folder)
    image = tf.random.stateless_uniform([1, 64, 192, 3], seed=[4, 5])
    np.testing.assert_array_equal(depth(image)[0].numpy(), again(image)[0].numpy())


def test_bin_predict_names_the_damaged_file(tmp_path, kitti_dir):
    folder = random_depth_weights(tmp_path / "weights", seed=0)
    (folder / "encoder.weights.h5").write_bytes(b"\0" * 64)
    image = next(kitti_dir.rglob("image_02/data/*.png"))
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "predict"),
                             "--image_path", str(image), "--load_weights_folder", str(folder),
                             "--output_dir", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {folder / 'encoder.weights.h5'} is not a readable weights file")
    assert "Traceback" not in result.stderr
