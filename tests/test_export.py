"""bin/export and monodepth_tf.export: the SavedModel serves images of any size through
tf.saved_model.load, saved_model_cli and TF Serving's REST body format, matching the Keras
network run directly; TFLite models stay close to it; bad inputs are refused naming the path."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from monodepth_tf import export
from monodepth_tf.config import ModelConfig
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.resize import resize_bilinear, resize_lanczos
from monodepth_tf.networks import layers
from monodepth_tf.weights.folder import build_networks, load_networks, save_weights_folder
from tests.helpers import PROJECT_ROOT, SMALL, real_image_paths
from tests.zoo_server import closed_port_url

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"  # beside this Python


# --- NumPy references of the in-graph resizing ------------------------------------------

def bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """``[out, in]``: linear interpolation at half-pixel centres, ``(o + 0.5) * in/out - 0.5``,
    clamped at the borders."""
    weights = np.zeros((out_size, in_size))
    for o in range(out_size):
        src = (o + 0.5) * in_size / out_size - 0.5
        low = np.floor(src)
        frac = src - low
        weights[o, int(np.clip(low, 0, in_size - 1))] += 1.0 - frac
        weights[o, int(np.clip(low + 1, 0, in_size - 1))] += frac
    return weights


def resize_separable(maps: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``[B, H, W, ...]`` -> ``[B, h, w, ...]`` with row and column weight matrices, float64."""
    out = np.tensordot(rows, maps.astype(np.float64), axes=([1], [1]))  # [h, B, W, ...]
    out = np.tensordot(cols, out, axes=([1], [2]))  # [w, h, B, ...]
    return np.moveaxis(out, (0, 1), (2, 1))


def keras_reference(depth_net, config: ModelConfig, images: np.ndarray) -> np.ndarray:
    """The expected ``disparity`` ``[B, H, W]`` of uint8 ``images`` ``[B, H, W, 3]``: the NumPy
    Pillow-exact Lanczos resize to the feed size, the Keras network called directly, NumPy
    disp_to_depth and bilinear resize back (float64)."""
    _, h, w, _ = images.shape
    feed = np.stack([resize_lanczos(image, config.height, config.width)
                     for image in images]) / np.float32(255.0)
    sigmoid = depth_net(tf.constant(feed, tf.float32), training=False)[0][..., 0].numpy()
    scaled = 1 / config.max_depth + (1 / config.min_depth - 1 / config.max_depth) * sigmoid
    return resize_separable(scaled, bilinear_weights(config.height, h),
                            bilinear_weights(config.width, w))


def test_numpy_references_on_hand_worked_cases():
    # 2 -> 4: sources -0.25, 0.25, 0.75, 1.25, clamped at the borders.
    np.testing.assert_allclose(bilinear_weights(2, 4),
                               [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    maps = np.arange(12.0).reshape(1, 3, 4, 1)
    ours = resize_bilinear(maps, (5, 7)).numpy()
    np.testing.assert_allclose(
        resize_separable(maps, bilinear_weights(3, 5), bilinear_weights(4, 7)), ours, rtol=1e-6)


# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A weights folder of random networks at 64x192 (mono), its networks, and its export
    (SavedModel + float32 and dynamic-range TFLite models)."""
    root = tmp_path_factory.mktemp("export")
    config = ModelConfig(**SMALL, pose_model_type=None)
    depth, _ = build_networks(config, with_pose=False)
    folder = save_weights_folder(root / "weights", config, depth)
    config, depth, _ = load_networks(folder, with_pose=False)
    result = export.export_depth_model(depth, config, root / "serving", tflite=True,
                                       tflite_quantize="dynamic")
    loaded = tf.saved_model.load(str(result.saved_model_dir))
    return dict(root=root, folder=folder, config=config, depth=depth, result=result,
                serve=loaded.signatures["serving_default"],
                module=export.DepthServingModule(depth, config))


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def random_images(seed: int, batch: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3), np.uint8)


def test_layout_is_what_tf_serving_loads(small):
    result = small["result"]
    assert result.saved_model_dir == small["root"] / "serving" / "mdp" / "1"
    assert (result.saved_model_dir / "saved_model.pb").is_file()
    assert (result.saved_model_dir / "variables").is_dir()
    # readable by a server running as another user (not mkdtemp's private 0700)
    assert result.saved_model_dir.stat().st_mode & 0o055 == 0o055 & ~current_umask()
    # Written through a temporary sibling: nothing but the version and the .tflite files remain.
    assert sorted(p.name for p in result.saved_model_dir.parent.iterdir()) == [
        "1", "mdp_v1.tflite", "mdp_v1_dynamic.tflite"]


def test_signature_takes_uint8_images_of_any_size(small):
    serve = small["serve"]
    assert serve.structured_input_signature[1] == {
        "images": tf.TensorSpec([None, None, None, None], tf.uint8, name="images")}
    assert sorted(serve.structured_outputs) == ["depth", "disparity"]  # mono: no metric_depth


@pytest.mark.parametrize("mode,channels", [("L", 1), ("LA", 2), ("RGBA", 4)])
def test_gray_and_alpha_images_are_served_as_bin_predict_reads_their_files(small, tmp_path,
                                                                           mode, channels):
    """Such an image, sent as is, gives the disparity of the RGB image bin/predict decodes
    from its PNG file (gray repeated, alpha dropped), exactly."""
    pixels = np.random.default_rng(channels).integers(0, 256, (40, 120, channels), np.uint8)
    path = tmp_path / "image.png"
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(path)
    rgb = load_rgb(path)
    expected_rgb = np.repeat(pixels[..., :1], 3, -1) if channels < 3 else pixels[..., :3]
    np.testing.assert_array_equal(rgb, expected_rgb)
    served = small["serve"](images=tf.constant(pixels[None]))["disparity"].numpy()
    from_rgb = small["serve"](images=tf.constant(rgb[None]))["disparity"].numpy()
    np.testing.assert_array_equal(served, from_rgb)


def test_another_channel_count_is_refused_naming_it(small):
    images = np.zeros((1, 32, 96, 5), np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"images must have 3 channels \(RGB\), or 4 \(RGBA\), 1 or 2 "
                             r"\(gray, gray \+ alpha\); got\] \[5\]"):
        small["serve"](images=tf.constant(images))


@pytest.mark.parametrize("size", [(2, 50, 170), (1, 100, 300)])
def test_saved_model_matches_keras_network_and_numpy_resize(small, size):
    images = random_images(sum(size), *size)
    out = small["serve"](images=tf.constant(images))
    expected = keras_reference(small["depth"], small["config"], images)
    assert out["disparity"].shape == size and out["depth"].shape == size
    # The input resize is exact (the same uint8 pixels); the graph's convolutions sum in
    # another order than the eager call and the bilinear resize back is float32: measured
    # differences are ~1e-6 relative; 1e-4 leaves room for other CPUs while catching a wrong
    # filter (the area filter instead of Lanczos differs by >1e-2 here).
    np.testing.assert_allclose(out["disparity"].numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(out["depth"].numpy(), 1.0 / expected, rtol=1e-4)


def test_stereo_config_adds_metric_depth(small, tmp_path):
    config = ModelConfig(**SMALL, use_stereo=True, pose_model_type=None)
    module = export.DepthServingModule(small["depth"], config)
    out = module.serve(tf.constant(random_images(3, 1, 40, 90)))
    assert sorted(out) == ["depth", "disparity", "metric_depth"]
    np.testing.assert_allclose(out["metric_depth"].numpy(), 5.4 / out["disparity"].numpy(),
                               rtol=1e-6)


def run_saved_model_cli(saved_model_dir, inputs_flag: str, value: str, outdir: Path):
    assert SAVED_MODEL_CLI.is_file(), f"{SAVED_MODEL_CLI} is missing (pip install tensorflow)"
    result = subprocess.run(
        [str(SAVED_MODEL_CLI), "run", "--dir", str(saved_model_dir), "--tag_set", "serve",
         "--signature_def", "serving_default", inputs_flag, value, "--outdir", str(outdir)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: np.load(outdir / f"{name}.npy") for name in ("disparity", "depth")}


def test_saved_model_cli_runs_the_signature(small, tmp_path):
    assert SAVED_MODEL_CLI.is_file(), f"{SAVED_MODEL_CLI} is missing (pip install tensorflow)"
    images = random_images(7, 1, 24, 40)
    result = subprocess.run(
        [str(SAVED_MODEL_CLI), "run", "--dir", str(small["result"].saved_model_dir),
         "--tag_set", "serve", "--signature_def", "serving_default",
         "--input_exprs", f"images={images.tolist()!r}", "--outdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    direct = small["serve"](images=tf.constant(images))
    # The same graph, loaded by a session the way TF Serving loads it, in another process:
    # equal up to thread-dependent summation order.
    for name in ("disparity", "depth"):
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), direct[name].numpy(),
                                   rtol=1e-6)


def test_rest_row_format_body_goes_through_the_signature(small):
    images = random_images(11, 2, 32, 48)
    direct = small["serve"](images=tf.constant(images))
    bodies = [json.dumps({"instances": images.tolist()}),  # bare values: one input
              json.dumps({"instances": [{"images": im.tolist()} for im in images]})]
    for body in bodies:
        response = export.serving_request(small["serve"], body)
        response = json.loads(json.dumps(response))  # what the client receives
        assert len(response["predictions"]) == 2
        for i, prediction in enumerate(response["predictions"]):
            assert sorted(prediction) == ["depth", "disparity"]
            np.testing.assert_allclose(prediction["disparity"], direct["disparity"][i].numpy(),
                                       rtol=1e-6)
            np.testing.assert_allclose(prediction["depth"], direct["depth"][i].numpy(),
                                       rtol=1e-6)
    columnar = export.serving_request(small["serve"], {"inputs": images.tolist()})
    np.testing.assert_allclose(columnar["outputs"]["disparity"], direct["disparity"].numpy(),
                               rtol=1e-6)


def test_rest_body_errors_name_the_problem(small):
    images = random_images(12, 2, 32, 48)
    ragged = {"instances": [images[0].tolist(), images[1, :16].tolist()]}
    with pytest.raises(ValueError, match="same shape"):
        export.serving_request(small["serve"], ragged)
    with pytest.raises(ValueError, match="'images' takes uint8"):
        export.serving_request(small["serve"], {"instances": [(images[0] + 0.5).tolist()]})
    with pytest.raises(ValueError, match=r"takes \['images'\]"):
        export.serving_request(small["serve"], {"instances": [{"pixels": images[0].tolist()}]})
    with pytest.raises(ValueError, match="instances"):
        export.serving_request(small["serve"], "{}")


def test_tflite_models_follow_the_saved_model_on_real_images(small, shared):
    config = small["config"]
    images = export.feed_size_images(real_image_paths(shared), config.height, config.width)
    result = small["result"]
    float32 = export.compare_tflite(result.saved_model_dir, result.tflite_path, images)
    dynamic = export.compare_tflite(result.saved_model_dir, result.tflite_quantized_path, images)
    # Float32 TFLite runs the same arithmetic with other kernels (XNNPACK): measured ~1e-6 on a
    # disparity of ~0.1..10; 1e-4 absolute is still ~1e-5 relative.
    assert float32["max_abs"] < 1e-4, float32
    # Dynamic range: int8 weights of random networks; measured ~1%, bounded at 5%.
    assert dynamic["mean_abs_rel_percent"] < 5.0, dynamic
    assert dynamic["max_abs"] > float32["max_abs"]  # the quantized model is really quantized


def test_calibration_and_comparison_images_are_resized_as_the_network_input(shared):
    """int8 calibration images and the TFLite comparison images: Pillow's Lanczos on the uint8
    image (as every network input), then / 255 for calibration."""
    paths = real_image_paths(shared)
    calibration = export.calibration_images(paths, 64, 192, crops_per_image=0)
    feed = export.feed_size_images(paths, 64, 192)
    for path, calibrated, fed in zip(paths, calibration, feed):
        expected = np.asarray(Image.fromarray(load_rgb(path)).resize((192, 64), Image.LANCZOS))
        np.testing.assert_array_equal(fed, expected)
        np.testing.assert_array_equal(calibrated, expected / np.float32(255.0))


def test_tflite_runner_batches(small):
    images = random_images(5, 4, 64, 192).astype(np.float32) / 255.0
    fixed = export.tflite_runner(small["result"].tflite_path)  # converted at batch 1
    assert fixed(images).shape == (4, 64, 192)
    polymorphic = export.tflite_runner(export.convert_tflite(small["module"], batch_size=None))
    # same arithmetic, other kernels' blocking for another batch size
    np.testing.assert_allclose(polymorphic(images), fixed(images), rtol=1e-5)


def test_reflection_padding_for_tflite_is_exact(small):
    x = tf.constant(np.random.default_rng(6).random((2, 5, 7, 3), np.float32))
    for pad in (1, 2):
        np.testing.assert_array_equal(layers.reflect_pad_by_slices(x, pad).numpy(),
                                      tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]],
                                             mode="REFLECT").numpy())
    interpreter = tf.lite.Interpreter(model_path=str(small["result"].tflite_path))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "CONV_2D" in ops and "MIRROR_PAD" not in ops  # XNNPACK takes the padding too


# --- errors ------------------------------------------------------------------------------------

def test_existing_version_is_refused_unless_overwrite(small, tmp_path):
    target = tmp_path / "mdp" / "3"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    module = export.DepthServingModule(small["depth"], small["config"])
    with pytest.raises(export.ExportError, match=str(target)):
        export.write_saved_model(module, target)
    assert (target / "old.txt").is_file()
    export.write_saved_model(module, target, overwrite=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["3"]
    assert (target / "saved_model.pb").is_file() and not (target / "old.txt").exists()


def run_export(*args):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "export"), *args],
                          capture_output=True, text=True, timeout=600)


def test_export_tool_with_int8_and_its_errors(small, shared, tmp_path):
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i, path in enumerate(real_image_paths(shared)):
        shutil.copy(path, calibration / f"{i}{path.suffix}")
    serving = tmp_path / "serving"
    args = ["--load_weights_folder", str(small["folder"]), "--export_dir", str(serving),
            "--model_name", "small", "--version", "7"]
    result = run_export(*args, "--tflite_quantize", "int8", "--calibration_images",
                        str(calibration), "--calibration_crops", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (serving / "small" / "7" / "saved_model.pb").is_file()
    assert (serving / "small" / "small_v7_int8.tflite").is_file()
    assert "max abs difference" in result.stdout and "3 image(s)" in result.stdout

    again = run_export(*args)
    assert again.returncode == 2
    assert f"error: {serving / 'small' / '7'} already exists" in again.stderr

    missing = run_export("--load_weights_folder", str(tmp_path / "nowhere"),
                         "--export_dir", str(serving))
    assert missing.returncode == 2
    assert f"error: --load_weights_folder {tmp_path / 'nowhere'} does not exist" in missing.stderr
    assert not (serving / "mdp").exists()


def test_model_zoo_name_without_local_weights_names_the_folder(tmp_path):
    env = dict(os.environ, MONODEPTH_ZOO_DIR=str(tmp_path / "zoo"),
               MONODEPTH_ZOO_URL=closed_port_url())  # offline, and not in the cache
    name = "monodepth2_resnet18_kitti_stereo_640x192"
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "export"), "--model_zoo",
                             name, "--export_dir", str(tmp_path / "serving")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2
    assert "error: cannot download model stereo_640x192: " in result.stderr
    assert f"unzip it into {tmp_path / 'zoo'} " in result.stderr
    assert not (tmp_path / "serving" / "mdp").exists()


# --- the reference weights ------------------------------------------------------------------------

def test_reference_weights_export_serves_bin_predicts_disparity(reference_dir, shared, tmp_path):
    """A TF Serving user gets bin/predict's depth: the full-size KITTI frame (1242x375) and the
    original's test photo (638x235) through the SavedModel equal bin/predict's disparity (the
    same Lanczos input, the network, the same bilinear resize back) to 1e-4 relative, and the
    NumPy reference of the whole path (Pillow-exact resize, eager network, float64 bilinear)."""
    from monodepth_tf.cli.predict import disparity_at
    from monodepth_tf.inference.predictor import DisparityPredictor

    config, depth, _ = load_networks(reference_dir, with_pose=False)
    assert (config.height, config.width) == (192, 640)
    result = export.export_depth_model(depth, config, tmp_path)
    serve = tf.saved_model.load(str(result.saved_model_dir)).signatures["serving_default"]
    predictor = DisparityPredictor(depth, config)
    for path, size in zip(real_image_paths(shared), [(235, 638), (375, 1242)]):
        image = load_rgb(path)
        assert image.shape[:2] == size
        out = serve(images=tf.constant(image[None]))["disparity"].numpy()[0]
        assert out.shape == size
        bin_predict = disparity_at(predictor.predict_images([image])[0], *size)
        # The same uint8 network input on both sides; what remains is the graph's summation
        # order in the network and the resize back (measured: < 1e-5 relative).
        np.testing.assert_allclose(out, bin_predict, rtol=1e-4)
        # The network called eagerly sums its convolutions in another order than a graph, and
        # this network (random weights, randomized BatchNorm statistics) amplifies that to up
        # to 4e-4 relative (measured); 1e-3 bounds it and still catches a wrong resize filter.
        np.testing.assert_allclose(out, keras_reference(depth, config, image[None])[0],
                                   rtol=1e-3)
