"""Ground-truth depth maps from KITTI's LiDAR scans, computed as the original computes them."""

from pathlib import Path

import numpy as np

from monodepth_tf.data.calibration import velo_to_camera
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.kitti import SIDE_CAMERA, KittiRawLayout, load_depth_png, read_split


def load_velodyne_points(path) -> np.ndarray:
    """A velodyne ``.bin`` scan as ``[N, 4]`` float32 (x forward, y left, z up, reflectance)."""
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.float32)
    except OSError as error:
        raise DataError(f"{path}: cannot read LiDAR scan ({error.strerror or error})") from None
    if raw.size % 4:
        raise DataError(f"{path}: {raw.size} floats is not a whole number of (x, y, z, r) points")
    return raw.reshape(-1, 4)


def lidar_depth_map(calib_dir, velodyne_path, cam: int = 2) -> np.ndarray:
    """The sparse depth map ``[H, W]`` (float64, 0 where no point) of one scan in camera 2 or 3.

    As the original: points with a negative forward coordinate are dropped; the rest are
    projected through ``P_rect @ R_rect @ velo_to_cam``; pixel = round(u / w) - 1, round(v / w)
    - 1 (KITTI's one-pixel offset, NumPy's round-half-even); depth = the projected ``w``, the
    point's depth along the rectified camera's axis (not the raw velodyne x, which differs by
    the ~0.27 m between the sensors: the reference maps fix this choice). Where several points share a pixel index the nearest is kept --
    with the original's index ``row * (W - 1) + col - 1``, under which the last column of a row
    and the first of the next share an index too, so this reproduces its maps exactly.
    """
    P, (height, width) = velo_to_camera(calib_dir, cam)
    velo = load_velodyne_points(velodyne_path)
    velo = velo[velo[:, 0] >= 0].copy()
    velo[:, 3] = 1.0
    projected = (P @ velo.T).T  # float64
    u = np.round(projected[:, 0] / projected[:, 2]) - 1
    v = np.round(projected[:, 1] / projected[:, 2]) - 1
    depth_values = projected[:, 2]
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    cols, rows, depth_values = u[inside].astype(int), v[inside].astype(int), depth_values[inside]

    depth = np.zeros((height, width))
    depth[rows, cols] = depth_values  # where points collide the last one written stays...
    index = rows * (width - 1) + cols - 1
    keys, first, counts = np.unique(index, return_index=True, return_counts=True)
    shared = counts > 1
    if shared.any():  # ...and is then replaced by the nearest of its group
        order = np.argsort(index, kind="stable")
        group_min = np.minimum.reduceat(depth_values[order], np.r_[0, np.cumsum(counts)[:-1]])
        depth[rows[first[shared]], cols[first[shared]]] = group_min[shared]
    depth[depth < 0] = 0
    return depth


def export_gt_depths(data_path, split: str, split_dir, output_path) -> int:
    """Writes the ground truth of ``<split_dir>/<split>/test_files.txt`` to ``output_path``.

    ``eigen``: LiDAR maps of each test frame's camera; ``eigen_benchmark``: the improved maps
    (``load_depth_png``). The file is an ``.npz`` with key ``data``: an object array of float32
    ``[H, W]`` maps in list order (``np.load(..., allow_pickle=True)``), written atomically.

    Returns:
        The number of maps written.
    """
    entries = read_split(split_dir, split, "test")
    layout = KittiRawLayout(data_path)
    maps = []
    for entry in entries:
        if split == "eigen_benchmark":
            maps.append(load_depth_png(layout.depth_png_path(entry.folder, entry.frame_index,
                                                             entry.side)))
        else:
            depth = lidar_depth_map(layout.calib_dir(entry.folder),
                                    layout.velodyne_path(entry.folder, entry.frame_index),
                                    SIDE_CAMERA[entry.side])
            maps.append(depth.astype(np.float32))
    data = np.empty(len(maps), dtype=object)
    data[:] = maps
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial.npz")
    np.savez_compressed(partial, data=data)
    partial.replace(output_path)
    return len(maps)
