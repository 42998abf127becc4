"""bin/predict: images, folders and videos in; colour-mapped disparities and .npy files out."""

import json
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.cli import common
from monodepth_tf.cli.predict import PredictArgs, predict
from monodepth_tf.config import ModelConfig
from monodepth_tf.data.resize import resize_lanczos
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.inference import predictor
from monodepth_tf.inference.colormap import colorize_disparity, magma, magma_table
from monodepth_tf.weights.folder import build_networks, load_networks, save_weights_folder
from tests.helpers import PROJECT_ROOT
from tests.reference import load_npz, nhwc
from tests.zoo_server import closed_port_url


def street_image(seed: int, height: int = 96, width: int = 320) -> np.ndarray:
    """A smooth random RGB image ``[height, width, 3]`` uint8 with some edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform() + c * y))
                for c in range(3)]
    image = 0.5 + 0.35 * np.stack(channels, -1) + 0.1 * (x > rng.uniform(0.3, 0.7))[..., None]
    return np.clip(image * 255 + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def write_rgb(path, image) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random ResNet-18 folders at feed size 64x192: mono and stereo-trained."""
    root = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(11)
    config = ModelConfig(height=64, width=192, pose_model_type=None)
    depth, _ = build_networks(config, with_pose=False)
    mono = save_weights_folder(root / "mono", config, depth)
    config.use_stereo = True
    stereo = save_weights_folder(root / "stereo", config, depth)
    return {"mono": mono, "stereo": stereo}


@pytest.fixture(scope="module")
def network(weights):
    config, depth, _ = load_networks(weights["mono"], with_pose=False)
    return config, depth


def direct_scaled_disparity(network, image: np.ndarray) -> np.ndarray:
    """``[h, w]`` straight from the network: Lanczos to the feed size, forward, disp_to_depth."""
    config, depth = network
    x = resize_lanczos(image, config.height, config.width)[None].astype(np.float32) / 255.0
    disp = depth(tf.constant(x), training=False)[0][0, ..., 0]
    return disp_to_depth(disp, 0.1, 100.0)[0].numpy()


def expected_colours(scaled_disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """The original's colour image, computed here: bilinear (half-pixel centres) to the input
    size, normalized from the minimum to the 95th percentile, magma entry floor(256 x)."""
    def axis(n_in, n_out):
        x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(x).astype(int)
        return low, np.minimum(low + 1, n_in - 1), x - low

    r0, r1, fr = axis(scaled_disp.shape[0], height)
    c0, c1, fc = axis(scaled_disp.shape[1], width)
    d = scaled_disp.astype(np.float64)
    rows = d[r0] * (1 - fr)[:, None] + d[r1] * fr[:, None]
    big = rows[:, c0] * (1 - fc) + rows[:, c1] * fc
    x = (big - big.min()) / (np.percentile(big, 95) - big.min())
    table = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None],
                              cv2.COLORMAP_MAGMA)[:, 0, ::-1]
    return table[np.clip(np.floor(x * 256), 0, 255).astype(int)]


# ---- the required reference check ---------------------------------------------------------

@pytest.mark.parametrize("runtime", ["tensorflow", "openvino"])
def test_reference_weights_predict_the_reference_scaled_disparity(reference_dir, tmp_path,
                                                                  runtime):
    forward = load_npz(reference_dir, "forward.npz")
    image = nhwc(forward["full/input"])[0] * 255.0
    assert np.abs(image - np.round(image)).max() < 1e-4  # the fixture is 8-bit: PNG is lossless
    write_rgb(tmp_path / "full.png", np.round(image).astype(np.uint8))
    predict(PredictArgs(image_path=str(tmp_path / "full.png"),
                        load_weights_folder=str(reference_dir), runtime=runtime))
    saved = np.load(tmp_path / "full_disp.npy")
    assert saved.shape == (1, 1, 192, 640) and saved.dtype == np.float32
    # The reference is float32-limited: its disparity agrees with ours to ~6.6e-5, i.e. ~6.6e-4
    # in scaled disparity (x (1/0.1 - 1/100)); 1e-3 leaves room for that, not for a wrong resize
    # or depth range (the image is already at the feed size, so no resize happens).
    np.testing.assert_allclose(saved, forward["full/scaled_disp"], atol=1e-3)
    assert read_rgb(tmp_path / "full_disp.jpeg").shape == (192, 640, 3)


def test_reference_weights_on_the_original_photo(shared, reference_dir, tmp_path):
    """The whole path from the JPEG: ``full/input`` is the original's Lanczos resize of
    test_image.jpg (638x235), which our resize reproduces bit for bit (test_data_resize)."""
    forward = load_npz(reference_dir, "forward.npz")
    predict(PredictArgs(image_path=str(shared / "reference" / "test_image.jpg"),
                        load_weights_folder=str(reference_dir), output_dir=str(tmp_path)))
    saved = np.load(tmp_path / "test_image_disp.npy")
    np.testing.assert_allclose(saved, forward["full/scaled_disp"], atol=1e-3)  # as above
    assert read_rgb(tmp_path / "test_image_disp.jpeg").shape == (235, 638, 3)


# ---- images and folders ---------------------------------------------------------------------

def test_openvino_runtime_predicts_the_networks_disparity(weights, network, tmp_path):
    """--runtime openvino: the same files, the disparity within float32 rounding of the
    network's (OpenVINO in float32), three images in batches of two."""
    images = [street_image(seed) for seed in (1, 2, 3)]
    for i, image in enumerate(images):
        write_rgb(tmp_path / f"{i}.png", image)
    written = predict(PredictArgs(image_path=str(tmp_path), ext="png", batch_size=2,
                                  load_weights_folder=str(weights["mono"]), runtime="openvino"))
    assert len(written) == 6
    for i, image in enumerate(images):
        saved = np.load(tmp_path / f"{i}_disp.npy")
        assert saved.shape == (1, 1, 64, 192) and saved.dtype == np.float32
        np.testing.assert_allclose(saved[0, 0], direct_scaled_disparity(network, image),
                                   rtol=1e-5, atol=1e-6)


def test_openvino_runtime_without_openvino_is_refused_before_loading(tmp_path, monkeypatch):
    assert common.RUNTIMES == predictor.RUNTIMES  # the flag's choices (named without TF)
    with pytest.raises(ValueError, match="--runtime must be one of tensorflow, openvino"):
        predictor.DisparityPredictor(None, ModelConfig(), "onnx")
    monkeypatch.setitem(sys.modules, "openvino", None)
    write_rgb(tmp_path / "one.png", street_image(0))
    with pytest.raises(ValueError) as error:
        predict(PredictArgs(image_path=str(tmp_path / "one.png"),
                            load_weights_folder=str(tmp_path / "no_such_folder"),
                            runtime="openvino"))
    assert str(error.value) == ("--runtime=openvino needs openvino, which cannot be imported: "
                                "pip install 'monodepth_tf[openvino]'")
    # and the library's own entry point, before it converts anything
    with pytest.raises(ValueError, match="--runtime=openvino needs openvino"):
        predictor.DisparityPredictor(None, ModelConfig(), "openvino")


def test_one_image(weights, network, tmp_path):
    image = street_image(0)
    write_rgb(tmp_path / "one.png", image)
    written = predict(PredictArgs(image_path=str(tmp_path / "one.png"),
                                  load_weights_folder=str(weights["mono"])))
    assert sorted(p.name for p in written) == ["one_disp.jpeg", "one_disp.npy"]
    expected = direct_scaled_disparity(network, image)
    saved = np.load(tmp_path / "one_disp.npy")
    assert saved.shape == (1, 1, 64, 192) and saved.dtype == np.float32
    np.testing.assert_allclose(saved[0, 0], expected, rtol=1e-5, atol=1e-6)
    jpeg = read_rgb(tmp_path / "one_disp.jpeg").astype(float)
    assert jpeg.shape == (96, 320, 3)  # the input's size, not the network's
    colours = expected_colours(expected, 96, 320).astype(float)
    assert np.abs(jpeg - colours).mean() < 3.0  # JPEG compression only


def test_folder_in_batches_with_metric_depth(weights, network, tmp_path):
    images = {f"frame{i}": street_image(10 + i) for i in range(5)}
    for name, image in images.items():
        write_rgb(tmp_path / f"{name}.jpg", image)
    write_rgb(tmp_path / "other.png", street_image(99))            # another extension
    write_rgb(tmp_path / "frame0_disp.jpg", street_image(98))      # an earlier output
    out = tmp_path / "out"
    written = predict(PredictArgs(image_path=str(tmp_path), ext="jpg", batch_size=2,
                                  load_weights_folder=str(weights["stereo"]),
                                  output_dir=str(out), pred_metric_depth=True))
    assert sorted(p.name for p in written) == sorted(
        f"{n}_{kind}" for n in images for kind in ("disp.jpeg", "depth.npy"))
    for name in images:
        decoded = read_rgb(tmp_path / f"{name}.jpg")  # what the tool read (JPEG is lossy)
        depth = np.load(out / f"{name}_depth.npy")
        assert depth.shape == (1, 1, 64, 192)
        np.testing.assert_allclose(depth[0, 0], 5.4 / direct_scaled_disparity(network, decoded),
                                   rtol=1e-5)


def test_metric_depth_of_a_mono_model_warns(weights, tmp_path, capsys):
    write_rgb(tmp_path / "a.png", street_image(3))
    predict(PredictArgs(image_path=str(tmp_path / "a.png"), pred_metric_depth=True,
                        load_weights_folder=str(weights["mono"])))
    assert "warning: --pred_metric_depth" in capsys.readouterr().err
    assert (tmp_path / "a_depth.npy").is_file() and not (tmp_path / "a_disp.npy").exists()


# ---- video -----------------------------------------------------------------------------------

def test_video(weights, network, tmp_path):
    frames = [street_image(20 + i) for i in range(10)]
    source = tmp_path / "drive.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (320, 96))
    assert writer.isOpened(), "this OpenCV cannot write mp4v videos"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    capture = cv2.VideoCapture(str(source))
    assert capture.isOpened()
    decoded = []
    while (frame := capture.read())[0]:
        decoded.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(decoded) == 10

    written = predict(PredictArgs(image_path=str(source), batch_size=4,
                                  load_weights_folder=str(weights["mono"])))
    assert [p.name for p in written] == ["drive_disp.mp4"]
    capture = cv2.VideoCapture(str(written[0]))
    assert capture.isOpened()
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    out = []
    while (frame := capture.read())[0]:
        out.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(out) == 10 and out[0].shape == (96, 320, 3)
    for index in (0, 9):
        colours = expected_colours(direct_scaled_disparity(network, decoded[index]), 96, 320)
        assert np.abs(out[index].astype(float) - colours).mean() < 6.0  # mp4v compression


# ---- the colour map --------------------------------------------------------------------------

def test_magma_is_matplotlibs_orientation_and_monotonic(tmp_path):
    table = magma_table().astype(float)
    # matplotlib's magma at 0, 0.5 (entry 128) and 1, x 255
    np.testing.assert_allclose(table[[0, 128, 255]], [[0.37, 0.12, 3.54], [182.68, 54.82, 121.2],
                                                      [251.70, 252.82, 191.12]], atol=1.0)
    assert np.all(np.diff(table.sum(axis=1)) >= 0)  # darker to brighter
    np.testing.assert_array_equal(magma(np.array([-1.0, 0.0, 0.5, 0.99999, 1.0, 7.0])),
                                  magma_table()[[0, 0, 128, 255, 255, 255]])

    # a disparity ramp: near (large disparity) is bright, far is dark; saturates above p95
    ramp = np.tile(np.linspace(0.01, 10.0, 320), (96, 1))
    image = colorize_disparity(ramp)
    assert image.shape == (96, 320, 3) and image.dtype == np.uint8
    brightness = image.astype(float).sum(axis=2)[0]
    assert np.all(np.diff(brightness) >= 0) and brightness[0] < 10
    assert np.all(image[:, 305:] == magma_table()[255])
    path = tmp_path / "ramp.jpeg"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    decoded = read_rgb(path).astype(float).sum(axis=2).mean(axis=0)
    smooth = np.convolve(decoded, np.ones(9) / 9, mode="valid")
    assert np.all(np.diff(smooth[::8]) > -2.0)  # monotonic up to JPEG noise


# ---- bad input --------------------------------------------------------------------------------

def run_tool(*args):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "predict"), *args],
                          capture_output=True, text=True, timeout=300)


def assert_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def test_unreadable_image_exits_2_naming_it(weights, tmp_path):
    bad_image = tmp_path / "broken.jpg"
    bad_image.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert_error(run_tool("--image_path", str(bad_image), "--load_weights_folder",
                          str(weights["mono"])), str(bad_image))


def test_video_that_does_not_open_and_empty_folder(weights, tmp_path):
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with pytest.raises(ValueError, match=f"video {bad_video} cannot be opened"):
        predict(PredictArgs(image_path=str(bad_video), load_weights_folder=str(weights["mono"])))
    assert not (tmp_path / "broken_disp.mp4").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    write_rgb(empty / "a.png", street_image(1))
    with pytest.raises(ValueError, match=f"{empty} holds no .jpg images"):
        predict(PredictArgs(image_path=str(empty), load_weights_folder=str(weights["mono"])))


def test_weights_of_another_architecture(weights, tmp_path):
    folder = tmp_path / "r34"
    shutil.copytree(weights["mono"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_layers": 34}))
    write_rgb(tmp_path / "a.png", street_image(5))
    with pytest.raises(ValueError, match=str(folder / "encoder.weights.h5")):
        predict(PredictArgs(image_path=str(tmp_path / "a.png"), load_weights_folder=str(folder)))


def test_missing_input_and_weights_flags(weights, tmp_path):
    with pytest.raises(ValueError, match="nothing.png does not exist"):
        predict(PredictArgs(image_path=str(tmp_path / "nothing.png"),
                            load_weights_folder=str(weights["mono"])))
    write_rgb(tmp_path / "a.png", street_image(6))
    with pytest.raises(ValueError, match="exactly one of --load_weights_folder, --model_zoo and "
                                         "--model_name \\(none is set\\)"):
        predict(PredictArgs(image_path=str(tmp_path / "a.png")))


def test_model_zoo_name(weights, network, tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path / "zoo"))
    (tmp_path / "zoo").mkdir()
    name = "monodepth2_resnet18_kitti_stereo_640x192"
    image = street_image(7)
    write_rgb(tmp_path / "z.png", image)
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())  # offline: not in the cache
    with pytest.raises(OSError, match="cannot download model stereo_640x192: "):
        predict(PredictArgs(image_path=str(tmp_path / "z.png"), model_zoo=name))
    with pytest.raises(ValueError, match="known names"):
        predict(PredictArgs(image_path=str(tmp_path / "z.png"), model_zoo="resnet18"))
    (tmp_path / "zoo" / name).symlink_to(weights["stereo"])
    predict(PredictArgs(image_path=str(tmp_path / "z.png"), model_zoo=name,
                        pred_metric_depth=True))
    np.testing.assert_allclose(np.load(tmp_path / "z_depth.npy")[0, 0],
                               5.4 / direct_scaled_disparity(network, image), rtol=1e-5)
