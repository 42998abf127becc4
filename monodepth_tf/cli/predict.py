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

A video (``.mp4``, ``.avi``, ``.mov``, ``.mkv``) becomes ``<name>_disp.mp4``: every frame's
colour-mapped disparity at the video's size and frame rate.
"""

import dataclasses
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import cv2
import numpy as np
from absl import flags

from monodepth_tf.cli.common import load_networks_from_flags, run_tool
from monodepth_tf.cli.progress import show_in_help
from monodepth_tf.data.images import load_rgb
from monodepth_tf.evaluation.depth import STEREO_SCALE_FACTOR
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


def colour_image(scaled_disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """The colour-mapped disparity ``[height, width, 3]`` uint8 RGB at an input's size."""
    return colorize_disparity(disparity_at(scaled_disp, height, width))


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


class Predictor:
    """Loads the weights folder once; writes the outputs of images and videos."""

    def __init__(self, args: PredictArgs):
        from monodepth_tf.inference.predictor import DisparityPredictor

        self.args = args
        loaded = load_networks_from_flags(args, name_flags=NAME_FLAGS)
        folder, self.config = loaded.folder, loaded.config
        self.network = DisparityPredictor(loaded.depth, self.config)
        print(f"-> Loaded ResNet-{self.config.num_layers} weights from {folder}; feed size "
              f"{self.config.width}x{self.config.height}", file=sys.stderr)
        if args.pred_metric_depth and not self.config.use_stereo:
            print(f"warning: --pred_metric_depth: the model of {folder} was not trained with "
                  "stereo (config use_stereo is false), so its depths x5.4 are not metric",
                  file=sys.stderr)

    def images(self, paths: List[Path], output_dir: Path) -> List[Path]:
        """Predicts ``paths`` in batches; returns the files written."""

        written, bar = [], ProgressBar(len(paths))
        for start in range(0, len(paths), self.args.batch_size):
            chunk = paths[start:start + self.args.batch_size]
            images = [load_rgb(path) for path in chunk]
            disps = self.network.predict_images(images)
            for path, image, disp in zip(chunk, images, disps):
                written += self.write_image_outputs(path.stem, image.shape[:2], disp, output_dir)
            bar.update(len(chunk))
        bar.close()
        return written

    def write_image_outputs(self, stem: str, size, disp: np.ndarray,
                            output_dir: Path) -> List[Path]:
        """``<stem>_disp.jpeg`` and ``<stem>_disp.npy`` (or ``<stem>_depth.npy``)."""
        if self.args.pred_metric_depth:
            npy = output_dir / f"{stem}_depth.npy"
            array = STEREO_SCALE_FACTOR / disp
        else:
            npy = output_dir / f"{stem}_disp.npy"
            array = disp
        np.save(npy, array.astype(np.float32)[None, None])
        jpeg = output_dir / f"{stem}_disp.jpeg"
        write_jpeg(jpeg, colour_image(disp, *size))
        return [jpeg, npy]

    def video(self, path: Path, output_dir: Path) -> List[Path]:
        """Writes ``<stem>_disp.mp4``: the colour-mapped disparity of every frame."""
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
            try:
                bar = ProgressBar(total, "frames")
                frames = _chain(first, frames)
                for disps in self.network.iterate(frames, self.args.batch_size):
                    for disp in disps:
                        rgb = colour_image(disp, height, width)
                        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                    bar.update(len(disps))
                bar.close()
            finally:
                writer.release()
        finally:
            capture.release()
        return [out]


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


def predict(args: PredictArgs) -> List[Path]:
    """Predicts what ``args.image_path`` names; returns the files written.

    Raises:
        ValueError (DataError, WeightsFolderError): bad input, named; OSError: unwritable
        output.
    """
    if args.batch_size < 1:
        raise ValueError(f"--batch_size={args.batch_size} must be at least 1")
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
    predictor = Predictor(args)
    written = predictor.video(source, output_dir) if is_video \
        else predictor.images(paths, output_dir)
    print(f"-> Wrote {len(written)} files to {output_dir}")
    return written


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
    predict(PredictArgs.from_flags(flags.FLAGS))


PROGRAM_FLAGS = tuple(f.name for f in dataclasses.fields(PredictArgs))


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
    flags.mark_flag_as_required("image_path")


def run():
    define_flags()
    show_in_help(flags.FLAGS, PROGRAM_FLAGS)
    run_tool(main)
