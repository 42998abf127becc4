"""Ground-truth depth: KITTI LiDAR scans projected into a camera, as the original computes them.

The recipe (each step checked against ``shared/kitti/reference/gt_depth_*.npz`` and
``gt_depth_velodyne_*.npz``, which it reproduces bit for bit for cameras 2 and 3):

1. Read the scan as float32 ``(x forward, y left, z up, reflectance)``; keep points with
   ``x >= 0`` (an approximation of "in front of the camera"); replace reflectance by 1.
2. In float64, ``P = P_rect_0cam @ R_rect_00 (4x4) @ [R | T; 0 0 0 1]`` and
   ``(u w, v w, w) = P @ (x, y, z, 1)`` (float32 instead moves ~175 points by a pixel).
3. Pixel column ``round(u) - 1``, row ``round(v) - 1`` with NumPy's round-half-to-even (KITTI's
   devkit counts pixels from 1); keep ``0 <= col < W``, ``0 <= row < H``, ``(H, W)`` from
   ``S_rect_02``.
4. Depth: one of two values, as in the original (its ``generate_depth_map``'s ``vel_depth``):
   - ``velodyne_depth=True``: the point's LiDAR forward coordinate ``x``. The original's
     ``export_gt_depth.py`` writes this for the Eigen split, so its published Eigen numbers
     are scored against it; :func:`gt_depths` and ``bin/export_gt_depth`` use it by default.
     It exceeds ``w`` by 0.285 m (median) on the reference frame, mostly the offset
     between the LiDAR and the camera.
   - ``velodyne_depth=False``: ``w``, the depth along the rectified camera's optical axis,
     which the original's training dataset loads for in-training validation
     (``data.pipeline.lidar_ground_truth``); :func:`lidar_depth_map`'s default.
5. Points landing on one pixel: the last one written, then the original's duplicate rule --
   points are grouped by the key ``row * (W - 1) + col - 1`` (so the last column of a row and
   the first of the next row share a key), and the pixel of each group's first point gets the
   group's smallest depth. Where a pixel's points form their own group, as almost always, this
   keeps the nearest point.
6. Negative depths become 0; 0 means "no ground truth".
"""

from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from monodepth_tf.data.calibration import CAM_TO_CAM, VELO_TO_CAM, velo_to_camera
from monodepth_tf.data.check import raise_on_problems
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.frames import SIDE_CAMERA
from monodepth_tf.data.images import load_depth_png
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.splits import SplitEntry, read_split

PathLike = Union[str, Path]
GT_SPLITS = ("eigen", "eigen_benchmark")
# Splits whose test lines are not raw-layout frames (any other split's ground truth is the
# LiDAR projection, as for eigen).
NO_GT_SPLITS = ("benchmark", "odom")


def load_velodyne_points(path: PathLike) -> np.ndarray:
    """Reads a velodyne ``.bin`` scan.

    Returns:
        ``[N, 4]`` float32: x forward, y left, z up (metres), reflectance.

    Raises:
        DataError: the file is missing, unreadable, empty, or not a whole number of points.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.float32)
    except FileNotFoundError:
        raise DataError(f"{path}: LiDAR scan missing") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: LiDAR scan unreadable ({error})") from None
    if raw.size == 0 or raw.size % 4:
        raise DataError(f"{path}: LiDAR scan truncated ({raw.size * 4} bytes is not a positive "
                        "multiple of 16, one point being 4 float32)")
    return raw.reshape(-1, 4)


def project_points(points: np.ndarray, projection: np.ndarray,
                   velodyne_depth: bool = False) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projects the forward half (``x >= 0``) of a scan to pixel indices (steps 1-4 above,
    without the image bounds).

    Args:
        points: ``[N, 4]`` velodyne points (x, y, z, anything).
        projection: ``[3, 4]`` velodyne -> pixels (``velo_to_camera``).
        velodyne_depth: depth = velodyne x instead of the camera depth w.

    Returns:
        ``(rows [M], cols [M], depth [M])`` float64; rows and cols are whole numbers.
    """
    forward = points[points[:, 0] >= 0]
    homogeneous = np.ones((len(forward), 4), dtype=np.float64)
    homogeneous[:, :3] = forward[:, :3]
    image = (projection @ homogeneous.T).T
    cols = np.round(image[:, 0] / image[:, 2]) - 1
    rows = np.round(image[:, 1] / image[:, 2]) - 1
    depth = homogeneous[:, 0] if velodyne_depth else image[:, 2]
    return rows, cols, depth


def _last_per_pixel(pixel: np.ndarray) -> np.ndarray:
    """Indices of the last occurrence of each distinct value of ``pixel`` ``[M]``."""
    _, from_end = np.unique(pixel[::-1], return_index=True)
    return len(pixel) - 1 - from_end


def scatter_nearest(rows: np.ndarray, cols: np.ndarray, depth: np.ndarray,
                    size: Tuple[int, int]) -> np.ndarray:
    """A sparse depth map from projected points (steps 3 bounds, 5 and 6 above).

    Args:
        rows, cols: ``[M]`` pixel indices (whole numbers, possibly outside the image).
        depth: ``[M]`` the points' depths.
        size: ``(height, width)``.

    Returns:
        ``[height, width]`` float64, 0 where no point lands.
    """
    height, width = size
    inside = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    rows, cols, depth = rows[inside].astype(np.int64), cols[inside].astype(np.int64), depth[inside]
    depth_map = np.zeros((height, width))
    last = _last_per_pixel(rows * width + cols)
    depth_map[rows[last], cols[last]] = depth[last]

    group_key = rows * (width - 1) + cols - 1
    _, first, group, count = np.unique(group_key, return_index=True, return_inverse=True,
                                       return_counts=True)
    nearest = np.full(len(count), np.inf)
    np.minimum.at(nearest, group, depth)
    shared = count > 1
    depth_map[rows[first[shared]], cols[first[shared]]] = nearest[shared]
    depth_map[depth_map < 0] = 0
    return depth_map


def depth_map_from_points(points: np.ndarray, projection: np.ndarray, size: Tuple[int, int],
                          velodyne_depth: bool = False) -> np.ndarray:
    """``[H, W]`` float64 ground truth of a scan ``[N, 4]`` through ``projection`` ``[3, 4]``."""
    rows, cols, depth = project_points(points, projection, velodyne_depth)
    return scatter_nearest(rows, cols, depth, size)


def lidar_depth_map(calib_dir: PathLike, velodyne_path: PathLike, cam: int = 2,
                    velodyne_depth: bool = False) -> np.ndarray:
    """The ground truth of one scan in camera 2 or 3 of a KITTI raw date.

    Args:
        calib_dir: the date folder with ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt``.
        velodyne_path: the ``.bin`` scan.
        cam: 2 (left, side ``l``) or 3 (right, side ``r``).
        velodyne_depth: depth = the LiDAR forward coordinate x (what exports hold) instead
            of the camera depth w (what validation uses); see the module docstring, step 4.

    Returns:
        ``[H, W]`` float64 metres, 0 where there is no point; ``(H, W)`` from ``S_rect_02``.

    Raises:
        DataError: naming the calibration file or key, or the scan, that is missing or bad.
    """
    projection, size = velo_to_camera(calib_dir, cam)
    return depth_map_from_points(load_velodyne_points(velodyne_path), projection, size,
                                 velodyne_depth)


def _gt_files(layout: KittiRawLayout, entry: SplitEntry, split: str) -> List[Path]:
    """The files the ground truth of one test entry is made from."""
    if split == "eigen_benchmark":
        return [layout.depth_png_path(entry)]
    calib_dir = layout.calib_dir(entry)
    return [calib_dir / CAM_TO_CAM, calib_dir / VELO_TO_CAM, layout.velodyne_path(entry)]


def _missing_gt_files(layout: KittiRawLayout, entries: List[SplitEntry], split: str,
                      source: Path) -> List[str]:
    """One line per missing file (with the first test-list line needing it)."""
    problems, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        for path in _gt_files(layout, entry, split):
            if path not in seen and not path.is_file():
                problems.append(f"{path}: missing (needed by {source} line {number})")
            seen.add(path)
    return problems


def gt_depths(data_path: PathLike, split: str, split_dir: PathLike,
              velodyne_depth: bool = True) -> List[np.ndarray]:
    """The ground-truth maps of ``<split_dir>/<split>/test_files.txt``, in list order.

    ``eigen``: each line's LiDAR scan in its side's camera (``l`` -> 2; the original always
    uses camera 2, the same thing on its all-``l`` list). ``eigen_benchmark``: KITTI depth's
    improved maps at :meth:`KittiRawLayout.depth_png_path`. Any other split of raw-layout
    lines (``synthetic``, a user's own): the LiDAR projection, as for ``eigen``.

    Args:
        velodyne_depth: LiDAR maps hold each point's forward coordinate ``x``, as the
            original's export writes them (the default); False: the camera depth ``w``
            (module docstring, step 4).

    Returns:
        float32 ``[H, W]`` maps (H, W of each date's images), metres, 0 = no ground truth.

    Raises:
        DataError: unknown split, bad test list, or (all listed at once) missing files.
    """
    if split in NO_GT_SPLITS:
        raise DataError(f"split {split!r}: its test list does not name raw KITTI frames with "
                        f"LiDAR scans; ground truth is exported for {' or '.join(GT_SPLITS)} "
                        "(or any split of raw-layout test lines)")
    entries = read_split(split_dir, split, "test")
    layout = KittiRawLayout(data_path)
    source = Path(split_dir) / split / "test_files.txt"
    raise_on_problems(_missing_gt_files(layout, entries, split, source),
                      f"ground truth of {source}")
    projections: Dict[Tuple[Path, int], tuple] = {}
    maps = []
    for entry in entries:
        if split == "eigen_benchmark":
            maps.append(load_depth_png(layout.depth_png_path(entry)))
            continue
        key = (layout.calib_dir(entry), SIDE_CAMERA[entry.side])
        if key not in projections:
            projections[key] = velo_to_camera(*key)
        points = load_velodyne_points(layout.velodyne_path(entry))
        maps.append(depth_map_from_points(points, *projections[key], velodyne_depth)
                    .astype(np.float32))
    return maps


def save_gt_depths(maps: List[np.ndarray], output_path: PathLike) -> Path:
    """Writes ``maps`` as the original's ``gt_depths.npz``: key ``data``, an object array of
    the ``[H, W]`` float32 maps (object, so maps of different sizes fit). Reading it back
    unpickles that array: ``np.load(path, allow_pickle=True)["data"]`` -- load only files you
    trust. Written to a temporary file first, so a stopped export leaves no partial file."""
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    data = np.empty(len(maps), dtype=object)
    for index, depth in enumerate(maps):
        data[index] = depth
    partial = output_path.with_name(output_path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez_compressed(file, data=data)
    partial.replace(output_path)
    return output_path


def export_gt_depths(data_path: PathLike, split: str, split_dir: PathLike,
                     output_path: PathLike, velodyne_depth: bool = True) -> int:
    """:func:`gt_depths` of a split written by :func:`save_gt_depths` to ``output_path``
    (the original writes ``splits/<split>/gt_depths.npz``); ``velodyne_depth`` as there.

    Returns:
        The number of maps written.
    """
    maps = gt_depths(data_path, split, split_dir, velodyne_depth)
    save_gt_depths(maps, output_path)
    return len(maps)
