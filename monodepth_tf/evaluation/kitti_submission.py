"""The KITTI depth-prediction benchmark: its test images, its submission files, and the map from
the Eigen test split to ``eigen_benchmark``.

The benchmark's test ground truth is not public: predictions are submitted to KITTI's server.
Test images (the ``benchmark`` split's ``test_files.txt`` lines ``image <index>``) are read
where KITTI's ``data_depth_selection.zip`` puts them::

    depth_selection/test_depth_prediction_anonymous/image/0000000000.png   (500 images, 1216x352)

``--data_path`` may name ``test_depth_prediction_anonymous/`` (which holds ``image/``), its
parent ``depth_selection/``, or the folder holding ``depth_selection/``.

A submission holds, for the i-th test image, ``{i:010d}.png``: the depth (metres) of the
predicted disparity resized bilinearly to 1216x352, ``depth = 5.4 / disparity`` (the stereo
scale factor, as the original writes it whatever the model), clipped to [0, 80], stored as a
16-bit grey PNG of ``depth * 256`` truncated to an integer (KITTI's devkit format).
"""

import dataclasses
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from monodepth_tf.data.layout import STEREO_SCALE_FACTOR
from monodepth_tf.evaluation.depth import EvaluationError, check_test_images

BENCHMARK_SPLIT = "benchmark"
SUBMISSION_HEIGHT, SUBMISSION_WIDTH = 352, 1216
SUBMISSION_MAX_DEPTH = 80.0
DEPTH_PNG_SCALE = 256.0
TEST_DIR = "test_depth_prediction_anonymous"
DEPTH_SELECTION_DIR = "depth_selection"
PREDICTIONS_DIR = "benchmark_predictions"  # in the weights folder, unless --eval_out_dir
ZIP_NAME = "submission.zip"
EIGEN_TO_BENCHMARK_FILE = "eigen_to_benchmark_ids.npy"  # in <split_dir>/benchmark/


def image_dir_candidates(data_path: Path) -> List[Path]:
    """Where the folder holding ``image/`` may be, for each accepted ``--data_path``."""
    return [data_path, data_path / TEST_DIR, data_path / DEPTH_SELECTION_DIR / TEST_DIR]


def benchmark_image_paths(data_path, entries: Sequence, ext: str = "png") -> List[Path]:
    """The image file of every test line (``image <index>`` -> ``image/<index:010d>.<ext>``),
    each checked to exist.

    Args:
        data_path: ``test_depth_prediction_anonymous/``, ``depth_selection/`` or their parent.
        entries: the split's test lines (:class:`monodepth_tf.data.splits.SplitEntry`).
        ext: ``png`` (KITTI's) or ``jpg``.

    Raises:
        EvaluationError: no candidate folder holds the lines' folder (all are named), or images
            are missing (the first is named).
    """
    data_path = Path(data_path).expanduser()
    folder = entries[0].folder
    roots = [root for root in image_dir_candidates(data_path) if (root / folder).is_dir()]
    if not roots:
        tried = ", ".join(str(root / folder) for root in image_dir_candidates(data_path))
        raise EvaluationError(
            f"--data_path {data_path} holds no KITTI benchmark test images: none of {tried} "
            f"exists (KITTI's data_depth_selection.zip unpacks to {DEPTH_SELECTION_DIR}/{TEST_DIR}"
            f"/image/0000000000.png ...; give --data_path {TEST_DIR}/ or a folder above it)")
    paths = [roots[0] / entry.folder / f"{entry.frame_index:010d}.{ext}" for entry in entries]
    check_test_images(paths, BENCHMARK_SPLIT, ext)
    return paths


def submission_depth(disparity: np.ndarray) -> np.ndarray:
    """One image's submission map.

    Args:
        disparity: the predicted scaled disparity ``[h, w]`` (any size).

    Returns:
        ``[352, 1216]`` uint16: ``trunc(clip(5.4 / resized disparity, 0, 80) * 256)``.
    """
    disparity = np.asarray(disparity, np.float32)
    if disparity.ndim != 2:
        raise ValueError(f"expected a disparity [h, w], got {list(disparity.shape)}")
    resized = cv2.resize(disparity, (SUBMISSION_WIDTH, SUBMISSION_HEIGHT),
                         interpolation=cv2.INTER_LINEAR)
    with np.errstate(divide="ignore"):
        depth = STEREO_SCALE_FACTOR / resized.astype(np.float64)  # 0 -> inf -> 80
    depth = np.clip(depth, 0.0, SUBMISSION_MAX_DEPTH)
    return (depth * DEPTH_PNG_SCALE).astype(np.uint16)


@dataclasses.dataclass
class Submission:
    """What :func:`write_submission` wrote.

    Attributes:
        folder: the folder of PNGs.
        files: the PNGs, in test-list order.
        zip_path: the archive of the PNGs (at its root), ready to upload; None if not made.
    """

    folder: Path
    files: List[Path]
    zip_path: Optional[Path]


def write_submission(disparities: np.ndarray, folder, make_zip: bool = True) -> Submission:
    """Writes ``{i:010d}.png`` for each disparity (see :func:`submission_depth`).

    Args:
        disparities: ``[N, h, w]`` predicted scaled disparities, in test-list order.
        folder: created if needed; existing PNGs of the same names are replaced.
        make_zip: also write ``submission.zip`` (stored, not recompressed: PNGs are
            compressed already) holding the PNGs at its root.

    Raises:
        ValueError: a disparity that is not finite (its index is named); OSError: a file that
            cannot be written.
    """
    disparities = np.asarray(disparities)
    if disparities.ndim != 3:
        raise ValueError(f"expected disparities [N, h, w], got {list(disparities.shape)}")
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, disparity in enumerate(disparities):
        if not np.isfinite(disparity).all():
            raise ValueError(f"disparity {index} holds NaN or infinite values")
        path = folder / f"{index:010d}.png"
        if not cv2.imwrite(str(path), submission_depth(disparity)):
            raise OSError(f"cannot write {path}")
        files.append(path)
    zip_path = None
    if make_zip:
        zip_path = folder / ZIP_NAME
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
            for path in files:
                archive.write(path, arcname=path.name)
    return Submission(folder, files, zip_path)


def read_eigen_to_benchmark_ids(split_dir) -> np.ndarray:
    """``<split_dir>/benchmark/eigen_to_benchmark_ids.npy``: for each ``eigen_benchmark`` test
    line, the index of the same frame in the ``eigen`` test list (652 of its 697 frames have
    improved ground truth).

    Returns:
        ``[M]`` int64.

    Raises:
        EvaluationError: the file is missing, unreadable, or not a 1-D integer array of
            non-negative indices.
    """
    path = Path(split_dir).expanduser() / BENCHMARK_SPLIT / EIGEN_TO_BENCHMARK_FILE
    if not path.is_file():
        raise EvaluationError(f"--eval_eigen_to_benchmark needs {path}, which does not exist (it "
                              "comes with the original's split lists, splits/benchmark/)")
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise EvaluationError(f"{path} is not a readable .npy array ({error})") from None
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (ids < 0).any():
        raise EvaluationError(f"{path} holds {ids.dtype} {list(ids.shape)}, expected 1-D "
                              "non-negative integer indices")
    return ids.astype(np.int64)


def eigen_to_benchmark(disparities: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The predictions of the ``eigen`` test list, reordered to the ``eigen_benchmark`` list:
    ``out[i] = disparities[ids[i]]``, ``[len(ids), h, w]``.

    Raises:
        EvaluationError: an index beyond the predictions (they are not of the eigen list).
    """
    if len(ids) and ids.max() >= len(disparities):
        raise EvaluationError(f"--eval_eigen_to_benchmark: the indices reach {ids.max()}, but "
                              f"there are {len(disparities)} predictions; they must be those "
                              "of the eigen test list (697 images)")
    return disparities[ids]
