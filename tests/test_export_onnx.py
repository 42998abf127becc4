"""ONNX export (monodepth_tf.export.onnx, bin/export --onnx): onnxruntime's disparity equals the
Keras network's (NumPy disp_to_depth in float64) on real images, at any batch or a fixed one;
the model goes beside the SavedModel's version folder; without the optional packages --onnx is
refused in one line before anything is written."""

import subprocess
import sys

import numpy as np
import onnxruntime
import pytest

from monodepth_tf import export
from monodepth_tf.weights.folder import load_networks
from tests.helpers import PROJECT_ROOT, SMALL, real_image_paths


@pytest.fixture(scope="module")
def any_batch_model(small, tmp_path_factory):
    """:func:`small`'s network written as an ONNX model of any batch."""
    config, depth = small
    return export.write_onnx(depth, config, tmp_path_factory.mktemp("any") / "any.onnx")


def keras_scaled_disparity(config, depth, images: np.ndarray) -> np.ndarray:
    """The Keras network called directly, disp_to_depth written out in float64: ``[B, h, w]``."""
    sigmoid = depth(images, training=False)[0][..., 0].numpy().astype(np.float64)
    low, high = 1.0 / config.max_depth, 1.0 / config.min_depth
    return low + (high - low) * sigmoid


def assert_follows_keras(disparity, config, depth, images, rtol: float = 1e-5) -> None:
    expected = keras_scaled_disparity(config, depth, images)
    assert disparity.shape == expected.shape and disparity.dtype == np.float32
    np.testing.assert_allclose(disparity, expected, rtol=rtol)


def test_reference_network_follows_keras(reference_dir, feed_images, tmp_path):
    """The reference network (random weights, randomized BatchNorm statistics) at 64x192: its
    disparity varies over a decade (measured 0.57..10), not the flat sigmoid of ~0.5 that
    fresh weights give; but it amplifies summation-order differences (TensorFlow's own graph
    and eager calls differ by up to 4e-4 relative on it, tests/test_export.py), measured
    1.1e-4 for onnxruntime here: bounded at 1e-3, still far below a wrong op's effect."""
    config, depth, _ = load_networks(reference_dir, with_pose=False)
    config.height, config.width = SMALL["height"], SMALL["width"]
    disparity = keras_scaled_disparity(config, depth, feed_images)
    assert disparity.max() / disparity.min() > 10
    path = export.write_onnx(depth, config, tmp_path / "reference.onnx")
    assert_follows_keras(export.onnx_runner(path)(feed_images), config, depth, feed_images,
                         rtol=1e-3)


@pytest.mark.parametrize("batch", [1, 3])
def test_any_batch_model_follows_keras_on_real_images(small, any_batch_model, feed_images,
                                                      batch):
    config, depth = small
    path = any_batch_model
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    assert feed.name == "images" and not isinstance(feed.shape[0], int)  # any batch
    assert feed.shape[1:] == [64, 192, 3] and feed.type == "tensor(float)"
    output = session.get_outputs()[0]
    assert len(session.get_outputs()) == 1 and output.name == "disparity"
    assert output.shape[1:] == [64, 192] and output.type == "tensor(float)"
    images = feed_images[:batch]
    disparity = session.run(None, {"images": images})[0]
    assert_follows_keras(disparity, config, depth, images)
    assert sorted(p.name for p in path.parent.iterdir()) == ["any.onnx"]  # no staging file left


def test_fixed_batch_model(small, feed_images, tmp_path):
    config, depth = small
    path = export.write_onnx(depth, config, tmp_path / "fixed.onnx", batch_size=2)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [2, 64, 192, 3]
    disparity = session.run(None, {"images": feed_images[:2]})[0]
    assert_follows_keras(disparity, config, depth, feed_images[:2])
    with pytest.raises(Exception, match="images"):  # onnxruntime refuses another batch
        session.run(None, {"images": feed_images})
    # The runner feeds 3 images as two batches of 2 (the second filled up with a copy).
    assert_follows_keras(export.onnx_runner(path)(feed_images), config, depth, feed_images)
    with pytest.raises(export.ExportError, match="--onnx_batch_size must be at least 1"):
        export.write_onnx(depth, config, tmp_path / "zero.onnx", batch_size=0)


def run_export(*args, hide_module=None):
    """``bin/export args`` in a fresh interpreter; ``hide_module``: a module whose import fails
    there (``sys.modules[name] = None``), as when it is not installed."""
    tool = PROJECT_ROOT / "bin" / "export"
    code = ("import runpy, sys\n"
            f"if {hide_module!r}: sys.modules[{hide_module!r}] = None\n"
            f"sys.argv = [{str(tool)!r}] + {list(args)!r}\n"
            f"runpy.run_path({str(tool)!r}, run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=PROJECT_ROOT)


def test_export_tool_writes_the_onnx_model_beside_the_version(small_folder, small,
                                                              feed_images, shared, tmp_path):
    calibration = tmp_path / "images"
    calibration.mkdir()
    for i, path in enumerate(real_image_paths(shared)):
        (calibration / f"{i}{path.suffix}").symlink_to(path)
    result = run_export("--load_weights_folder", str(small_folder), "--export_dir",
                        str(tmp_path / "serving"), "--version", "4", "--onnx",
                        "--calibration_images", str(calibration))
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = tmp_path / "serving" / "mdp"
    assert sorted(p.name for p in model_dir.iterdir()) == ["4", "mdp_v4.onnx"]
    path = model_dir / "mdp_v4.onnx"
    line = next(line for line in result.stdout.splitlines() if line.startswith("ONNX -> "))
    assert line.startswith(f"ONNX -> {path}: disparity vs the SavedModel on 3 image(s)")
    # the same network as the SavedModel: the printed difference is summation order only
    assert float(line.split("max abs difference ")[1].split(",")[0]) < 1e-3, line
    config, depth = small  # the folder's network, at its feed size, any batch
    assert_follows_keras(export.onnx_runner(path)(feed_images), config, depth, feed_images)


@pytest.mark.parametrize("module", ["tf2onnx", "onnxruntime"])
def test_export_tool_refuses_onnx_without_the_extra(tmp_path, module):
    result = run_export("--load_weights_folder", str(tmp_path / "any"), "--export_dir",
                        str(tmp_path / "serving"), "--onnx", hide_module=module)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --onnx needs tf2onnx, onnx, onnxruntime, and {module} cannot be imported: "
        "pip install 'monodepth_tf[onnx]'")
    assert not (tmp_path / "serving").exists()  # refused before the folder is even looked at


def test_library_refuses_onnx_without_the_extra(small, tmp_path, monkeypatch):
    config, depth = small
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(export.ExportError, match=r"pip install 'monodepth_tf\[onnx\]'"):
        export.export_depth_model(depth, config, tmp_path, onnx=True)
    assert list(tmp_path.iterdir()) == []  # refused before the SavedModel is written


def test_onnx_batch_size_needs_onnx(tmp_path):
    result = run_export("--load_weights_folder", str(tmp_path / "any"), "--export_dir",
                        str(tmp_path / "serving"), "--onnx_batch_size", "2")
    assert result.returncode == 2
    assert "error: --onnx_batch_size needs --onnx" in result.stderr
