"""Training learns depth from scratch, on every seed tried: the synthetic world, scored on its
exact depth. The demo (``bin/train`` with no data flags) is run as the README writes it, and
checked to learn, by tests/test_readme_commands.py.

The learning tests are the short CI version of benchmarks/learn_synthetic.py (same function):
the world is generated at 64x192 (3 drives of 40 frames: 136 training samples, a held-out drive
for the test split with exact per-pixel depth); the networks start from PyTorch's default
initialization with the disparity heads' bias set so that the sigmoid disparity starts at
training.checkpoints.SCRATCH_DISPARITY (from 0.5, one seed in six stayed at a constant or saturated
depth); Adam at 2.5e-4, --deterministic, training seeds 0, 1 and 2, 80 steps (abs_rel 0.208,
0.215 and 0.253 on a Zen 3; 150 steps gave about the same: 0.229, 0.200 and 0.224; 50 steps
0.358, 0.270 and 0.307, too close to the bound).

Baselines on this world (abs_rel, median-scaled against the exact depth of the test drive): the
best constant depth 0.616, the untrained network about the same. The bounds ask for less than
two thirds of the constant's error, which a network that stayed constant or saturated cannot
reach; the measured scores are in the benchmark's table.
"""

import importlib.util

import numpy as np
import pytest

from tests.helpers import PROJECT_ROOT

STEPS = 80


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


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The world every seed learns from (the benchmark's, at 64x192)."""
    return _learn_module().make_world(tmp_path_factory.mktemp("learn"), height=64, width=192)


@pytest.mark.slow(seconds=120)  # beside the other worker: 181-222 s (Zen 3), 90-94 s (Xeon)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mono_stereo_training_beats_the_best_constant_depth_on_every_seed(seed, world, tmp_path):
    scores = _learn_module().learn(world, tmp_path, steps=STEPS, seed=seed,
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
