"""The Keras API: the networks predict on NumPy images and survive a .keras round trip
unchanged; the geometry, sampler and SSIM layers work alone, serialized, on hand-worked cases;
the README's library example runs."""

import re
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import (SSIM, BackprojectDepth, BilinearSampler, DepthNet, PoseNet, Project3D,
                          disp_to_depth, load_networks)
from tests.helpers import PROJECT_ROOT
from tests.reference import load_npz, nhwc

def readme_example(readme: Path, heading: str = "## Library") -> Optional[str]:
    """The first ```python block after ``heading`` in a README, or None without one."""
    text = Path(readme).read_text() if Path(readme).is_file() else ""
    start = text.find(f"\n{heading}\n")
    if start < 0:
        return None
    match = re.search(r"```python\n(.*?)```", text[start:], re.DOTALL)
    return match.group(1) if match else None


def example_source() -> str:
    """The example to run: the first python block of README.md's "Library" section."""
    source = readme_example(PROJECT_ROOT / "README.md")
    assert source, "README.md has no python block under '## Library'"
    return source


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(example_source(), "README example", "exec"), namespace)
    assert namespace["disparities"][0].shape == (2, 64, 192, 1)
    assert namespace["disparities"][3].shape == (2, 8, 24, 1)
    assert namespace["axisangle"].shape == (2, 2, 1, 3)
    # depth = 1 / scaled disparity, scaled disparity in [1/100, 1/0.1]
    scaled = np.asarray(namespace["scaled_disp"])
    assert scaled.min() >= 0.01 and scaled.max() <= 10.0
    np.testing.assert_allclose(np.asarray(namespace["depth"]), 1.0 / scaled, rtol=1e-6)
    assert (tmp_path / "depth_net.keras").is_file()


def test_readme_example_extraction(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n```python\nfirst()\n```\n\n## Library\n\ntext\n\n```python\n"
                      "second()\n```\n\n```python\nthird()\n```\n")
    assert readme_example(readme) == "second()\n"
    assert readme_example(tmp_path / "absent.md") is None


# --- networks ----------------------------------------------------------------------------------------

def images(seed: int, channels: int = 3, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 64, 192, channels), np.float32)


def test_depth_net_predicts_on_numpy_images():
    net = DepthNet(18)
    batch = images(0, batch=3)
    predicted = net.predict(batch, batch_size=2, verbose=0)  # two predict batches
    direct = net(tf.constant(batch), training=False)
    assert [p.shape for p in predicted] == [(3, 64 // 2 ** s, 192 // 2 ** s, 1) for s in range(4)]
    for p, d in zip(predicted, direct):
        np.testing.assert_allclose(p, d.numpy(), atol=1e-6)
    assert 0 < predicted[0].min() and predicted[0].max() < 1  # sigmoid


@pytest.mark.parametrize("make, channels", [
    (lambda: DepthNet(18, scales=(0, 2)), 3),
    (lambda: PoseNet(18, 3, "posecnn"), 9),
])
def test_keras_file_round_trip_is_bitwise(tmp_path, make, channels):
    net = make()
    batch = images(1, channels)
    before = net.predict(batch, verbose=0)
    net.save(tmp_path / "net.keras")
    loaded = keras.saving.load_model(tmp_path / "net.keras")
    assert type(loaded) is type(net) and loaded.get_config() == net.get_config()
    after = loaded.predict(batch, verbose=0)
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


def test_reference_weights_survive_the_keras_file(reference_dir, tmp_path):
    _, depth, pose = load_networks(reference_dir)
    forward = load_npz(reference_dir, "forward.npz")
    full = nhwc(forward["full/input"])
    depth.save(tmp_path / "depth.keras")
    pose.save(tmp_path / "pose.keras")
    depth2 = keras.saving.load_model(tmp_path / "depth.keras")
    pose2 = keras.saving.load_model(tmp_path / "pose.keras")
    disp = depth2.predict(full, verbose=0)[0]
    np.testing.assert_array_equal(disp, depth.predict(full, verbose=0)[0])
    scaled, _ = disp_to_depth(disp, 0.1, 100.0)
    # the original's output, to the tolerance of test_convert_weights (9.99e-4 scaled disparity)
    np.testing.assert_allclose(np.asarray(scaled), nhwc(forward["full/scaled_disp"]),
                               atol=9.99e-4)
    pair = nhwc(forward["eval/pose_input"])
    axisangle, translation = pose2.predict(pair, verbose=0)
    expected_axisangle, expected_translation = pose.predict(pair, verbose=0)
    np.testing.assert_array_equal(axisangle, expected_axisangle)
    np.testing.assert_array_equal(translation, expected_translation)
    np.testing.assert_allclose(axisangle, forward["eval/axisangle"], atol=1e-4)


# --- layers alone ------------------------------------------------------------------------------------

def intrinsics(fx, fy, cx, cy, batch=1):
    K = np.array([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)
    K = np.repeat(K[None], batch, 0)
    return K, np.linalg.inv(K).astype(np.float32)


def test_backproject_hand_worked():
    K, inv_K = intrinsics(fx=2.0, fy=4.0, cx=1.0, cy=0.5)
    depth = np.full((1, 2, 3, 1), 3.0, np.float32)
    points = BackprojectDepth()(depth, inv_K).numpy()
    # pixel (x=2, y=1): ((2 - 1) / 2, (1 - 0.5) / 4, 1) * 3, then the homogeneous 1
    np.testing.assert_allclose(points[0, 1, 2], [1.5, 0.375, 3.0, 1.0], rtol=1e-6)
    # pixel (x=0, y=0): ((0 - 1) / 2, (0 - 0.5) / 4, 1) * 3
    np.testing.assert_allclose(points[0, 0, 0], [-1.5, -0.375, 3.0, 1.0], rtol=1e-6)


def test_backproject_then_project_with_identity_pose_returns_the_pixel_grid():
    height, width = 4, 5
    K, inv_K = intrinsics(fx=3.0, fy=2.5, cx=2.2, cy=1.4, batch=2)
    depth = np.random.default_rng(2).uniform(1.0, 50.0, (2, height, width, 1)).astype(np.float32)
    grid = Project3D()(BackprojectDepth()(depth, inv_K), K, np.repeat(np.eye(4)[None], 2, 0)
                       .astype(np.float32)).numpy()
    # normalized pixel centres: x in (-1, -0.5, 0, 0.5, 1), y in (-1, -1/3, 1/3, 1)
    x, y = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    np.testing.assert_allclose(grid[..., 0], np.broadcast_to(x, (2, height, width)), atol=1e-5)
    np.testing.assert_allclose(grid[..., 1], np.broadcast_to(y, (2, height, width)), atol=1e-5)


def test_project_hand_worked_translation():
    K, _ = intrinsics(fx=10.0, fy=10.0, cx=2.0, cy=1.0)
    point = np.array([[[[0.0, 0.0, 5.0, 1.0]]]], np.float32)  # on the optical axis, 5 m ahead
    T = np.eye(4, dtype=np.float32)[None]
    T[0, 0, 3] = 0.5  # the camera sees the point 0.5 m to the right: x = 2 + 10 * 0.5 / 5 = 3
    grid = Project3D(eps=0.0)(point, K, T).numpy()  # a 1 x 1 "image": normalize by W - 1 = 0
    pixels = Project3D(eps=0.0)(np.tile(point, (1, 3, 5, 1)), K, T).numpy()[0, 0, 0]
    assert np.isinf(grid[0, 0, 0, 0]) or np.isnan(grid[0, 0, 0, 0])
    # on a 3 x 5 image: x = (3 / 4 - 0.5) * 2 = 0.5, y = (1 / 2 - 0.5) * 2 = 0
    np.testing.assert_allclose(pixels, [0.5, 0.0], atol=1e-6)


def test_bilinear_sampler_hand_worked():
    image = np.array([[[0.0], [1.0]], [[2.0], [3.0]]], np.float32)[None]  # [1, 2, 2, 1]
    grid = np.array([[[[0.0, 0.0], [-1.0, -1.0], [1.0, -1.0], [3.0, 3.0], [-0.5, 1.0]]]],
                    np.float32)
    out = BilinearSampler()(image, grid).numpy()[0, 0, :, 0]
    # centre: mean of all four; corners; clamped beyond the border; x = 0.25 on the bottom row
    np.testing.assert_allclose(out, [1.5, 0.0, 1.0, 3.0, 2.25], atol=1e-6)


def test_ssim_hand_worked():
    x = np.full((1, 4, 4, 1), 0.25, np.float32)  # values (and squares) exact in binary, so
    y = np.full((1, 4, 4, 1), 0.75, np.float32)  # the variances come out exactly 0
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    # constant images: no variance, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    expected = (1 - (2 * 0.25 * 0.75 + c1) / (0.25 ** 2 + 0.75 ** 2 + c1) * c2 / c2) / 2
    np.testing.assert_allclose(SSIM()(x, y).numpy(), expected, rtol=1e-6)
    noise = np.random.default_rng(3).random((1, 5, 6, 3), np.float32)
    np.testing.assert_allclose(SSIM()(noise, noise).numpy(), 0.0, atol=1e-6)


def test_layers_serialize_and_compose_into_a_saved_model(tmp_path):
    """The layers in a functional warp model (depth + pose -> source image sampled in the
    target view), saved to .keras and loaded back."""
    for layer in (BackprojectDepth(name="b"), Project3D(eps=1e-5, name="p"),
                  BilinearSampler(name="s"), SSIM(name="ssim")):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    height, width = 8, 12
    depth_in = keras.Input((height, width, 1), name="depth")
    K_in, inv_K_in, T_in = (keras.Input((4, 4), name=n) for n in ("K", "inv_K", "T"))
    source_in = keras.Input((height, width, 3), name="source")
    target_in = keras.Input((height, width, 3), name="target")
    points = BackprojectDepth()(depth_in, inv_K_in)
    warped = BilinearSampler()(source_in, Project3D(eps=1e-5)(points, K_in, T_in))
    error = SSIM()(warped, target_in)
    model = keras.Model([depth_in, K_in, inv_K_in, T_in, source_in, target_in], [warped, error])

    rng = np.random.default_rng(4)
    K, inv_K = intrinsics(6.0, 6.0, 5.5, 3.5, batch=2)
    T = np.repeat(np.eye(4, dtype=np.float32)[None], 2, 0)
    T[:, 0, 3] = [0.0, 0.1]
    source = rng.random((2, height, width, 3), np.float32)
    inputs = [rng.uniform(2, 9, (2, height, width, 1)).astype(np.float32), K, inv_K, T, source,
              source]
    warped, error = model.predict(inputs, verbose=0)
    # identity pose: the source comes back (to the sampling grid's rounding), SSIM error ~0
    np.testing.assert_allclose(warped[0], source[0], atol=1e-4)
    np.testing.assert_allclose(error[0], 0.0, atol=1e-3)
    assert np.abs(warped[1] - source[1]).max() > 0.05  # the translated camera sees another view
    model.save(tmp_path / "warp.keras")
    loaded = keras.saving.load_model(tmp_path / "warp.keras")
    for a, b in zip(loaded.predict(inputs, verbose=0), (warped, error)):
        np.testing.assert_array_equal(a, b)
