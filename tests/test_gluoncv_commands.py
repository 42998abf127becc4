"""The GluonCV tutorial's three training commands, as written, with bin/train."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from monodepth_tf.cli.train import join_list_arguments
from monodepth_tf.synthetic import make_synthetic_kitti
from monodepth_tf.training import options as options_lib
from tests.helpers import PROJECT_ROOT, imagenet_file

# The tutorial's commands after "python train.py".
TUTORIAL = {
    "mono_stereo": "--model_zoo monodepth2_resnet18_kitti_mono_stereo_640x192 --model_zoo_pose "
                   "monodepth2_resnet18_posenet_kitti_mono_stereo_640x192 --pretrained_base "
                   "--frame_ids 0 -1 1 --use_stereo --log_dir ./tmp/mono_stereo/ --png --gpu 0 "
                   "--batch_size 8",
    "mono": "--model_zoo monodepth2_resnet18_kitti_mono_640x192 --model_zoo_pose "
            "monodepth2_resnet18_posenet_kitti_mono_640x192 --pretrained_base --log_dir "
            "./tmp/mono/ --png --gpu 0 --batch_size 12",
    "stereo": "--model_zoo monodepth2_resnet18_kitti_stereo_640x192 --pretrained_base --split "
              "eigen_full --frame_ids 0 --use_stereo --log_dir ./tmp/stereo/ --png --gpu 0 "
              "--batch_size 12",
}


def parse(argv):
    values = flags.FlagValues()
    options_lib.define_training_flags(values)
    values(["train"] + join_list_arguments(argv))
    return options_lib.from_flags(values)


def test_list_flags_take_space_separated_values():
    assert join_list_arguments(["--frame_ids", "0", "-1", "1", "--png", "--scales", "0"]) == \
        ["--frame_ids=0,-1,1", "--png", "--scales=0"]
    assert join_list_arguments(["--frame_ids=0,-1", "--models_to_load", "encoder", "depth"]) \
        == ["--frame_ids=0,-1", "--models_to_load=encoder,depth"]


@pytest.mark.parametrize("mode", list(TUTORIAL))
def test_tutorial_commands_mean_what_gluoncv_trains(mode):
    options = parse(TUTORIAL[mode].split())
    expected_frames = (0,) if mode == "stereo" else (0, -1, 1)
    assert options.frame_ids == expected_frames
    assert options.use_stereo == (mode != "mono")
    assert options.all_frame_ids == expected_frames + (("s",) if mode != "mono" else ())
    assert options.split == ("eigen_full" if mode == "stereo" else "eigen_zhou")
    assert (options.num_layers, options.height, options.width) == (18, 192, 640)
    assert options.weights_init == "pretrained" and options.png and options.gpu == "0"
    assert options.batch_size == (8 if mode == "mono_stereo" else 12)
    assert options.pose_model_type == "separate_resnet"
    assert options.log_dir == f"./tmp/{mode}/"


@pytest.mark.parametrize("argv,message", [
    ("--model_zoo monodepth2_resnet18_kitti_mono_640x192 --mode stereo",
     "--mode=stereo contradicts --model_zoo=monodepth2_resnet18_kitti_mono_640x192"),
    ("--model_zoo monodepth2_resnet18_kitti_mono_640x192 --model_zoo_pose "
     "monodepth2_resnet18_posenet_kitti_mono_stereo_640x192", "does not go with"),
    ("--model_zoo monodepth2_resnet18_posenet_kitti_mono_640x192", "is a pose network"),
    ("--model_zoo monodepth2_resnet50_kitti_mono_640x192", "--model_zoo: unknown model-zoo name"),
    ("--model_zoo_pose monodepth2_resnet18_posenet_kitti_mono_640x192", "needs --model_zoo"),
    ("--model_zoo monodepth2_resnet18_kitti_stereo_640x192 --nouse_stereo",
     "--model_zoo=monodepth2_resnet18_kitti_stereo_640x192 needs stereo frames"),
    ("--pretrained_base --weights_init scratch", "not both"),
    ("--gpu 0,x", "--gpu=0,x must be GPU indices"),
])
def test_contradictory_gluoncv_flags_are_rejected(argv, message):
    with pytest.raises(options_lib.OptionsError, match=message):
        parse(argv.split())


def test_explicit_flags_win_over_the_zoo_preset():
    options = parse(TUTORIAL["mono"].split() + ["--height", "64", "--width", "192",
                                                "--nopretrained_base"])
    assert (options.height, options.width, options.weights_init) == (64, 192, "scratch")


@pytest.mark.slow  # a whole bin/train run (world, ImageNet load, step, validation)
def test_mono_stereo_command_trains_as_written_from_gluoncvs_data_folder(tmp_path,
                                                                         reference_dir):
    """HOME holds a synthetic world where GluonCV keeps KITTI, its lists under the standard
    split names, and the 'ImageNet' ResNet-18 in the Keras cache: the tutorial command runs
    unchanged (plus a smaller size and one step, for time), starts both encoders from that
    file, and falls back to the CPU for --gpu 0."""
    home = tmp_path / "home"
    world = home / ".mxnet" / "datasets" / "kitti" / "kitti_data"
    make_synthetic_kitti(world, seed=5, num_drives=1, frames_per_drive=12, height=64, width=192)
    split_dir = tmp_path / "splits"
    shutil.copytree(world / "splits" / "synthetic", split_dir / "eigen_zhou")
    tensors = imagenet_file(reference_dir, tmp_path / "resnet18-5c106cde.pth")
    (home / ".keras" / "models").mkdir(parents=True)
    shutil.move(tmp_path / "resnet18-5c106cde.pth", home / ".keras" / "models")
    env = dict(os.environ, HOME=str(home), MONODEPTH_SPLIT_DIR=str(split_dir),
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("KERAS_HOME", None)
    command = [sys.executable, str(PROJECT_ROOT / "bin" / "train"), *TUTORIAL["mono_stereo"]
               .split(), "--height", "64", "--width", "192", "--max_steps", "1",
               "--batch_size", "2", "--learning_rate", "1e-30"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "tmp" / "mono_stereo" / "mdp"
    log = (run / "train.log").read_text()
    assert "--gpu=0: no GPU is visible; training on the CPU" in log
    assert "encoders initialized from ImageNet weights" in log
    saved = json.loads((run / "opt.json").read_text())
    assert saved["data_path"] == str(world) and saved["frame_ids"] == [0, -1, 1]
    assert saved["use_stereo"] and saved["model_zoo"].endswith("mono_stereo_640x192")
    # learning rate 1e-30 (0 is refused): far below an ulp of every weight, so the encoders
    # still hold the file's weights after the step
    from monodepth_tf.weights.folder import load_networks
    _, depth, pose = load_networks(run / "models" / "weights_final")
    conv1 = np.transpose(tensors["conv1.weight"], (2, 3, 1, 0))  # OIHW -> HWIO
    kernels = [v.numpy() for v in depth.encoder.trainable_variables if v.shape == conv1.shape]
    np.testing.assert_array_equal(kernels[0], conv1)
    pose_kernels = [v.numpy() for v in pose.encoder.trainable_variables
                    if v.shape == (7, 7, 6, 64)]
    np.testing.assert_allclose(pose_kernels[0], np.concatenate([conv1] * 2, axis=2) / 2,
                               rtol=1e-6)


def test_gluoncv_command_without_its_data_folder_names_it(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "train"),
                             *TUTORIAL["mono"].split()], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path}/.mxnet/datasets/kitti/kitti_data, which does not exist" in result.stderr
