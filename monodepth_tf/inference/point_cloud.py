"""Coloured 3-D point clouds from predicted depth, written as binary PLY files.

Every pixel of an image is lifted to the camera frame (x right, y down, z forward; the centre of
the top-left pixel is pixel ``(0, 0)``) with :func:`monodepth_tf.geometry.camera.backproject`,
the back-projection the networks train with, at the image's own size:
``point = depth * K^-1 (x, y, 1)``, coloured by the image's pixel.

The intrinsics come from a camera file (``intrinsics.json`` of the folder dataset, or a KITTI
``calib_cam_to_cam.txt``; :mod:`monodepth_tf.data.folder.camera_files` reads both) or are
KITTI's normalized intrinsics (:data:`monodepth_tf.data.layout.NORMALIZED_K`, which every
network was trained with), in both cases normalized by the size they describe and scaled to the
image's size (:func:`monodepth_tf.data.pipeline.intrinsics`).

Depth is ``scale / scaled disparity``: ``scale`` is 5.4 (metres) for models trained with stereo
pairs, as ``--pred_metric_depth`` and ``--eval_stereo`` use it, and 1 (an unknown scale) for
monocular ones, times an optional user factor.

PLY: ``format binary_little_endian 1.0``, one ``vertex`` element with ``float x, y, z`` and
``uchar red, green, blue`` (15 bytes a point): the standard header that point-cloud viewers
read; ``comment`` lines say what the cloud's intrinsics and scale are.
"""

import dataclasses
from pathlib import Path
from typing import NamedTuple, Optional, Set, Tuple, Union

import numpy as np
import tensorflow as tf

from monodepth_tf.data.errors import DataError
from monodepth_tf.data.folder.camera_files import CameraFile, find_camera
from monodepth_tf.data.layout import NORMALIZED_K, STEREO_SCALE_FACTOR
from monodepth_tf.data.pipeline import intrinsics
from monodepth_tf.geometry.camera import backproject

PathLike = Union[str, Path]
PLY_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
ASPECT_TOLERANCE = 0.01  # relative difference of aspect ratios worth a warning


class PointCloud(NamedTuple):
    """Points in the camera frame and their colours.

    Attributes:
        points: ``[N, 3]`` float32 ``x, y, z`` (x right, y down, z forward = depth).
        colours: ``[N, 3]`` uint8 RGB.
    """

    points: np.ndarray
    colours: np.ndarray


def read_camera(path: PathLike) -> CameraFile:
    """The camera of ``--intrinsics``: a ``.json`` file as the folder dataset's
    ``intrinsics.json``, any other file as a KITTI ``calib_cam_to_cam.txt``.

    Raises:
        DataError: the file is missing or cannot be read as such (the message names it).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"--intrinsics {path}: no such file (give an intrinsics.json or a "
                        "KITTI calib_cam_to_cam.txt)")
    camera = find_camera([path])
    assert camera is not None  # the file exists
    return camera


def camera_matrix(normalized_K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel intrinsics ``[4, 4]`` float64 of a ``height`` x ``width`` image from intrinsics
    normalized by the image size (row 0 by the width, row 1 by the height)."""
    return intrinsics(height, width, 0, normalized_K).astype(np.float64)


def backproject_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera points ``[H, W, 3]`` float64 of every pixel of ``depth`` ``[H, W]`` seen with
    the pixel intrinsics ``K`` (``[3, 3]`` or ``[4, 4]``), in float64 so that a point
    re-projects to its pixel to ~1e-10 px (float32 rounding comes only from the PLY)."""
    K = np.asarray(K, np.float64)[:3, :3]
    inv_K = tf.constant(np.linalg.inv(K)[None])
    depth = tf.constant(np.asarray(depth, np.float64)[None, :, :, None])
    points = backproject(depth, inv_K)
    return tf.stack(points, axis=-1)[0].numpy()


def cloud_from_depth(depth: np.ndarray, image: np.ndarray, K: np.ndarray,
                     max_depth: Optional[float] = None) -> PointCloud:
    """The coloured cloud of an image: one point per pixel, in row-major pixel order, without
    the pixels farther than ``max_depth`` (or whose depth is not finite).

    Args:
        depth: ``[H, W]`` depth (z) at the image's size.
        image: ``[H, W, 3]`` uint8 RGB.
        K: pixel intrinsics of the image's size, ``[3, 3]`` or ``[4, 4]``.
        max_depth: drop points with a larger depth (None: keep all).
    """
    depth = np.asarray(depth, np.float64)
    if image.shape[:2] != depth.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {list(image.shape)} and depth {list(depth.shape)} do not fit: "
                         "expected [H, W, 3] and [H, W]")
    keep = np.isfinite(depth)
    if max_depth is not None:
        keep &= depth <= max_depth
    points = backproject_depth(depth, K)[keep]
    return PointCloud(points.astype(np.float32), np.asarray(image, np.uint8)[keep])


def ply_header(count: int, comments: Tuple[str, ...] = ()) -> bytes:
    """The ASCII header of a binary little-endian PLY of ``count`` coloured vertices."""
    lines = ["ply", "format binary_little_endian 1.0"]
    lines += [f"comment {' '.join(text.split())}" for text in comments]
    lines += [f"element vertex {count}", "property float x", "property float y",
              "property float z", "property uchar red", "property uchar green",
              "property uchar blue", "end_header"]
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")  # a PLY header is ASCII


def write_ply(path: PathLike, cloud: PointCloud, comments: Tuple[str, ...] = ()) -> Path:
    """Writes ``cloud`` as a binary little-endian PLY (see the module docstring).

    Args:
        comments: ``comment`` lines of the header (ASCII, one line each).
    """
    vertices = np.empty(len(cloud.points), PLY_VERTEX)
    for axis, name in enumerate("xyz"):
        vertices[name] = cloud.points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = cloud.colours[:, channel]
    path = Path(path)
    with open(path, "wb") as out:
        out.write(ply_header(len(vertices), comments))
        out.write(vertices.tobytes())
    return path


@dataclasses.dataclass
class CloudMaker:
    """How a tool turns a prediction into a cloud: which intrinsics, which depth scale.

    Attributes:
        camera: the camera file's intrinsics (None: KITTI's, :data:`NORMALIZED_K`).
        scale: depth = scale / scaled disparity (5.4 for stereo-trained models, 1 for mono,
            times the user's factor).
        metric: the depth is in metres.
        max_depth: points farther than this are dropped (None: none is).
    """

    camera: Optional[CameraFile]
    scale: float
    metric: bool
    max_depth: Optional[float] = None
    warned_sizes: Set[Tuple[int, int]] = dataclasses.field(default_factory=set)

    @classmethod
    def create(cls, camera: Optional[CameraFile], use_stereo: bool,
               depth_scale: Optional[float] = None,
               max_depth: Optional[float] = None) -> "CloudMaker":
        """Args: the camera (None: KITTI's), whether the model was trained with stereo (then
        its depth x 5.4 is metric), the user's depth factor and the crop (None: none)."""
        scale = (STEREO_SCALE_FACTOR if use_stereo else 1.0) * (depth_scale or 1.0)
        return cls(camera, scale, use_stereo, max_depth)

    @property
    def normalized_K(self) -> np.ndarray:
        return NORMALIZED_K if self.camera is None else self.camera.normalized_K()

    def describe(self) -> Tuple[str, ...]:
        """What the clouds are: their intrinsics and their scale, one sentence each."""
        if self.camera is None:
            where = ("intrinsics: KITTI's normalized intrinsics (NORMALIZED_K: fx = 0.58 W, "
                     "fy = 1.92 H, principal point at the centre), what the networks were "
                     "trained with, scaled to each image's size; give your camera's with "
                     "--intrinsics")
        else:
            c = self.camera
            where = (f"intrinsics: {c.path} (fx {c.fx:g}, fy {c.fy:g}, cx {c.cx:g}, cy "
                     f"{c.cy:g} for {c.width:g}x{c.height:g} images), scaled to each image's "
                     "size")
        if self.metric:
            scale = (f"scale: metric (metres): stereo-trained model, depth = {self.scale:g} / "
                     "disparity")
        else:
            scale = (f"scale: unknown (monocular model): depth = {self.scale:g} / disparity, "
                     "up to an unknown factor; give it with --depth_scale (e.g. a known camera "
                     "height over the cloud's, or a median ratio to measured depth)")
        crop = [] if self.max_depth is None else [f"points with depth > {self.max_depth:g} "
                                                  "dropped"]
        return (where, scale, *crop)

    def size_warning(self, height: int, width: int) -> Optional[str]:
        """A warning (once per image size) when the camera file describes images of
        another aspect ratio: its intrinsics are scaled, right for a resized image only."""
        c = self.camera
        if c is None or (height, width) in self.warned_sizes:
            return None
        self.warned_sizes.add((height, width))
        if abs((width / height) / (c.width / c.height) - 1) <= ASPECT_TOLERANCE:
            return None
        return (f"warning: --intrinsics {c.path} describes {c.width:g}x{c.height:g} images, "
                f"these are {width}x{height}: its intrinsics are scaled to them, which is right "
                "for a resized image, not for a cropped one")

    def cloud(self, disparity: np.ndarray, image: np.ndarray) -> PointCloud:
        """The cloud of ``image`` ``[H, W, 3]`` uint8 from its scaled disparity at its size
        ``[H, W]``."""
        height, width = disparity.shape
        K = camera_matrix(self.normalized_K, height, width)
        depth = self.scale / np.asarray(disparity, np.float64)
        return cloud_from_depth(depth, image, K, self.max_depth)
