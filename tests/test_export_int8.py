"""The int8 TFLite export: the body (encoder and decoder) runs in int8, the disparity head (the
last 3x3 convolution with its padding, the sigmoid, disp_to_depth) in float32, and the model's
disparity follows the float SavedModel's on real images."""

from pathlib import Path

import keras
import pytest
import tensorflow as tf

from monodepth_tf import export
from monodepth_tf.config import ModelConfig
from monodepth_tf.weights.folder import build_networks
from tests.helpers import SMALL
from tests.helpers import real_image_paths as calibration_paths


def evaluation_paths(shared: Path):
    """The calibration images and the KITTI odometry frames, which calibration never sees."""
    odometry = shared / "kitti" / "odometry" / "sequences" / "00" / "image_0"
    return calibration_paths(shared) + sorted(odometry.glob("*.png"))


def ops_with_dtypes(model):
    """``[(op name, output dtype name)]`` of a TFLite model's ops, in execution order."""
    interpreter = tf.lite.Interpreter(model_content=model) if isinstance(model, bytes) else \
        tf.lite.Interpreter(model_path=str(model))
    dtypes = {t["index"]: t["dtype"].__name__ for t in interpreter.get_tensor_details()}
    return [(op["op_name"], dtypes[op["outputs"][0]]) for op in interpreter._get_ops_details()]


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory, shared):
    """A seeded random ResNet-18 depth network at 64x192, exported as a SavedModel with float32
    and int8 TFLite models (calibrated on the three calibration images and a crop of each)."""
    keras.utils.set_random_seed(0)
    config = ModelConfig(**SMALL, pose_model_type=None)
    depth, _ = build_networks(config, with_pose=False)
    calibration = export.calibration_images(calibration_paths(shared), config.height,
                                            config.width, crops_per_image=1)
    result = export.export_depth_model(depth, config, tmp_path_factory.mktemp("int8"),
                                       tflite=True, tflite_quantize="int8",
                                       calibration=calibration)
    images = export.feed_size_images(evaluation_paths(shared), config.height, config.width)
    return dict(config=config, depth=depth, calibration=calibration, result=result,
                images=images)


def test_int8_body_is_integer_and_the_disparity_head_float(int8_export):
    ops = ops_with_dtypes(int8_export["result"].tflite_quantized_path)
    convolutions = [dtype for name, dtype in ops if name == "CONV_2D"]
    # ResNet-18's 20 convolutions and the decoder's 10 in int8; the head's one in float32.
    assert convolutions == ["int8"] * 30 + ["float32"], convolutions
    names = [name for name, _ in ops]
    head = ops[len(names) - 1 - names[::-1].index("CONV_2D"):]  # from the last convolution
    assert [name for name, _ in head] == ["CONV_2D", "LOGISTIC", "STRIDED_SLICE", "MUL", "ADD"]
    assert {dtype for _, dtype in head} == {"float32"}
    # The head convolution reads the body's last activation without an int8 round trip: the
    # ops padding its input (slices, concatenations) run in float32 too.
    padding = ops[len(ops) - len(head) - 6:len(ops) - len(head)]
    assert padding == [("STRIDED_SLICE", "float32"), ("STRIDED_SLICE", "float32"),
                       ("CONCATENATION", "float32")] * 2, padding


def test_int8_disparity_follows_the_saved_model_on_real_images(int8_export):
    result, images = int8_export["result"], int8_export["images"]
    int8 = export.compare_tflite(result.saved_model_dir, result.tflite_quantized_path, images)
    # Measured on these 9 images (seeds 0-3 of the network): mean |int8 - float| / float
    # 0.044-0.058%, max abs 0.015-0.026 on scaled disparities of ~5 (seed 0: 0.044%, 0.015).
    assert int8["mean_abs_rel_percent"] < 0.1, int8
    assert int8["max_abs"] < 0.04, int8
    # The same body with the head quantized too (its output in 1/256 steps of the calibrated
    # range, as before the float head): measured 0.21-0.23% (max abs 0.04-0.09), so the bound
    # on the mean fails if the head is quantized again.
    module = export.DepthServingModule(int8_export["depth"], int8_export["config"])
    quantized_head = export.convert_tflite(module, "int8", int8_export["calibration"],
                                           float_head=False)
    assert [name for name, dtype in ops_with_dtypes(quantized_head)
            if dtype == "float32" and name in ("CONV_2D", "LOGISTIC")] == []
    quantized = export.compare_tflite(result.saved_model_dir, quantized_head, images)
    assert quantized["mean_abs_rel_percent"] > 0.15, quantized


def test_disparity_head_nodes_walk_back_to_the_last_convolution(int8_export):
    float_model = int8_export["result"].tflite_path.read_bytes()
    head = set(export.disparity_head_nodes(float_model))
    interpreter = tf.lite.Interpreter(model_content=float_model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    ops = [op["op_name"] for op in interpreter._get_ops_details()
           if names[op["outputs"][0]] in head]
    # The reflection padding (two rows, two columns: 4 slices and 2 concatenations), the
    # convolution, the sigmoid, the slice of channel 0 and disp_to_depth's scale and shift.
    assert sorted(ops) == sorted(["STRIDED_SLICE"] * 5 + ["CONCATENATION"] * 2 +
                                 ["CONV_2D", "LOGISTIC", "MUL", "ADD"]), ops
    assert len(head) == len(ops)  # every name is one op's output


def test_disparity_head_nodes_need_a_convolution():
    function = tf.function(lambda x: tf.sigmoid(x) * 2.0 + 1.0).get_concrete_function(
        tf.TensorSpec([1, 4], tf.float32))
    model = tf.lite.TFLiteConverter.from_concrete_functions([function]).convert()
    with pytest.raises(export.ExportError, match="no convolution feeds"):
        export.disparity_head_nodes(model)
    convolution = tf.function(lambda x: tf.nn.conv2d(x, tf.ones([3, 3, 2, 1]), 1, "SAME"))
    model = tf.lite.TFLiteConverter.from_concrete_functions(
        [convolution.get_concrete_function(tf.TensorSpec([1, 5, 5, 2], tf.float32))]).convert()
    assert len(export.disparity_head_nodes(model)) == 1  # the convolution, nothing before it
