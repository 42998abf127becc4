"""Training learns depth: mono_stereo from scratch on the synthetic world, scored on its exact
depth.

The short CI version of benchmarks/learn_synthetic.py (same function, fewer steps). The world is
generated at 64x192 (3 drives of 40 frames: 136 training samples, a held-out drive for the test
split with exact per-pixel depth); the networks start from PyTorch's default initialization and
train with Adam at 2.5e-4, --deterministic, training seed 1.

Baselines on this world (abs_rel, median-scaled against the exact depth of the test drive): the
best constant depth 0.616, the untrained network 0.617. Trained for 150 steps, five of six seeds
reached 0.19-0.26 and one stayed at the constant (see the benchmark's table: mono_stereo from
scratch is fragile early on); seed 1, as tested here (--deterministic, --exact_loss), 0.204
(a1 0.750; 0.214 before the exact rotation angle, 0.196 before the loss's hand-written
gradients: each changed float32 roundings). With
--deterministic a seed's run is the same on every run on this machine, so the test does not
depend on luck; on other hardware the kernels round differently and it is one draw from that
distribution. The bounds ask for less
than two thirds of the constant's error, which a network that stayed constant or saturated
cannot reach.
"""

import importlib.util

import pytest

from tests.helpers import PROJECT_ROOT

STEPS = 150


def _learn_module():
    path = PROJECT_ROOT / "benchmarks" / "learn_synthetic.py"
    spec = importlib.util.spec_from_file_location("learn_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    learn = _learn_module().learn
    # the exact loss (--exact_loss): the path the scores above were measured on
    return learn(tmp_path_factory.mktemp("learn"), steps=STEPS, height=64, width=192, seed=1,
                 learning_rate=2.5e-4, mode="mono_stereo", exact_loss=True)


@pytest.mark.slow  # 150 training steps: several minutes on 2 cores
def test_mono_stereo_training_beats_the_best_constant_depth_and_the_untrained_network(scores):
    constant = scores["constant depth"]
    untrained = scores["untrained"]
    trained = scores[f"trained {STEPS} steps"]
    # the baselines are what the world makes them: nothing to learn from a constant
    assert 0.5 < constant["abs_rel"] < 0.7
    assert abs(untrained["abs_rel"] - constant["abs_rel"]) < 0.05
    assert trained["abs_rel"] < 0.65 * constant["abs_rel"], (trained, constant)
    assert trained["abs_rel"] < 0.65 * untrained["abs_rel"], (trained, untrained)
    assert trained["a1"] > untrained["a1"] + 0.2, (trained, untrained)
