"""OpenVINO export (monodepth_tf.export.openvino, bin/export --openvino): OpenVINO's disparity,
compiled in float32, equals the Keras network's (NumPy disp_to_depth in float64) on real images,
at any batch or a fixed one; the weights are stored in float32; the model goes beside the
SavedModel's version folder; without openvino, --openvino is refused in one line before
anything is written."""

import sys

import numpy as np
import openvino
import pytest

from monodepth_tf import export
from monodepth_tf.weights.folder import load_networks
from tests.helpers import SMALL
from tests.test_export_onnx import assert_follows_keras, keras_scaled_disparity, run_export


def test_any_batch_model_in_float32(small, feed_images, tmp_path):
    config, depth = small
    path = export.write_openvino(depth, config, tmp_path / "any.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["any.bin", "any.xml"]  # no staging
    model = openvino.Core().read_model(str(path))
    assert [p.get_any_name() for p in model.inputs] == ["images"]
    assert [p.get_any_name() for p in model.outputs] == ["disparity"]
    assert model.inputs[0].get_partial_shape().to_string() == "[?,64,192,3]"
    # float32 weights: the .bin holds every parameter in 4 bytes (float16 would be 2)
    parameters = sum(int(np.prod(v.shape)) for v in depth.variables
                     if "moving" not in v.path and "dispconv_1" not in v.path
                     and "dispconv_2" not in v.path and "dispconv_3" not in v.path)
    assert path.with_suffix(".bin").stat().st_size >= 4 * 0.98 * parameters
    for batch in (1, 3):
        assert_follows_keras(export.openvino_runner(path)(feed_images[:batch]), config, depth,
                             feed_images[:batch])


def test_runner_computes_in_float32_where_openvino_would_not(small, feed_images, tmp_path):
    """Compiled with OpenVINO's defaults the model may run in bfloat16 (on CPUs with AMX or
    AVX512_BF16); the runner's float32 hint keeps it within float32 rounding of Keras."""
    config, depth = small
    path = export.write_openvino(depth, config, tmp_path / "m.xml")
    compiled = openvino.Core().compile_model(str(path), "CPU", export.openvino.FLOAT32_CONFIG)
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
    default = openvino.Core().compile_model(str(path), "CPU")
    default_disparity = default({"images": feed_images})["disparity"]
    expected = keras_scaled_disparity(config, depth, feed_images)
    if default.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.bf16:
        # bfloat16 (8 bits of mantissa) is visibly off, far outside the runner's 1e-5
        assert np.abs(default_disparity / expected - 1).max() > 1e-4
    assert_follows_keras(export.openvino_runner(path)(feed_images), config, depth, feed_images)


def test_fixed_batch_model(small, feed_images, tmp_path):
    config, depth = small
    path = export.write_openvino(depth, config, tmp_path / "fixed.xml", batch_size=2)
    model = openvino.Core().read_model(str(path))
    assert model.inputs[0].get_partial_shape().to_string() == "[2,64,192,3]"
    # The runner feeds 3 images as two batches of 2 (the second filled up with a copy).
    assert_follows_keras(export.openvino_runner(path)(feed_images), config, depth, feed_images)
    with pytest.raises(export.ExportError, match="--openvino_batch_size must be at least 1"):
        export.write_openvino(depth, config, tmp_path / "zero.xml", batch_size=0)


def test_reference_network_follows_keras(reference_dir, feed_images, tmp_path):
    """The reference weights' logits amplify summation-order differences (see
    tests/test_export_onnx.py): bounded at 1e-3 relative, as there."""
    config, depth, _ = load_networks(reference_dir, with_pose=False)
    config.height, config.width = SMALL["height"], SMALL["width"]
    path = export.write_openvino(depth, config, tmp_path / "reference.xml")
    assert_follows_keras(export.openvino_runner(path)(feed_images), config, depth, feed_images,
                         rtol=1e-3)


def test_export_tool_writes_the_openvino_model_beside_the_version(small_folder, small,
                                                                  feed_images, tmp_path):
    result = run_export("--load_weights_folder", str(small_folder), "--export_dir",
                        str(tmp_path / "serving"), "--version", "3", "--openvino")
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = tmp_path / "serving" / "mdp"
    assert sorted(p.name for p in model_dir.iterdir()) == ["3", "mdp_v3.bin", "mdp_v3.xml"]
    path = model_dir / "mdp_v3.xml"
    line = next(line for line in result.stdout.splitlines() if line.startswith("OpenVINO -> "))
    assert line.startswith(f"OpenVINO -> {path}: disparity vs the SavedModel on 1 random-noise")
    assert float(line.split("max abs difference ")[1].split(",")[0]) < 1e-3, line
    config, depth = small
    assert_follows_keras(export.openvino_runner(path)(feed_images), config, depth, feed_images)


def test_export_tool_refuses_openvino_without_it(tmp_path):
    result = run_export("--load_weights_folder", str(tmp_path / "any"), "--export_dir",
                        str(tmp_path / "serving"), "--openvino", hide_module="openvino")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --openvino needs openvino, which cannot be imported: "
        "pip install 'monodepth_tf[openvino]'")
    assert not (tmp_path / "serving").exists()


def test_library_refuses_openvino_without_it(small, tmp_path, monkeypatch):
    config, depth = small
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(export.ExportError, match=r"pip install 'monodepth_tf\[openvino\]'"):
        export.export_depth_model(depth, config, tmp_path, openvino=True)
    assert list(tmp_path.iterdir()) == []


def test_openvino_batch_size_needs_openvino(tmp_path):
    result = run_export("--load_weights_folder", str(tmp_path / "any"), "--export_dir",
                        str(tmp_path / "serving"), "--openvino_batch_size", "2")
    assert result.returncode == 2
    assert "error: --openvino_batch_size needs --openvino" in result.stderr
