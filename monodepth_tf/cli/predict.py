"""bin/predict: depth of an image, a folder of images or a video, as the original's script does.

    bin/predict --model_name mono_640x192 --image_path street.jpg
    bin/predict --image_path assets/test_image.jpg --load_weights_folder weights/mono_640x192
    bin/predict --image_path frames/ --ext png --model_zoo monodepth2_resnet18_kitti_stereo_640x192 \\
        --pred_metric_depth
    bin/predict --image_path drive.mp4 --load_weights_folder weights/mono_640x192

Each image is resized (Pillow's Lanczos, :mod:`monodepth_tf.data.resize`) to the weights folder's
feed size and predicted; written beside
it (or in ``--output_dir``):

- ``<name>_disp.jpeg``: the disparity, resized (bilinear) to the image's size, coloured with
  magma from its minimum to its 95th percentile;
- ``<name>_disp.npy``: the scaled disparity at the network's size, ``[1, 1, h, w]`` float32,
  as the original saves it; or, with ``--pred_metric_depth``, ``<name>_depth.npy``: the
  metric depth ``5.4 / scaled disparity`` (only meaningful for stereo-trained models).

- with ``--point_cloud``, ``<name>.ply``: a coloured point cloud, every pixel back-projected at
  the image's size with the disparity resized to it (:mod:`monodepth_tf.inference.point_cloud`):
  intrinsics from ``--intrinsics`` (an ``intrinsics.json`` or a KITTI ``calib_cam_to_cam.txt``)
  or KITTI's normalized ones; metric for stereo-trained models (depth = 5.4 / disparity), of
  unknown scale for monocular ones (``--depth_scale`` multiplies it); ``--max_depth`` drops far
  points.

A video (``.mp4``, ``.avi``, ``.mov``, ``.mkv``) becomes ``<name>_disp.mp4``: every frame's
colour-mapped disparity at the video's size and frame rate (and, with ``--point_cloud``,
``<name>_<frame index, 6 digits>.ply`` per frame).

``--runtime openvino`` runs the network under OpenVINO in float32
(:mod:`monodepth_tf.inference.openvino`) instead of TensorFlow.
"""

import dataclasses
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import cv2
import numpy as np
from absl import flags

from monodepth_tf.cli.common import (RUNTIME_HELP, RUNTIMES, check_runtime,
                                     load_networks_from_flags, run_tool)
from monodepth_tf.cli.progress import show_in_help
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.layout import STEREO_SCALE_FACTOR
from monodepth_tf.inference.colormap import colorize_disparity
from monodepth_tf.progress import ProgressBar

NAME_FLAGS = ("model_zoo", "model_name")  # the flags that take a model name
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v")
OUTPUT_SUFFIXES = ("_disp", "_depth")  # our own outputs, skipped when reading a folder


@dataclasses.dataclass
class PredictArgs:
    """The tool's flags, so that :func:`predict` also runs without absl (field = flag)."""

    image_path: str = ""
    ext: str = "jpg"
    load_weights_folder: Optional[str] = None
    model_zoo: Optional[str] = None
    model_name: Optional[str] = None
    output_dir: Optional[str] = None
    batch_size: int = 8
    pred_metric_depth: bool = False
    point_cloud: bool = False
    intrinsics: Optional[str] = None
    depth_scale: Optional[float] = None
    max_depth: Optional[float] = None
    runtime: str = "tensorflow"

    @classmethod
    def from_flags(cls, values) -> "PredictArgs":
        return cls(**{f.name: getattr(values, f.name) for f in dataclasses.fields(cls)})


def find_images(folder: Path, ext: str) -> List[Path]:
    """The ``*.<ext>`` images of a folder (case-insensitive), sorted, without our outputs."""
    suffix = "." + ext.lower().lstrip(".")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == suffix
                   and not p.stem.endswith(OUTPUT_SUFFIXES))
    if not paths:
        raise ValueError(f"--image_path {folder} holds no {suffix} images (choose the "
                         "extension with --ext)")
    return paths


def disparity_at(scaled_disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """A disparity ``[h, w]`` resized bilinearly (half-pixel centres, as the original's
    ``F.interpolate``; :func:`monodepth_tf.data.resize.resize_bilinear`, the SavedModel's resize) to
    ``[height, width]``."""
    from monodepth_tf.data.resize import resize_bilinear

    if scaled_disp.shape == (height, width):
        return scaled_disp
    return resize_bilinear(scaled_disp[None, :, :, None], (height, width))[0, :, :, 0].numpy()


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


class Predictor:
    """Loads the weights folder once; writes the outputs of images and videos.

    Args:
        args: the tool's flags.
        camera: the ``--intrinsics`` file's camera, read beforehand (None: KITTI's).
    """

    def __init__(self, args: PredictArgs, camera=None):
        from monodepth_tf.inference.point_cloud import CloudMaker
        from monodepth_tf.inference.predictor import DisparityPredictor

        self.args = args
        loaded = load_networks_from_flags(args, name_flags=NAME_FLAGS)
        folder, self.config = loaded.folder, loaded.config
        self.network = DisparityPredictor(loaded.depth, self.config, args.runtime)
        print(f"-> Loaded ResNet-{self.config.num_layers} weights from {folder}; feed size "
              f"{self.config.width}x{self.config.height}", file=sys.stderr)
        if args.pred_metric_depth and not self.config.use_stereo:
            print(f"warning: --pred_metric_depth: the model of {folder} was not trained with "
                  "stereo (config use_stereo is false), so its depths x5.4 are not metric",
                  file=sys.stderr)
        self.clouds = None
        if args.point_cloud:
            self.clouds = CloudMaker.create(camera, self.config.use_stereo, args.depth_scale,
                                            args.max_depth)
            for line in self.clouds.describe():
                print(f"-> Point clouds: {line}")

    def images(self, paths: List[Path], output_dir: Path) -> List[Path]:
        """Predicts ``paths`` in batches; returns the files written."""

        written, bar = [], ProgressBar(len(paths))
        for start in range(0, len(paths), self.args.batch_size):
            chunk = paths[start:start + self.args.batch_size]
            images = [load_rgb(path) for path in chunk]
            disps = self.network.predict_images(images)
            for path, image, disp in zip(chunk, images, disps):
                written += self.write_image_outputs(path.stem, image, disp, output_dir)
            bar.update(len(chunk))
        bar.close()
        return written

    def write_image_outputs(self, stem: str, image: np.ndarray, disp: np.ndarray,
                            output_dir: Path) -> List[Path]:
        """``<stem>_disp.jpeg`` and ``<stem>_disp.npy`` (or ``<stem>_depth.npy``); with
        ``--point_cloud``, ``<stem>.ply``."""
        if self.args.pred_metric_depth:
            npy = output_dir / f"{stem}_depth.npy"
            array = STEREO_SCALE_FACTOR / disp
        else:
            npy = output_dir / f"{stem}_disp.npy"
            array = disp
        np.save(npy, array.astype(np.float32)[None, None])
        full = disparity_at(disp, *image.shape[:2])
        jpeg = output_dir / f"{stem}_disp.jpeg"
        write_jpeg(jpeg, colorize_disparity(full))
        return [jpeg, npy] + self.write_cloud(output_dir / f"{stem}.ply", full, image)

    def write_cloud(self, path: Path, full_disp: np.ndarray, image: np.ndarray) -> List[Path]:
        """``path``: the cloud of ``image`` from its disparity at its size (nothing without
        ``--point_cloud``)."""
        from monodepth_tf.inference.point_cloud import write_ply

        if self.clouds is None:
            return []
        warning = self.clouds.size_warning(*full_disp.shape)
        if warning:
            print(warning, file=sys.stderr)
        return [write_ply(path, self.clouds.cloud(full_disp, image), self.clouds.describe())]

    def video(self, path: Path, output_dir: Path) -> List[Path]:
        """Writes ``<stem>_disp.mp4``: the colour-mapped disparity of every frame; with
        ``--point_cloud``, also ``<stem>_<frame index, 6 digits>.ply`` per frame."""
        from monodepth_tf.inference.predictor import batches

        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise ValueError(f"video {path} cannot be opened (unreadable, or a format this "
                                 "OpenCV build does not decode)")
            fps = capture.get(cv2.CAP_PROP_FPS)
            fps = fps if fps and fps > 0 else 30.0
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            frames = _frames(capture)
            first = next(frames, None)
            if first is None:
                raise ValueError(f"video {path} has no readable frame")
            height, width = first.shape[:2]
            out = output_dir / f"{path.stem}_disp.mp4"
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                     (width, height))
            if not writer.isOpened():
                raise OSError(f"cannot write the video {out}")
            written = [out]
            try:
                bar = ProgressBar(total, "frames")
                index = 0
                for chunk in batches(_chain(first, frames), self.args.batch_size):
                    for frame, disp in zip(chunk, self.network.predict_images(chunk)):
                        full = disparity_at(disp, height, width)
                        writer.write(cv2.cvtColor(colorize_disparity(full), cv2.COLOR_RGB2BGR))
                        written += self.write_cloud(
                            output_dir / f"{path.stem}_{index:06d}.ply", full, frame)
                        index += 1
                    bar.update(len(chunk))
                bar.close()
            finally:
                writer.release()
        finally:
            capture.release()
        return written


def _frames(capture) -> Iterator[np.ndarray]:
    """RGB frames ``[H, W, 3]`` uint8 of an opened capture."""
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def check_point_cloud_flags(args: PredictArgs):
    """Checks the point-cloud flags and reads ``--intrinsics`` (before any network loads).

    Returns:
        The camera file's :class:`~monodepth_tf.data.folder.CameraFile`, or None.

    Raises:
        ValueError: a flag out of range or given without ``--point_cloud``; DataError: the
            intrinsics file is missing or unreadable (named).
    """
    from monodepth_tf.inference.point_cloud import read_camera

    for name in ("depth_scale", "max_depth"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ValueError(f"--{name}={value} must be positive")
    if not args.point_cloud:
        given = [f"--{name}" for name in ("intrinsics", "depth_scale", "max_depth")
                 if getattr(args, name) is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} only apply to --point_cloud, which is "
                             "not set")
        return None
    return read_camera(args.intrinsics) if args.intrinsics else None


def predict(args: PredictArgs) -> List[Path]:
    """Predicts what ``args.image_path`` names; returns the files written.

    Raises:
        ValueError (DataError, WeightsFolderError): bad input, named; OSError: unwritable
        output.
    """
    if args.batch_size < 1:
        raise ValueError(f"--batch_size={args.batch_size} must be at least 1")
    check_runtime(args.runtime)
    camera = check_point_cloud_flags(args)
    if not args.image_path:
        raise ValueError("--image_path is required: an image, a folder of images or a video")
    source = Path(args.image_path).expanduser()
    if not source.exists():
        raise ValueError(f"--image_path {source} does not exist")
    paths = find_images(source, args.ext) if source.is_dir() else [source]
    is_video = source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS
    if args.output_dir:
        output_dir = Path(args.output_dir).expanduser()
    else:
        output_dir = source if source.is_dir() else source.parent
    output_dir.mkdir(parents=True, exist_ok=True)
    predictor = Predictor(args, camera)
    written = predictor.video(source, output_dir) if is_video \
        else predictor.images(paths, output_dir)
    print(f"-> Wrote {len(written)} files to {output_dir}")
    return written


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
    predict(PredictArgs.from_flags(flags.FLAGS))


PROGRAM_FLAGS = tuple(f.name for f in dataclasses.fields(PredictArgs))
# bin/predict --help: the flags by topic (monodepth_tf.cli.help)
HELP_GROUPS = {
    "Input and model": ["image_path", "ext", "load_weights_folder", "model_zoo", "model_name",
                        "batch_size", "runtime"],
    "Outputs": ["output_dir", "pred_metric_depth"],
    "Point clouds": ["point_cloud", "intrinsics", "depth_scale", "max_depth"],
}


def define_flags() -> None:
    """Defines the tool's flags (only when run as a tool, so importing defines nothing)."""
    flags.DEFINE_string("image_path", None, "An image, a folder of images (see --ext) or a "
                        "video (.mp4, .avi, .mov, .mkv).")
    flags.DEFINE_string("ext", "jpg", "Image extension to look for in a folder.")
    flags.DEFINE_string("load_weights_folder", None, "Weights folder (ours or the original's "
                        ".pth files), or a model name; the feed size comes from it.")
    flags.DEFINE_string("model_zoo", None, "Model name instead of --load_weights_folder (see "
                        "monodepth_tf.weights.zoo).")
    flags.DEFINE_string("model_name", None, "A released model, as the original's "
                        "test_simple.py takes it (mono_640x192, stereo_640x192, "
                        "mono+stereo_1024x320, ...): downloaded, checked and converted on first "
                        "use, then read from ~/.keras/monodepth_tf/zoo/<name>/ "
                        "($MONODEPTH_ZOO_DIR).")
    flags.DEFINE_string("output_dir", None, "Where to write (default: beside the input).")
    flags.DEFINE_integer("batch_size", 8, "Images or frames per forward pass.", lower_bound=1)
    flags.DEFINE_bool("pred_metric_depth", False, "Save metric depth (5.4 / scaled disparity, "
                      "for stereo-trained models) as <name>_depth.npy instead of the disparity.")
    flags.DEFINE_bool("point_cloud", False, "Also write <name>.ply per image (a video: "
                      "<name>_<frame>.ply per frame): every pixel back-projected with the "
                      "camera's intrinsics, coloured by the image (binary PLY).")
    flags.DEFINE_string("intrinsics", None, "The camera of --point_cloud: an intrinsics.json "
                        "(fx, fy, cx, cy, width, height in pixels, as --dataset folder reads) "
                        "or a KITTI calib_cam_to_cam.txt; default: KITTI's normalized "
                        "intrinsics, what the networks were trained with.")
    flags.DEFINE_float("depth_scale", None, "Multiplies the depth of --point_cloud: a "
                       "monocular model's depth has an unknown scale (e.g. a known camera "
                       "height over the cloud's); stereo-trained models are metric (x5.4) "
                       "without it (default: 1).")
    flags.DEFINE_float("max_depth", None, "--point_cloud drops the points farther than this "
                       "depth (after scaling; default: keeps all).")
    flags.DEFINE_enum("runtime", "tensorflow", RUNTIMES, RUNTIME_HELP)
    flags.mark_flag_as_required("image_path")


def run():
    define_flags()
    show_in_help(flags.FLAGS, PROGRAM_FLAGS)
    run_tool(main)
