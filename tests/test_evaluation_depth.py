"""The Eigen evaluation protocol reproduces the original's numbers (reference eval.npz)."""

import numpy as np
import pytest

from monodepth_tf.evaluation.depth import (compute_errors, evaluate_image, format_table, summarize,
                                           valid_mask)
from monodepth_tf.inference.post_process import post_process_disparity
from tests.reference import load_npz


@pytest.fixture(scope="module")
def ref(reference_dir):
    return load_npz(reference_dir, "eval.npz")


def test_metrics_and_median_ratio_match_the_original(ref):
    result = evaluate_image(ref["gt"], ref["pred_disp"], garg_crop=True, median_scaling=True)
    np.testing.assert_allclose(result.ratio, ref["ratio"], rtol=1e-6)
    np.testing.assert_allclose(result.errors, ref["errors"], rtol=1e-6, atol=1e-6)


def test_post_processing_matches_the_original(ref):
    out = post_process_disparity(ref["pp_left"], ref["pp_right"][:, :, ::-1])
    np.testing.assert_allclose(out, ref["pp_out"], atol=1e-6)


def test_hand_worked_metrics():
    gt = np.array([2.0, 4.0, 10.0])
    pred = np.array([2.0, 5.0, 8.0])
    errors = compute_errors(gt, pred)
    np.testing.assert_allclose(errors[0], np.mean([0, 0.25, 0.2]))
    np.testing.assert_allclose(errors[1], np.mean([0, 1 / 4, 4 / 10]))
    np.testing.assert_allclose(errors[2], np.sqrt(np.mean([0, 1, 4])))
    np.testing.assert_allclose(errors[4:], [1 / 3, 1, 1])  # both ratios of 1.25 miss a1


def test_garg_crop_and_depth_range():
    gt = np.full((375, 1242), 10.0)
    gt[0, 0], gt[200, 600] = 90.0, 0.0
    mask = valid_mask(gt, garg_crop=True)
    assert not mask[0, 0] and not mask[200, 600] and mask[300, 600]
    assert mask[153:371, 44:1197].sum() == mask.sum() == (371 - 153) * (1197 - 44) - 1


def test_stereo_scaling_and_table():
    gt = np.full((40, 60), 5.4)
    result = evaluate_image(gt, np.ones((20, 30), np.float32), garg_crop=False,
                            median_scaling=False, scale_factor=5.4)
    np.testing.assert_allclose(result.errors[:4], 0, atol=1e-6)
    summary = summarize([result], median_scaling=False)
    assert "abs_rel" in format_table(summary) and "&   0.000" in format_table(summary)
