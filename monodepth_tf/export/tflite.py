"""TFLite models of the depth network.

TFLite models run at the fixed feed size: float32 images ``[1, height, width, 3]`` in [0, 1]
-> scaled disparity ``[1, height, width]``, in float32, dynamic-range quantized or int8 quantized
(``convert_tflite`` also makes other fixed or polymorphic batch sizes). The int8 model runs its
body (encoder and decoder) in int8 and its disparity head (the last 3x3 convolution, the sigmoid
and ``disp_to_depth``'s scale and shift) in float32: quantized, the head's output would move in
steps of 1/256 of the disparity range, coarse for the small disparities of distant points (see
:func:`convert_tflite`).
"""

from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.resize import network_input, resize_lanczos_tf
from monodepth_tf.export.saved_model import (DepthServingModule, ExportError, INPUT_NAME,
                                             SIGNATURE_KEY)
from monodepth_tf.inference.batching import run_in_batches


TFLITE_QUANTIZATIONS = ("none", "dynamic", "int8")


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
    # (Traced for inference, the networks pad by slices and concatenations, which XNNPACK runs.)
    traced = tf.function(module.keras_disparity_at_feed_size).get_concrete_function(
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
    batch b runs the images b at a time
    (:func:`~monodepth_tf.inference.batching.run_in_batches`)."""
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

    return lambda images: run_in_batches(invoke, images, fixed_batch, "TFLite")


def feed_size_images(paths: Iterable, height: int, width: int) -> np.ndarray:
    """Images read from ``paths``, resized to the feed size as the network input is (Pillow's
    Lanczos, :func:`monodepth_tf.data.resize.resize_lanczos_tf`): uint8 ``[N, height, width, 3]``.
    At this size the SavedModel's resizing is the identity, so its output and a TFLite model's
    (fed ``images / 255``) are directly comparable."""

    return np.stack([resize_lanczos_tf(load_rgb(path), height, width).numpy()
                     for path in paths])


def compare_tflite(saved_model_dir, tflite_model, images: np.ndarray) -> Dict[str, float]:
    """Disparity of a TFLite model vs the SavedModel on uint8 feed-size images ``[N, h, w, 3]``
    (see :func:`compare_with_saved_model`)."""
    return compare_with_saved_model(saved_model_dir, tflite_runner(tflite_model), images)


def compare_with_saved_model(saved_model_dir, run: Callable[[np.ndarray], np.ndarray],
                             images: np.ndarray) -> Dict[str, float]:
    """Disparity of a feed-size model's runner (float32 ``[B, h, w, 3]`` in [0, 1] -> ``[B, h,
    w]``) vs the SavedModel on uint8 feed-size images ``[N, h, w, 3]``, one image at a time.

    Returns:
        ``max_abs`` (largest absolute difference) and ``mean_abs_rel_percent`` (mean of
        ``|model - saved| / saved``, in percent).
    """
    serve = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE_KEY]
    reference = np.concatenate([serve(images=tf.constant(im[None]))["disparity"].numpy()
                                for im in images])
    lite = np.concatenate([run(im[None].astype(np.float32) / 255.0) for im in images])
    diff = np.abs(lite - reference)
    return {"max_abs": float(diff.max()),
            "mean_abs_rel_percent": float(100.0 * np.mean(diff / reference))}
