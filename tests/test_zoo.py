"""Model-zoo names resolve to their presets; weights come from a local folder."""

import json

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import zoo
from monodepth_tf.geometry import disp_to_depth
from monodepth_tf.weights.folder import WeightsFolderError
from tests.reference import load_npz, nhwc

DEPTH = "monodepth2_resnet18_kitti_{}_640x192"
POSE = "monodepth2_resnet18_posenet_kitti_{}_640x192"


def test_the_tutorial_names_are_known():
    expected = {DEPTH.format(m) for m in ("mono", "stereo", "mono_stereo")}
    expected |= {POSE.format(m) for m in ("mono", "mono_stereo")}
    assert set(zoo.names()) == expected and len(zoo.names()) == 5


@pytest.mark.parametrize("name, mode, frame_ids, use_stereo, is_pose", [
    (DEPTH.format("mono"), "mono", (0, -1, 1), False, False),
    (DEPTH.format("stereo"), "stereo", (0,), True, False),
    (DEPTH.format("mono_stereo"), "mono_stereo", (0, -1, 1), True, False),
    (POSE.format("mono"), "mono", (0, -1, 1), False, True),
    (POSE.format("mono_stereo"), "mono_stereo", (0, -1, 1), True, True),
])
def test_presets(name, mode, frame_ids, use_stereo, is_pose):
    preset = zoo.resolve(name)
    assert (preset.name, preset.mode, preset.frame_ids, preset.use_stereo, preset.is_pose) == \
        (name, mode, frame_ids, use_stereo, is_pose)
    assert (preset.num_layers, preset.height, preset.width) == (18, 192, 640)
    assert zoo.resolve(preset) is preset


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        zoo.resolve("monodepth2_resnet50_kitti_mono_640x192")
    message = str(error.value)
    assert "monodepth2_resnet50_kitti_mono_640x192" in message
    assert all(name in message for name in zoo.names())


def test_folder_comes_from_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = DEPTH.format("stereo")
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text("{}")
    assert zoo.weights_folder(name) == tmp_path / name


def test_default_folder_is_under_keras_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MONODEPTH_ZOO_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    name = DEPTH.format("mono")
    folder = tmp_path / ".keras" / "monodepth_tf" / "zoo" / name
    assert zoo.zoo_dir() == tmp_path / ".keras" / "monodepth_tf" / "zoo"
    with pytest.raises(WeightsFolderError) as error:
        zoo.weights_folder(name)
    assert str(folder) in str(error.value) and "does not exist" in str(error.value)
    folder.mkdir(parents=True)
    (folder / "encoder.pth").write_bytes(b"")
    assert zoo.weights_folder(name) == folder


def test_missing_or_empty_folder_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = POSE.format("mono")
    with pytest.raises(zoo.ZooWeightsMissing) as error:
        zoo.weights_folder(name)
    message = str(error.value)
    assert str(tmp_path / name) in message and "MONODEPTH_ZOO_DIR" in message
    assert "pose_encoder" in message and "mono_640x192" in message
    (tmp_path / name).mkdir()
    with pytest.raises(zoo.ZooWeightsMissing, match="holds no weights"):
        zoo.weights_folder(name)


def test_folder_of_another_architecture_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = DEPTH.format("mono")
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps({"num_layers": 50}))
    with pytest.raises(WeightsFolderError, match="ResNet-50"):
        zoo.load(name)


def test_pose_name_loads_the_original_files(tmp_path, monkeypatch, reference_dir):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = POSE.format("mono")
    (tmp_path / name).symlink_to(reference_dir)
    config, depth, pose = zoo.load(name)
    assert pose is not None and (config.height, config.width) == (192, 640)
    forward = load_npz(reference_dir, "forward.npz")
    disp = depth(tf.constant(nhwc(forward["full/input"])), training=False)[0]
    scaled, _ = disp_to_depth(disp, 0.1, 100.0)
    # the reference is float32-limited: 1e-4 in disparity is ~1e-3 in scaled disparity
    np.testing.assert_allclose(scaled.numpy(), nhwc(forward["full/scaled_disp"]), atol=1e-3)
    axisangle, _ = pose(tf.constant(nhwc(forward["eval/pose_input"])), training=False)
    np.testing.assert_allclose(axisangle.numpy(), forward["eval/axisangle"], atol=1e-4)
