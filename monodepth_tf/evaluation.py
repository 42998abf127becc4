"""The Eigen depth-evaluation protocol, as the original applies it.

Per image: the predicted disparity is resized to the ground truth's size (bilinear), inverted
to depth, restricted to valid ground truth (1e-3 < depth < 80, and the Garg crop on ``eigen``),
scaled (per-image median ratio for mono models, a fixed factor such as 5.4 for stereo), clamped
to [1e-3, 80], and scored with the seven standard metrics, averaged over images.
"""

from typing import NamedTuple, Optional

import cv2
import numpy as np

MIN_DEPTH, MAX_DEPTH = 1e-3, 80.0
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)  # rows, then columns
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
STEREO_SCALE_FACTOR = 5.4


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The seven metrics of matching depth samples ``[N]``: abs_rel, sq_rel, rmse, rmse_log,
    a1, a2, a3 (fraction with max(gt/pred, pred/gt) below 1.25, 1.25^2, 1.25^3)."""
    thresh = np.maximum(gt / pred, pred / gt)
    a1, a2, a3 = ((thresh < 1.25 ** k).mean() for k in (1, 2, 3))
    rmse = np.sqrt(((gt - pred) ** 2).mean())
    rmse_log = np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean())
    abs_rel = np.mean(np.abs(gt - pred) / gt)
    sq_rel = np.mean(((gt - pred) ** 2) / gt)
    return np.array([abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3], dtype=np.float64)


def valid_mask(gt: np.ndarray, garg_crop: bool) -> np.ndarray:
    """Pixels with ground truth in (1e-3, 80), inside the Garg crop when asked."""
    mask = (gt > MIN_DEPTH) & (gt < MAX_DEPTH)
    if garg_crop:
        h, w = gt.shape
        crop = np.array([GARG_CROP[0] * h, GARG_CROP[1] * h, GARG_CROP[2] * w,
                         GARG_CROP[3] * w]).astype(np.int32)
        inside = np.zeros_like(mask)
        inside[crop[0]:crop[1], crop[2]:crop[3]] = True
        mask &= inside
    return mask


class ImageResult(NamedTuple):
    errors: np.ndarray  # [7]
    ratio: float        # the median-scaling ratio (1 when not median scaling)


def evaluate_image(gt: np.ndarray, pred_disp: np.ndarray, garg_crop: bool = True,
                   median_scaling: bool = True, scale_factor: float = 1.0) -> ImageResult:
    """One image of the protocol.

    Args:
        gt: ``[H, W]`` ground-truth depth (0 where unknown).
        pred_disp: ``[h, w]`` predicted (scaled) disparity at the network's resolution.
        garg_crop: apply the Garg crop (the ``eigen`` split).
        median_scaling: scale by median(gt) / median(pred) (mono models).
        scale_factor: fixed factor applied first (``pred_depth_scale_factor``; 5.4 for stereo).
    """
    height, width = gt.shape
    pred_depth = 1.0 / cv2.resize(pred_disp, (width, height))
    mask = valid_mask(gt, garg_crop)
    pred, target = pred_depth[mask] * scale_factor, gt[mask]
    ratio = 1.0
    if median_scaling:
        ratio = np.median(target) / np.median(pred)
        pred = pred * ratio
    pred = np.clip(pred, MIN_DEPTH, MAX_DEPTH)
    return ImageResult(compute_errors(target, pred), float(ratio))


def post_process_disparity(disp: np.ndarray, flipped_back: np.ndarray) -> np.ndarray:
    """Blends the disparity of an image ``[B, h, w]`` with that of its mirror image (already
    flipped back): the mirror's near the left border, the plain one near the right border,
    their mean elsewhere, with linear ramps over the outer 5% of the width."""
    _, h, w = disp.shape
    mean = 0.5 * (disp + flipped_back)
    x, _ = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    left_ramp = (1.0 - np.clip(20 * (x - 0.05), 0, 1))[None]
    right_ramp = left_ramp[:, :, ::-1]
    return right_ramp * disp + left_ramp * flipped_back + (1.0 - left_ramp - right_ramp) * mean


def summarize(results, median_scaling: bool) -> dict:
    """Mean metrics over images, plus the scaling ratios' median and relative std."""
    errors = np.array([r.errors for r in results]).mean(0)
    summary = dict(zip(METRIC_NAMES, errors.tolist()))
    if median_scaling:
        ratios = np.array([r.ratio for r in results])
        summary["ratio_median"] = float(np.median(ratios))
        summary["ratio_std"] = float(np.std(ratios / np.median(ratios)))
    return summary


def format_table(summary: dict, title: Optional[str] = None) -> str:
    """The original's table: metric names, then values, ``&``-separated."""
    head = "  " + ("{:>8} | " * 7).format(*METRIC_NAMES)
    row = ("&{: 8.3f}  " * 7).format(*[summary[m] for m in METRIC_NAMES]) + "\\\\"
    return "\n".join(([title] if title else []) + [head, row])


def evaluate_split(depth_net, config, layout, entries, gt_depths, garg_crop: bool = False,
                   median_scaling: bool = True, scale_factor: float = 1.0,
                   post_process: bool = False) -> dict:
    """Predicts every test image of a split and scores it against its ground truth.

    Args:
        depth_net, config: a loaded depth network and its config.
        layout: a ``KittiRawLayout``; entries: the split's test entries.
        gt_depths: the ground-truth maps, in the entries' order.
        garg_crop, median_scaling, scale_factor, post_process: the protocol's switches.

    Returns:
        :func:`summarize` of the per-image results.
    """
    from monodepth_tf.data.kitti import load_rgb
    from monodepth_tf.predict import predict_disparity

    images = (load_rgb(layout.image_path(e.folder, e.frame_index, e.side)) for e in entries)
    disps = predict_disparity(depth_net, config, images, post_process=post_process)
    results = [evaluate_image(gt, disp, garg_crop, median_scaling, scale_factor)
               for gt, disp in zip(gt_depths, disps)]
    return summarize(results, median_scaling)


def constant_depth_errors(gt_depths, garg_crop: bool = False) -> dict:
    """The best constant prediction under median scaling (every pixel at the median depth of
    its image): the baseline a network must beat to show it learned anything."""
    results = []
    for gt in gt_depths:
        target = gt[valid_mask(gt, garg_crop)]
        pred = np.full_like(target, np.median(target))
        results.append(ImageResult(compute_errors(target, pred), 1.0))
    return summarize(results, median_scaling=False)
