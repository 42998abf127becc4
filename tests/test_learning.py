"""Training learns depth from scratch, on every seed tried: the synthetic world, scored on its
exact depth; and the demo (``bin/train`` with no data flags) through the real command.

The learning tests are the short CI version of benchmarks/learn_synthetic.py (same function):
the world is generated at 64x192 (3 drives of 40 frames: 136 training samples, a held-out drive
for the test split with exact per-pixel depth); the networks start from PyTorch's default
initialization with the disparity heads' bias set so that the sigmoid disparity starts at
training.checkpoints.SCRATCH_DISPARITY (from 0.5, one seed in six stayed at a constant or saturated
depth); Adam at 2.5e-4, --deterministic, training seeds 0, 1 and 2.

Baselines on this world (abs_rel, median-scaled against the exact depth of the test drive): the
best constant depth 0.616, the untrained network about the same. The bounds ask for less than
two thirds of the constant's error, which a network that stayed constant or saturated cannot
reach; the measured scores are in the benchmark's table.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.helpers import PROJECT_ROOT

STEPS = 150


def _learn_module():
    path = PROJECT_ROOT / "benchmarks" / "learn_synthetic.py"
    spec = importlib.util.spec_from_file_location("learn_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scratch_disparities_start_at_the_chosen_value_and_only_the_heads_bias_changes():
    import tensorflow as tf

    from monodepth_tf.networks.depth_net import DepthNet
    from monodepth_tf.networks.layers import build
    from monodepth_tf.training.checkpoints import SCRATCH_DISPARITY

    tf.keras.utils.set_random_seed(3)
    net = build(DepthNet(18), 3)
    before = {v.path: v.numpy() for v in net.variables}
    images = tf.random.stateless_uniform([2, 64, 192, 3], seed=[1, 2])
    assert abs(float(np.median(net(images)[0])) - 0.5) < 0.1  # PyTorch's initialization
    net.decoder.start_disparities_at(SCRATCH_DISPARITY)
    heads = {conv.bias.path for conv in net.decoder.dispconvs}
    for v in net.variables:
        if v.path in heads:  # logit(0.03), by hand
            np.testing.assert_allclose(v.numpy(), np.log(0.03 / 0.97), rtol=1e-6)
        else:
            np.testing.assert_array_equal(v.numpy(), before[v.path])
    for disp in net(images):  # every scale starts near 0.03: no saturation, no 0.5
        assert 0.01 < float(np.median(disp)) < 0.09
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="must lie in"):
            net.decoder.start_disparities_at(bad)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mono_stereo_training_beats_the_best_constant_depth_on_every_seed(seed, tmp_path):
    scores = _learn_module().learn(tmp_path, steps=STEPS, height=64, width=192, seed=seed,
                                   learning_rate=2.5e-4, mode="mono_stereo")
    constant = scores["constant depth"]
    untrained = scores["untrained"]
    trained = scores[f"trained {STEPS} steps"]
    # the baselines are what the world makes them: nothing to learn from a constant
    assert 0.5 < constant["abs_rel"] < 0.7
    assert abs(untrained["abs_rel"] - constant["abs_rel"]) < 0.05
    assert trained["abs_rel"] < 0.65 * constant["abs_rel"], (trained, constant)
    assert trained["abs_rel"] < 0.65 * untrained["abs_rel"], (trained, untrained)
    assert trained["a1"] > untrained["a1"] + 0.2, (trained, untrained)


# the environment a user has: TensorFlow's log level not set by the tests' conftest
USER_ENV = {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "MONODEPTH_VERBOSE")}


@pytest.mark.slow
def test_demo_learns_and_shows_what_it_learned(tmp_path):
    from monodepth_tf.inference.colormap import colorize_disparity
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.images import load_rgb
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.inference.predictor import predict_disparity
    from monodepth_tf.weights.folder import load_networks

    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "train"),
                             "--log_dir", str(tmp_path), "--seed", "0"],
                            capture_output=True, text=True, timeout=1200, env=USER_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not re.search(r"oneDNN|cuda|retracing", result.stderr + result.stdout,
                         re.IGNORECASE), result.stderr[-3000:]
    run = tmp_path / "mdp"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["epoch"] == -1 and records[0]["step"] == 0
    untrained = records[0]["abs_rel"]
    best = min(r["abs_rel"] for r in records[1:])
    assert best <= 0.5 * untrained, records
    # the summary says the same and names the weights and the command to try them
    weights = run / "models" / "weights_best"
    assert f"untrained {untrained:.3f} -> best {best:.3f}" in result.stdout
    assert f"bin/predict --load_weights_folder {weights} --image_path " in result.stdout
    # the picture: test frame 0, the best weights' disparity of it, its exact depth
    world = tmp_path / "synthetic_kitti"
    entry = read_split(world / "splits", "synthetic", "test")[0]
    frame = load_rgb(KittiRawLayout(world, "png").image_path(entry.folder, entry.frame_index,
                                                             entry.side))
    gt = np.load(world / "splits" / "synthetic" / "gt_depths.npz")["data"][0]
    picture = cv2.cvtColor(cv2.imread(str(run / "demo.png")), cv2.COLOR_BGR2RGB)
    height, width = frame.shape[:2]
    assert picture.shape == (height, 3 * width, 3)
    image_panel, disp_panel, depth_panel = np.split(picture, 3, axis=1)
    np.testing.assert_array_equal(image_panel, frame)
    np.testing.assert_array_equal(depth_panel, colorize_disparity(1.0 / gt.astype(np.float64)))
    config, depth_net, _ = load_networks(weights, with_pose=False)
    assert (config.height, config.width) == (height, width)  # the world is at the feed size
    disp = predict_disparity(depth_net, config, [frame])[0]
    # (another process: its float32 sums may round differently at a colour step or two)
    same = np.all(disp_panel == colorize_disparity(disp), axis=-1)
    assert same.mean() > 0.99
    # near things are bright in both: the disparity ranks pixels as the exact depth does
    near = gt < np.median(gt)
    assert disp[near].mean() > 1.5 * disp[~near].mean()
