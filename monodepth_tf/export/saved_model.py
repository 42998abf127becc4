"""A depth network as a SavedModel for TF Serving, and TF Serving's REST request format.

The SavedModel's ``serving_default`` signature takes uint8 RGB images ``[B, H, W, 3]`` of any
size and returns, at the input's size:

- ``disparity`` ``[B, H, W]``: the scaled disparity (``disp_to_depth`` of the network's sigmoid
  output, with the weights folder's min/max depth);
- ``depth`` ``[B, H, W]``: ``1 / disparity``, the depth ``disp_to_depth`` gives (relative scale for
  a monocular model);
- ``metric_depth`` ``[B, H, W]``, only for stereo-trained configs (``use_stereo``): ``depth``
  times the original's stereo scale factor 5.4, in metres.

Inside the graph, in TensorFlow ops only (TF Serving runs it, on any input size and batch), the
images go through the project's one resize policy, the original's
(:mod:`monodepth_tf.data.resize`):
Pillow's Lanczos on the 8-bit images to the network's feed size, bit for bit as
:func:`monodepth_tf.inference.predictor.predict_disparity` (bin/predict, bin/evaluate_depth) and the
training pipeline resize, then scaled to [0, 1]; the disparity is resized back to the input's
size bilinearly (half-pixel centres, as bin/predict and the original's ``F.interpolate``).
Resizing is linear, so resizing the scaled disparity equals scaling the resized sigmoid output,
and ``depth`` stays its inverse.

The model is written as ``<export_dir>/<model_name>/<version>/``, the layout TF Serving loads,
through a temporary sibling renamed into place (TF Serving ignores non-numeric folders, so it
never sees a half-written version).
"""

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Union

import numpy as np
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.layout import STEREO_SCALE_FACTOR
from monodepth_tf.data.resize import network_input, resize_bilinear
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.inference.folded import FoldedDepthNet
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.weights.folder import replace_dir


SIGNATURE_KEY = "serving_default"


INPUT_NAME = "images"


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class ExportError(ValueError):
    """An export that cannot be written: a version folder already exists, a bad name or option,
    calibration images missing."""


@dataclasses.dataclass
class _Untracked:
    """Holds a model out of sight of tf.Module's attribute tracking."""

    model: DepthNet


class DepthServingModule(tf.Module):
    """The exported depth model: a depth network (as :class:`FoldedDepthNet` computes it: the
    function of bin/predict, in fewer operations), its config, and the serving functions.

    Args:
        depth_net: a built, loaded depth network.
        config: its weights folder's config (feed size, depth range, ``use_stereo``).
    """

    def __init__(self, depth_net: DepthNet, config: ModelConfig):
        super().__init__(name="monodepth2")
        # Plain tf.Variables (the folded weights), so a session-based loader (TF Serving,
        # saved_model_cli) restores them under the graph's names.
        self.network = FoldedDepthNet(depth_net)
        # The Keras network itself, untracked (not saved): what the TFLite models are converted
        # from. TFLite's converter folds the BatchNorms itself, and converted from the folded
        # network (transposed convolutions) its models ran slower: 124 against 88 ms in
        # float32, 62 against 22 ms in int8 (benchmarks/inference.py, Intel Xeon, 2026-12-04).
        self._keras = _Untracked(depth_net)
        self.height, self.width = int(config.height), int(config.width)
        self.min_depth, self.max_depth = float(config.min_depth), float(config.max_depth)
        self.use_stereo = bool(config.use_stereo)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, None, None, None], tf.uint8, name=INPUT_NAME)])

    def disparity_at_feed_size(self, images: tf.Tensor) -> tf.Tensor:
        """float32 ``[B, height, width, 3]`` in [0, 1] -> scaled disparity ``[B, height, width]``."""
        disp = self.network(images)[..., 0]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[0]

    def keras_disparity_at_feed_size(self, images: tf.Tensor) -> tf.Tensor:
        """:meth:`disparity_at_feed_size` from the Keras network (the same values up to
        rounding)."""
        disp = self._keras.model(images, training=False)[0][..., 0]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[0]

    def _serve(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """uint8 ``[B, H, W, C]`` (see :func:`rgb_images`) -> ``disparity``, ``depth`` (and
        ``metric_depth``) ``[B, H, W]``."""
        images = rgb_images(images)
        size = tf.shape(images)[1:3]
        feed = network_input(images, self.height, self.width)
        disp = self.disparity_at_feed_size(feed)
        disp = resize_bilinear(disp[..., None], size)[..., 0]
        outputs = {"disparity": disp, "depth": 1.0 / disp}
        if self.use_stereo:
            outputs["metric_depth"] = STEREO_SCALE_FACTOR / disp
        return outputs


def rgb_images(images: tf.Tensor) -> tf.Tensor:
    """uint8 ``[B, H, W, C]`` as RGB ``[B, H, W, 3]``, as bin/predict reads an image file
    (OpenCV's colour decoding): gray (C = 1, or 2 with alpha) repeated to three channels, RGBA
    (C = 4) without its alpha.

    Raises (when run):
        InvalidArgumentError: another channel count, named in the message (what TF Serving
            answers such a request with).
    """
    channels = tf.shape(images)[-1]
    known = tf.logical_and(channels >= 1, channels <= 4)
    check = tf.debugging.Assert(known, [
        "images must have 3 channels (RGB), or 4 (RGBA), 1 or 2 (gray, gray + alpha); got",
        channels])
    with tf.control_dependencies([check]):
        rgb = tf.cond(channels < 3, lambda: tf.tile(images[..., :1], [1, 1, 1, 3]),
                      lambda: images[..., :3])
    return tf.ensure_shape(rgb, [None, None, None, 3])


def version_dir(export_dir, model_name: str, version: int) -> Path:
    """``<export_dir>/<model_name>/<version>``, the folder TF Serving loads a version from."""
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ExportError(f"--model_name {model_name!r} must be a plain folder name")
    if int(version) < 0:
        raise ExportError(f"--version must be a non-negative integer, got {version}")
    return Path(export_dir) / model_name / str(int(version))


def check_target(target: Path, overwrite: bool) -> None:
    """Raises ExportError when the version folder ``target`` exists and may not be replaced."""
    if Path(target).exists() and not overwrite:
        raise ExportError(f"{target} already exists: choose another --version or pass "
                          "--overwrite to replace it")


def write_saved_model(module: DepthServingModule, target: Path, overwrite: bool = False) -> Path:
    """Saves ``module`` with its ``serving_default`` signature to ``target``, atomically.

    Raises:
        ExportError: ``target`` exists and ``overwrite`` is False.
    """
    target = Path(target)
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # mkdtemp makes the folder private (0700); a server running as another user must be
        # able to read it, so give it the permissions of an ordinary new folder.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE_KEY: module.serve})
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def image_files(folder) -> List[Path]:
    """The image files (jpg, jpeg, png, bmp) directly in ``folder``, sorted.

    Raises:
        ExportError: the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"calibration image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ExportError(f"calibration image folder {folder} holds no image "
                          f"({', '.join(IMAGE_EXTENSIONS)})")
    return files


def serving_request(signature, body_json: Union[str, bytes, dict]) -> dict:
    """Runs a TF-Serving REST ``predict`` body through a signature, as TF Serving would.

    Row format: ``{"instances": [...]}``, one entry per example, each either the example's
    value (when the signature has one input) or a dict ``{input name: value}``; the examples
    are stacked into a batch. The answer is ``{"predictions": [...]}``, one entry per example:
    a dict ``{output name: value}`` (a bare value when there is a single output). The columnar
    format ``{"inputs": ...}`` (a value, or a dict of batched values) gives ``{"outputs": ...}``.

    Args:
        signature: a concrete function with keyword inputs (``loaded.signatures[...]``).
        body_json: the request body (JSON text, or the parsed dict).

    Returns:
        The response as a dict of JSON-compatible lists.

    Raises:
        ValueError: a malformed body (the message says what is wrong, as TF Serving's 400s do).
    """
    body = json.loads(body_json) if isinstance(body_json, (str, bytes)) else body_json
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise ValueError('the request body must be a JSON object with exactly one of '
                         '"instances" (row format) or "inputs" (columnar format)')
    specs = signature.structured_input_signature[1]
    names = sorted(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ValueError('"instances" must be a non-empty list')
        columns = {name: [] for name in names}
        for i, instance in enumerate(instances):
            values = instance if isinstance(instance, dict) else {names[0]: instance}
            if not isinstance(instance, dict) and len(names) != 1:
                raise ValueError(f"instance {i} is a bare value, but the signature takes "
                                 f"{len(names)} inputs {names}: give a dict")
            if set(values) != set(names):
                raise ValueError(f"instance {i} has inputs {sorted(values)}, the signature "
                                 f"takes {names}")
            for name in names:
                columns[name].append(values[name])
        feeds = {name: _to_tensor(name, columns[name], specs[name]) for name in names}
    else:
        inputs = body["inputs"]
        values = inputs if isinstance(inputs, dict) else {names[0]: inputs}
        if set(values) != set(names):
            raise ValueError(f'"inputs" has {sorted(values)}, the signature takes {names}')
        feeds = {name: _to_tensor(name, values[name], specs[name]) for name in names}
    outputs = {name: value.numpy() for name, value in signature(**feeds).items()}
    if "inputs" in body:
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {name: value.tolist() for name, value in outputs.items()}}
    batch = len(body["instances"])
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values())).tolist()}
    return {"predictions": [{name: value[i].tolist() for name, value in outputs.items()}
                            for i in range(batch)]}


def _to_tensor(name: str, value, spec: tf.TensorSpec) -> tf.Tensor:
    """A JSON value as a tensor of the input's dtype and shape, or ValueError saying why not."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except ValueError:
        raise ValueError(f"input {name!r}: the examples' values are not a regular numeric "
                         "array (every example must have the same shape)") from None
    dtype = spec.dtype.as_numpy_dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if np.any(array != np.round(array)) or array.min() < info.min or array.max() > info.max:
            raise ValueError(f"input {name!r} takes {spec.dtype.name} values, in "
                             f"[{info.min}, {info.max}]; got values outside that")
    if not spec.shape.is_compatible_with(array.shape):
        raise ValueError(f"input {name!r} takes shape {spec.shape}, got {list(array.shape)}")
    return tf.constant(array.astype(dtype))
