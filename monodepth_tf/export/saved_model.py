"""Export: a depth network as a SavedModel for TF Serving, and as TFLite models.

The SavedModel's ``serving_default`` signature takes uint8 RGB images ``[B, H, W, 3]`` of any
size and returns, at the input's size:

- ``disparity`` ``[B, H, W]``: the scaled disparity (``disp_to_depth`` of the network's sigmoid
  output, with the weights folder's min/max depth);
- ``depth`` ``[B, H, W]``: ``1 / disparity``, the depth ``disp_to_depth`` gives (relative scale for
  a monocular model);
- ``metric_depth`` ``[B, H, W]``, only for stereo-trained configs (``use_stereo``): ``depth``
  times the original's stereo scale factor 5.4, in metres.

Inside the graph, in TensorFlow ops only (TF Serving runs it, on any input size and batch), the
images go through the project's one resize policy, the original's (:mod:`monodepth_tf.data.resize`):
Pillow's Lanczos on the 8-bit images to the network's feed size, bit for bit as
:func:`monodepth_tf.inference.predictor.predict_disparity` (bin/predict, bin/evaluate_depth) and the
training pipeline resize, then scaled to [0, 1]; the disparity is resized back to the input's
size bilinearly (half-pixel centres, as bin/predict and the original's ``F.interpolate``).
Resizing is linear, so resizing the scaled disparity equals scaling the resized sigmoid output,
and ``depth`` stays its inverse.

The model is written as ``<export_dir>/<model_name>/<version>/``, the layout TF Serving loads,
through a temporary sibling renamed into place (TF Serving ignores non-numeric folders, so it
never sees a half-written version).

TFLite models run at the fixed feed size: float32 images ``[1, height, width, 3]`` in [0, 1]
-> scaled disparity ``[1, height, width]``, in float32, dynamic-range quantized or int8 quantized
(``convert_tflite`` also makes other fixed or polymorphic batch sizes). The int8 model runs its
body (encoder and decoder) in int8 and its disparity head (the last 3x3 convolution, the sigmoid
and ``disp_to_depth``'s scale and shift) in float32: quantized, the head's output would move in
steps of 1/256 of the disparity range, coarse for the small disparities of distant points (see
:func:`convert_tflite`).
"""

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.resize import network_input, resize_bilinear, resize_lanczos_tf
from monodepth_tf.evaluation.depth import STEREO_SCALE_FACTOR
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.networks import layers
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.weights.folder import replace_dir

SIGNATURE_KEY = "serving_default"
INPUT_NAME = "images"
TFLITE_QUANTIZATIONS = ("none", "dynamic", "int8")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class ExportError(ValueError):
    """An export that cannot be written: a version folder already exists, a bad name or option,
    calibration images missing."""


@dataclasses.dataclass
class ExportResult:
    """Where an export went.

    Attributes:
        saved_model_dir: ``<export_dir>/<model_name>/<version>``.
        tflite_path: the float32 ``.tflite`` file, if written.
        tflite_quantized_path: the quantized ``.tflite`` file, if written.
    """

    saved_model_dir: Path
    tflite_path: Optional[Path] = None
    tflite_quantized_path: Optional[Path] = None


@dataclasses.dataclass
class _Untracked:
    """Holds a model out of sight of tf.Module's attribute tracking."""

    model: DepthNet


class DepthServingModule(tf.Module):
    """The exported depth model: a depth network, its config, and the serving functions.

    Args:
        depth_net: a built, loaded depth network.
        config: its weights folder's config (feed size, depth range, ``use_stereo``).
    """

    def __init__(self, depth_net: DepthNet, config: ModelConfig):
        super().__init__(name="monodepth2")
        # The SavedModel tracks the network's underlying tf.Variables only, not the Keras model
        # or its Keras variables (as keras.export does): otherwise a session-based loader (TF
        # Serving, saved_model_cli) restores the variables under other names than the graph's.
        self._network = _Untracked(depth_net)
        self.network_variables = [v.value for v in depth_net.variables]
        self.height, self.width = int(config.height), int(config.width)
        self.min_depth, self.max_depth = float(config.min_depth), float(config.max_depth)
        self.use_stereo = bool(config.use_stereo)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_NAME)])

    def disparity_at_feed_size(self, images: tf.Tensor) -> tf.Tensor:
        """float32 ``[B, height, width, 3]`` in [0, 1] -> scaled disparity ``[B, height, width]``."""
        disp = self._network.model(images, training=False)[0][..., 0]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[0]

    def _serve(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """uint8 ``[B, H, W, 3]`` -> ``disparity``, ``depth`` (and ``metric_depth``) ``[B, H, W]``."""
        size = tf.shape(images)[1:3]
        feed = network_input(images, self.height, self.width)
        disp = self.disparity_at_feed_size(feed)
        disp = resize_bilinear(disp[..., None], size)[..., 0]
        outputs = {"disparity": disp, "depth": 1.0 / disp}
        if self.use_stereo:
            outputs["metric_depth"] = STEREO_SCALE_FACTOR / disp
        return outputs


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


# --- TFLite -------------------------------------------------------------------------------------

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


def calibration_images(paths: Sequence, height: int, width: int, crops_per_image: int = 4,
                       seed: int = 0) -> np.ndarray:
    """Representative inputs for int8 calibration: each image resized to the feed size, plus
    ``crops_per_image`` random crops of it (half to full size, the feed's aspect ratio) resized,
    all with the network input's resize (:func:`monodepth_tf.data.resize.network_input`).

    Returns:
        float32 ``[N, height, width, 3]`` in [0, 1], ``N = len(paths) * (1 + crops_per_image)``.
    """

    rng = np.random.default_rng(seed)
    out = []
    for path in paths:
        image = load_rgb(path)
        h, w = image.shape[:2]
        boxes = [(0, 0, h, w)]
        for _ in range(crops_per_image):
            scale = rng.uniform(0.5, 1.0)
            ch = int(min(h, w * height / width) * scale)
            cw = int(ch * width / height)
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            boxes.append((top, left, ch, cw))
        for top, left, ch, cw in boxes:
            out.append(network_input(image[top:top + ch, left:left + cw], height,
                                     width).numpy())
    return np.stack(out)


# Ops that only move values (the head convolution's reflection padding): taken into the head
# with it, so that its input is not rounded to int8 on the way.
_LAYOUT_OPS = ("STRIDED_SLICE", "CONCATENATION", "PAD", "MIRROR_PAD", "RESHAPE")


def disparity_head_nodes(model: bytes) -> List[str]:
    """The output tensor names of a TFLite model's disparity head: the ops from its last
    convolution to its output, and the ops that only pad that convolution's input (slices,
    concatenations), found by walking back from the output.

    Args:
        model: a float (or calibrated, not yet quantized) TFLite flatbuffer of the feed-size
            disparity function.

    Raises:
        ExportError: no convolution feeds the output.
    """
    interpreter = tf.lite.Interpreter(model_content=model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    producer = {}
    for op in interpreter._get_ops_details():  # the graph's ops, in execution order
        for index in op["outputs"]:
            producer[index] = op
    head, seen, convolution = [], set(), None
    pending = [interpreter.get_output_details()[0]["index"]]
    while pending:  # from the output up to the convolution
        op = producer.get(pending.pop())
        if op is None or op["index"] in seen:
            continue  # a constant, the model's input, or an op already taken
        seen.add(op["index"])
        head.extend(names[i] for i in op["outputs"])
        if op["op_name"] == "CONV_2D":
            convolution = op
        else:
            pending.extend(i for i in op["inputs"] if i >= 0)
    if convolution is None:
        raise ExportError("no convolution feeds the TFLite model's output: no disparity head")
    pending = [convolution["inputs"][0]]
    while pending:  # its padding, up to the body's last activation
        op = producer.get(pending.pop())
        if op is None or op["index"] in seen or op["op_name"] not in _LAYOUT_OPS:
            continue
        seen.add(op["index"])
        head.extend(names[i] for i in op["outputs"])
        pending.extend(i for i in op["inputs"] if i >= 0)
    return head


def convert_tflite(module: DepthServingModule, quantization: str = "none",
                   representative: Optional[np.ndarray] = None,
                   batch_size: Optional[int] = 1, float_head: bool = True) -> bytes:
    """The feed-size disparity function as a TFLite flatbuffer.

    int8: calibrated on ``representative`` (each activation's min/max); weights per output
    channel and activations per tensor in int8, except the disparity head
    (:func:`disparity_head_nodes`), which TFLite's selective quantization
    (``QuantizationDebugOptions.denylisted_nodes``) leaves in float32: the head's padding, 3x3
    convolution (16 -> 1 channels, 0.2% of the network's arithmetic), sigmoid and
    ``disp_to_depth`` read the body's last activation without rounding it to int8. Quantized, the
    head's output moves in steps of 1/256 of the calibrated disparity range (0.04 for scaled
    disparities in [0.01, 10]): on freshly initialized weights that is 0.21% of mean relative
    error, which the float head brings to 0.05% (192x640, 9 real images, benchmarks/
    inference.py). What remains is the body's rounding, which a network may amplify: on the
    reference weights (random weights, randomized BatchNorm statistics) int8 moves the head's
    logits by 2.3 on average, and where the sigmoid is small a logit error d scales the
    disparity by about e**d, so that network stays ~34% off with or without the float head.

    Args:
        module: the serving module.
        quantization: ``none`` (float32), ``dynamic`` (int8 weights, float activations) or
            ``int8`` (int8 weights and activations, float32 disparity head; float32 input and
            output).
        representative: float32 ``[N, height, width, 3]`` calibration images (``int8`` only).
        batch_size: the model's fixed batch size; None converts a batch-polymorphic model
            (the interpreter is resized to each batch).
        float_head: ``int8`` only: keep the disparity head in float32; False quantizes every op
            (kept to measure what the float head gains).
    """
    if quantization not in TFLITE_QUANTIZATIONS:
        raise ExportError(f"--tflite_quantize must be one of {TFLITE_QUANTIZATIONS}, "
                          f"got {quantization!r}")

    # Weights frozen into constants first: converted with live variables, a batch-polymorphic
    # function keeps READ_VARIABLE ops that the interpreter never initializes.
    with layers.sliced_reflection_padding():  # a fresh trace, so it takes effect
        traced = tf.function(module.disparity_at_feed_size).get_concrete_function(
            tf.TensorSpec([batch_size, module.height, module.width, 3], tf.float32,
                          name=INPUT_NAME))
    frozen = convert_variables_to_constants_v2(traced)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization != "int8":
        return converter.convert()
    if representative is None or len(representative) == 0:
        raise ExportError("int8 quantization needs calibration images "
                          "(--calibration_images)")
    step = batch_size or 1

    def dataset() -> Iterator[List[np.ndarray]]:
        for start in range(0, len(representative) - step + 1, step):
            yield [representative[start:start + step].astype(np.float32)]

    converter.representative_dataset = dataset
    if not float_head:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
    # The debugger calibrates once (converter -> float model with activation ranges), then
    # quantizes that model with the head's nodes denylisted; the same MLIR quantizer the
    # converter itself uses, so the body is quantized exactly as in a full int8 conversion.
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter)
    head = disparity_head_nodes(debugger.calibrated_model)
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=head)
    return debugger.get_nondebug_quantized_model()


def tflite_runner(model: Union[bytes, str, Path], num_threads: Optional[int] = None
                  ) -> Callable[[np.ndarray], np.ndarray]:
    """A function running a converted model: float32 ``[B, height, width, 3]`` -> ``[B, height,
    width]`` disparity. A batch-polymorphic model is resized to each batch; a model of fixed
    batch b runs the images b at a time (B must then be a multiple of b)."""
    if isinstance(model, bytes):
        interpreter = tf.lite.Interpreter(model_content=model, num_threads=num_threads)
    else:
        interpreter = tf.lite.Interpreter(model_path=str(model), num_threads=num_threads)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()[0]
    input_index = details["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    fixed_batch = None if details["shape_signature"][0] == -1 else int(details["shape"][0])

    def invoke(images: np.ndarray) -> np.ndarray:
        if tuple(interpreter.get_input_details()[0]["shape"]) != images.shape:
            interpreter.resize_tensor_input(input_index, images.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(input_index, images)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    def run(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, np.float32)
        if fixed_batch is None:
            return invoke(images)
        if len(images) % fixed_batch:
            raise ValueError(f"this TFLite model takes batches of {fixed_batch} images, got "
                             f"{len(images)}")
        return np.concatenate([invoke(images[i:i + fixed_batch])
                               for i in range(0, len(images), fixed_batch)])

    return run


def feed_size_images(paths: Iterable, height: int, width: int) -> np.ndarray:
    """Images read from ``paths``, resized to the feed size as the network input is (Pillow's
    Lanczos, :func:`monodepth_tf.data.resize.resize_lanczos_tf`): uint8 ``[N, height, width, 3]``.
    At this size the SavedModel's resizing is the identity, so its output and a TFLite model's
    (fed ``images / 255``) are directly comparable."""

    return np.stack([resize_lanczos_tf(load_rgb(path), height, width).numpy()
                     for path in paths])


def compare_tflite(saved_model_dir, tflite_model, images: np.ndarray) -> Dict[str, float]:
    """Disparity of a TFLite model vs the SavedModel on uint8 feed-size images ``[N, h, w, 3]``.

    Returns:
        ``max_abs`` (largest absolute difference) and ``mean_abs_rel_percent`` (mean of
        ``|tflite - saved| / saved``, in percent).
    """
    serve = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE_KEY]
    run = tflite_runner(tflite_model)
    reference = np.concatenate([serve(images=tf.constant(im[None]))["disparity"].numpy()
                                for im in images])
    lite = np.concatenate([run(im[None].astype(np.float32) / 255.0) for im in images])
    diff = np.abs(lite - reference)
    return {"max_abs": float(diff.max()),
            "mean_abs_rel_percent": float(100.0 * np.mean(diff / reference))}


def export_depth_model(depth_net: DepthNet, config: ModelConfig, export_dir,
                       model_name: str = "mdp", version: int = 1, overwrite: bool = False,
                       tflite: bool = False, tflite_quantize: Optional[str] = None,
                       calibration: Optional[np.ndarray] = None) -> ExportResult:
    """Writes the SavedModel ``<export_dir>/<model_name>/<version>/`` and, on request, TFLite
    models beside it (``<model_name>_v<version>[_<quantization>].tflite`` in
    ``<export_dir>/<model_name>/``, outside the version folder TF Serving loads).

    Args:
        depth_net, config: a loaded depth network and its config.
        export_dir, model_name, version: where to write.
        overwrite: replace an existing version folder (else ExportError).
        tflite: also write the float32 TFLite model.
        tflite_quantize: ``dynamic`` or ``int8``: also write a quantized TFLite model.
        calibration: float32 ``[N, height, width, 3]`` representative images for ``int8``.
    """
    target = version_dir(export_dir, model_name, version)
    if tflite_quantize not in (None, "dynamic", "int8"):
        raise ExportError(f"--tflite_quantize must be dynamic or int8, got {tflite_quantize!r}")
    if tflite_quantize == "int8" and (calibration is None or len(calibration) == 0):
        raise ExportError("--tflite_quantize=int8 needs calibration images "
                          "(--calibration_images)")
    check_target(target, overwrite)
    module = DepthServingModule(depth_net, config)
    result = ExportResult(write_saved_model(module, target, overwrite))
    stem = target.parent / f"{model_name}_v{int(version)}"
    if tflite:
        result.tflite_path = _write_bytes(Path(f"{stem}.tflite"), convert_tflite(module))
    if tflite_quantize:
        result.tflite_quantized_path = _write_bytes(
            Path(f"{stem}_{tflite_quantize}.tflite"),
            convert_tflite(module, tflite_quantize, calibration))
    return result


def _write_bytes(path: Path, data: bytes) -> Path:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    staging.replace(path)
    return path


# --- TF Serving's REST API ----------------------------------------------------------------------

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
