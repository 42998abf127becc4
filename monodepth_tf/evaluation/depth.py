"""The Eigen depth-evaluation protocol, as the original applies it.

Per image: the predicted disparity is resized to the ground truth's size (bilinear), inverted
to depth, restricted to valid ground truth (1e-3 < depth < 80, and the Garg crop on ``eigen``),
scaled (per-image median ratio for mono models, a fixed factor such as 5.4 for stereo), clamped
to [1e-3, 80], and scored with the seven standard metrics, averaged over images.
"""

import io
import pickle
import zipfile
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np

MIN_DEPTH, MAX_DEPTH = 1e-3, 80.0
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)  # rows, then columns
GARG_CROP_SPLITS = ("eigen",)  # the original crops on eigen only (not eigen_benchmark)
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
GT_FILE = "gt_depths.npz"


class EvaluationError(ValueError):
    """Evaluation inputs that are missing or do not fit together (the message names them)."""


def check_test_images(paths: Sequence[Path], split: str, ext: str,
                      data_path: Optional[Union[str, Path]] = None) -> None:
    """Checks that every test image of a split exists.

    Args:
        paths: the image of each test line.
        split: the split's name; ext: the extension the images are read with (``png``, ``jpg``).
        data_path: the ``--data_path`` they were looked for under, named in the message if given.

    Raises:
        EvaluationError: how many of the images are missing and the first of them, how they are
            read, and (for .jpg) that ``--png`` reads .png files.
    """
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        where = "" if data_path is None else f"--data_path {data_path}; "
        hint = "" if ext == "png" else ", add --png for .png files"
        raise EvaluationError(f"{len(missing)} of the {len(paths)} test images of split "
                              f"{split!r} are missing, the first: {missing[0]} "
                              f"({where}images are read as .{ext}{hint})")


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


def evaluate_disparities(disps: Sequence[np.ndarray], gt_depths: Sequence[np.ndarray],
                         garg_crop: bool = False, median_scaling: bool = True,
                         scale_factor: float = 1.0) -> List[ImageResult]:
    """:func:`evaluate_image` of each prediction ``[h, w]`` against its ground truth.

    Raises:
        EvaluationError: the counts differ.
    """
    if len(disps) != len(gt_depths):
        raise EvaluationError(f"{len(disps)} predicted disparities for {len(gt_depths)} "
                              "ground-truth maps")
    return [evaluate_image(np.asarray(gt, np.float32), np.asarray(disp, np.float32), garg_crop,
                           median_scaling, scale_factor)
            for gt, disp in zip(gt_depths, disps)]


_NUMPY_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"),
                  ("numpy.core.multiarray", "_reconstruct"),
                  ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                  ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays (an object array of arrays) and refuses any other global, so a
    doctored ground-truth file cannot run code."""

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise EvaluationError(f"{self.source}: refusing to load {module}.{name}: a ground-truth "
                              "file holds only NumPy arrays")


def load_gt_depths(path: Union[str, Path]) -> List[np.ndarray]:
    """Reads a ``gt_depths.npz`` (key ``data``: an object array of ``[H, W]`` maps, as the
    original's export and ``bin/export_gt_depth`` write, or one ``[N, H, W]`` array).

    Object arrays are unpickled with only NumPy's array constructors allowed.

    Returns:
        the ``[H, W]`` float32 maps.

    Raises:
        EvaluationError: the file is missing, unreadable, or has no ``data`` array of maps.
    """
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"ground truth {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            if "data.npy" not in archive.namelist():
                raise EvaluationError(f"ground truth {path} has no 'data' array (it holds "
                                      f"{', '.join(archive.namelist())})")
            stream = io.BytesIO(archive.read("data.npy"))
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _, _, dtype = read_header(stream)
        if dtype.hasobject:
            data = _ArrayUnpickler(stream, str(path)).load()
        else:
            stream.seek(0)
            data = np.lib.format.read_array(stream, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        if isinstance(error, EvaluationError):
            raise
        raise EvaluationError(f"ground truth {path} is unreadable ({error})") from None
    maps = [np.asarray(depth, dtype=np.float32) for depth in np.asarray(data, dtype=object)] \
        if getattr(data, "dtype", None) == object else list(np.asarray(data, np.float32))
    if not maps or any(depth.ndim != 2 for depth in maps):
        raise EvaluationError(f"ground truth {path}: 'data' must hold [H, W] depth maps")
    return maps


def constant_depth_errors(gt_depths, garg_crop: bool = False) -> dict:
    """The best constant prediction under median scaling (every pixel at the median depth of
    its image): the baseline a network must beat to show it learned anything."""
    results = []
    for gt in gt_depths:
        target = gt[valid_mask(gt, garg_crop)]
        pred = np.full_like(target, np.median(target))
        results.append(ImageResult(compute_errors(target, pred), 1.0))
    return summarize(results, median_scaling=False)
