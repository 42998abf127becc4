"""The loss reproduces the original's image synthesis and loss (reference losses.npz).

These tests run the exact path (``LossOptions(exact=True)``, ``bin/train --exact_loss``): depths,
sampling grids, warped images, auto-masks and the SSIM map equal the original's bit for bit; the
losses (means, summed in another order than PyTorch's) are within 2e-7 relative (measured:
1.5e-7, about an ulp; the smoothness term 6e-8).
tests/test_fast_paths.py bounds the float32 path that training uses by default.
"""

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.losses.options import LossOptions
from monodepth_tf.losses.smoothness import edge_aware_smoothness
from monodepth_tf.losses.ssim import ssim_dissimilarity
from monodepth_tf.losses.total import compute_losses
from monodepth_tf.training.step import keep_graph_arithmetic
from tests.reference import (OPTION_SETS, SCALES, load_npz, make_batch, make_poses, nhwc,
                             run)


@pytest.fixture(scope="module")
def fixture(reference_dir):
    return load_npz(reference_dir, "losses.npz")


LOSS_RTOL = 2e-7


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_total_and_per_scale_losses_match_the_original(fixture, name):
    out = run(fixture, name)
    np.testing.assert_allclose(out.total.numpy(), fixture[f"{name}/loss"], rtol=LOSS_RTOL)
    for s in SCALES:
        np.testing.assert_allclose(out.per_scale[s].numpy(), fixture[f"{name}/loss/{s}"],
                                   rtol=LOSS_RTOL, err_msg=f"scale {s}")


@pytest.mark.parametrize("name", ["mono_stereo", "mono_v1_multiscale"])
@pytest.mark.parametrize("scale", [0, 3])
def test_depth_grids_warped_images_and_automask_equal_the_original_bit_for_bit(fixture, name,
                                                                               scale):
    out = run(fixture, name)
    np.testing.assert_array_equal(out.depth[scale].numpy(),
                                  nhwc(fixture[f"{name}/depth/{scale}"]))
    keys = ("-1", "1", "s") if name == "mono_stereo" else ("-1", "1")
    assert sorted(out.sample) == sorted(keys)
    for key in keys:
        np.testing.assert_array_equal(out.sample[key][scale].numpy(),
                                      fixture[f"{name}/sample/{key}/{scale}"], err_msg=key)
        np.testing.assert_array_equal(out.warped[key][scale].numpy(),
                                      nhwc(fixture[f"{name}/warped/{key}/{scale}"]), err_msg=key)
    selection = out.identity_selection[scale].numpy()
    expected = fixture[f"{name}/identity_selection/{scale}"]
    assert selection.shape == expected.shape
    np.testing.assert_array_equal(selection, expected)
    assert 0.05 < expected.mean() < 0.95  # both decisions occur


@pytest.mark.parametrize("exact", [True, False])
def test_the_training_graph_computes_what_eager_execution_does_bit_for_bit(fixture, exact):
    # As the training step runs it: traced, with the Trainer's grappler settings. Grappler's
    # default rewrites (1 / x as an approximate reciprocal, divisions by constants as
    # multiplications, regrouped sums) left 6% of this grid an ulp away from eager's.
    options = LossOptions(scales=SCALES, automask_noise=0.0, exact=exact,
                          **OPTION_SETS["mono_stereo"])
    disps = [tf.constant(nhwc(fixture[f"net/disp/{s}"])) for s in SCALES]
    args = (make_batch(fixture), disps, make_poses(fixture))
    eager = compute_losses(*args, options)
    previous = tf.config.optimizer.get_experimental_options()
    keep_graph_arithmetic()
    try:
        graph = tf.function(lambda *a: compute_losses(*a, options))(*args)
    finally:
        tf.config.optimizer.set_experimental_options(previous)
    for field in ("per_scale", "depth", "identity_selection"):
        for e, g in zip(getattr(eager, field), getattr(graph, field)):
            np.testing.assert_array_equal(g.numpy(), e.numpy(), err_msg=field)
    for field in ("sample", "warped"):
        for key, per_scale in getattr(eager, field).items():
            for e, g in zip(per_scale, getattr(graph, field)[key]):
                np.testing.assert_array_equal(g.numpy(), e.numpy(), err_msg=f"{field} {key}")


def test_ssim_map_equals_the_original_bit_for_bit(fixture):
    out = ssim_dissimilarity(tf.constant(nhwc(fixture["ssim/x"])),
                             tf.constant(nhwc(fixture["ssim/y"])))
    np.testing.assert_array_equal(out.numpy(), nhwc(fixture["ssim/out"]))


def test_smoothness_matches_the_original(fixture):
    out = edge_aware_smoothness(tf.constant(nhwc(fixture["net/disp/0"])),
                                tf.constant(nhwc(fixture["inputs/color/0/0"])))
    np.testing.assert_allclose(out.numpy(), fixture["smooth/out"], rtol=LOSS_RTOL)


def test_predictive_mask_requires_disabled_automasking():
    with pytest.raises(ValueError, match="disable_automasking"):
        LossOptions(predictive_mask=True)
