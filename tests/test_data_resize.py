"""The one resize policy: Pillow-exact Lanczos in NumPy and TensorFlow (static and dynamic
sizes) against Pillow itself on real KITTI frames, the reference's network input, a float64
formula; the exact uint8 -> float conversion; the bilinear resize back."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from monodepth_tf.data.resize import (MAX_TAPS, MAX_TAPS_TWO_PARTS, lanczos_taps, lanczos_taps_tf,
                                      network_input, resize_bilinear, resize_lanczos,
                                      resize_lanczos_tf, to_float, vertical_pass_first)
from tests.reference import load_npz, nhwc

RAW = "raw/2011_09_26/2011_09_26_drive_0000_sync/image_0{}/data/0000000001.png"
ODOMETRY = "odometry/sequences/00/image_{}/000000.png"
DYNAMIC = [tf.TensorSpec([None, None, None, None], tf.uint8)]


def pillow(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pillow's own Lanczos (``Image.LANCZOS``, the original's ``ANTIALIAS``) on uint8."""
    squeeze = image.ndim == 3 and image.shape[2] == 1
    resized = Image.fromarray(image[..., 0] if squeeze else image).resize(
        (width, height), Image.LANCZOS)
    return np.asarray(resized)[..., None] if squeeze else np.asarray(resized)


def dynamic_resize(height: int, width: int):
    """resize_lanczos_tf under tf.function with unknown batch, height, width and channels."""
    return tf.function(lambda images: resize_lanczos_tf(images, height, width),
                       input_signature=DYNAMIC)


def every_implementation(image: np.ndarray, height: int, width: int):
    """``{name: [h, w, C] uint8}``: NumPy, TF with static sizes, TF with dynamic sizes."""
    return {"numpy": resize_lanczos(image, height, width),
            "tf static": resize_lanczos_tf(image, height, width).numpy(),
            "tf dynamic": dynamic_resize(height, width)(image[None]).numpy()[0]}


@pytest.mark.parametrize("frame", [RAW.format(2), RAW.format(3), ODOMETRY.format(0)])
@pytest.mark.parametrize("feed", [(192, 640), (64, 192)])
def test_every_implementation_equals_pillow_on_real_frames(kitti_dir, frame, feed):
    """The feed size from the full frame (1242x375 raw colour, 1241x376 odometry grey), then
    the original's scales 1..3, each from the previous one: bit for bit."""
    image = np.asarray(Image.open(kitti_dir / frame))
    image = image if image.ndim == 3 else image[..., None]
    assert image.shape[:2] in [(375, 1242), (376, 1241)]
    for s in range(4):
        height, width = feed[0] // 2 ** s, feed[1] // 2 ** s
        expected = pillow(image, height, width)
        for name, got in every_implementation(image, height, width).items():
            assert got.shape == expected.shape, name
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} at scale {s}")
        image = expected


def test_tf_equals_pillow_on_random_sizes_batches_and_both_pass_orders():
    rng = np.random.default_rng(3)
    orders = set()
    for trial in range(12):
        in_h, in_w = (int(v) for v in rng.integers(1, 260, 2))
        height = int(rng.integers(in_h // 40 + 1, 300))
        width = int(rng.integers(in_w // 40 + 1, 300))
        channels = 1 if trial % 4 == 0 else 3
        images = rng.integers(0, 256, (2, in_h, in_w, channels), dtype=np.uint8)
        got = dynamic_resize(height, width)(images).numpy()
        for image, resized in zip(images, got):
            np.testing.assert_array_equal(resized, pillow(image, height, width))
        orders.add(bool(vertical_pass_first(in_h, in_w, height, width)))
    assert orders == {True, False}


def test_in_graph_taps_equal_numpys_over_many_sizes():
    """The fixed-point weights the SavedModel computes at run time (float64 graph ops) equal
    the NumPy ones for every input size to 2500 pixels at the feed sizes and scales in use,
    and for sizes up to the shrink limit."""
    outs = (640, 320, 192, 160, 96, 80, 64, 48, 24)
    functions = {out: tf.function(lambda n, out=out: lanczos_taps_tf(n, out),
                                  input_signature=[tf.TensorSpec([], tf.int32)]) for out in outs}
    cases = [(n, out) for out in outs for n in range(1, 2501, 1 if out in (640, 192) else 7)]
    cases += [(n, 192) for n in (3001, 4032, 6000, 8063)] + [(26879, 640)]
    for n, out in cases:
        index, weights = lanczos_taps(n, out)
        got_index, got_weights = functions[out](tf.constant(n))
        assert np.array_equal(got_weights.numpy(), weights), (n, out)
        assert np.array_equal(got_index.numpy(), index), (n, out)
    assert len(cases) > 6000


def extreme_images(height: int, width: int) -> np.ndarray:
    """``[4, height, width, 3]`` uint8: all white (the largest sums of the low weight parts),
    columns alternating black and white (the largest sums of each sign), random, and random
    black or white."""
    rng = np.random.default_rng(height * width)
    stripes = np.broadcast_to((np.arange(width) % 2 * 255)[None, :, None], (height, width, 3))
    return np.stack([np.full((height, width, 3), 255), stripes,
                     rng.integers(0, 256, (height, width, 3)),
                     rng.integers(0, 2, (height, width, 3)) * 255]).astype(np.uint8)


def test_both_weight_splits_are_exact_at_their_limits():
    """Two 11-bit weight parts up to 32 taps, three byte-sized parts beyond: static and
    dynamic sizes equal Pillow on the images that push the exact float32 sums furthest."""
    two, three = (100, 20), (107, 20)  # columns in, out: 31 and 35 taps
    assert lanczos_taps(*two)[1].shape[1] <= MAX_TAPS_TWO_PARTS < lanczos_taps(*three)[1].shape[1]
    for in_width, width in (two, three):
        images = extreme_images(9, in_width)
        expected = np.stack([pillow(image, 5, width) for image in images])
        np.testing.assert_array_equal(resize_lanczos_tf(images, 5, width).numpy(), expected)
        np.testing.assert_array_equal(dynamic_resize(5, width)(images).numpy(), expected)


@pytest.mark.parametrize("size, out", [((30, 50), (12, 20)), ((40, 30), (20, 61)),
                                       ((20, 40), (10, 40))])
def test_mirror_is_the_resize_of_the_mirrored_images(size, out):
    """Both pass orders and an unchanged width; static and dynamic sizes; False is a no-op."""
    images = extreme_images(*size)
    dynamic = tf.function(lambda x, m: resize_lanczos_tf(x, *out, mirror=m),
                          input_signature=DYNAMIC + [tf.TensorSpec([], tf.bool)])
    for mirror in (True, False):
        source = images[:, :, ::-1] if mirror else images
        expected = np.stack([pillow(np.ascontiguousarray(image), *out) for image in source])
        static = resize_lanczos_tf(images, *out, mirror=tf.constant(mirror)).numpy()
        np.testing.assert_array_equal(static, expected)
        np.testing.assert_array_equal(dynamic(images, tf.constant(mirror)).numpy(), expected)


def test_shrinks_beyond_the_exact_limit_are_refused():
    images = np.zeros((1, 8200, 4, 1), np.uint8)  # 8200 -> 192 rows: 261 taps
    assert lanczos_taps(8200, 192)[1].shape[1] > MAX_TAPS
    with pytest.raises(tf.errors.InvalidArgumentError, match="42x"):
        dynamic_resize(192, 4)(images)


def test_uint8_to_float_is_the_division_by_255_in_a_graph_too():
    values = np.arange(256, dtype=np.uint8)
    expected = values.astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(to_float(values).numpy(), expected)
    graph = tf.function(to_float, input_signature=[tf.TensorSpec([None], tf.uint8)])
    np.testing.assert_array_equal(graph(values).numpy(), expected)
    # the rewrite grappler makes of a division by a constant is an ulp off for some values
    assert np.any(values.astype(np.float32) * np.float32(1 / 255) != expected)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), np.uint8)
    np.testing.assert_array_equal(network_input(image, 20, 30).numpy(),
                                  pillow(image, 20, 30) / np.float32(255.0))


def test_bilinear_back_resize_has_half_pixel_centres():
    """2 -> 4 pixels: sources -0.25, 0.25, 0.75, 1.25 clamped (PyTorch's align_corners=False)."""
    maps = np.float32([[[[1.0], [3.0]]]])  # [1, 1, 2, 1]
    np.testing.assert_allclose(resize_bilinear(maps, (1, 4)).numpy()[0, 0, :, 0],
                               [1.0, 1.5, 2.5, 3.0])


def test_reproduces_the_reference_network_input_bit_for_bit(shared, reference_dir):
    """``full/input`` is the original's Lanczos resize of test_image.jpg (638x235 -> 640x192)."""
    image = cv2.cvtColor(cv2.imread(str(shared / "reference" / "test_image.jpg")),
                         cv2.COLOR_BGR2RGB)
    assert image.shape == (235, 638, 3)
    expected = nhwc(load_npz(reference_dir, "forward.npz")["full/input"])[0] * 255.0
    for name, got in every_implementation(image, 192, 640).items():
        np.testing.assert_array_equal(got, np.round(expected).astype(np.uint8), err_msg=name)
    # the other pass order (older Pillow) differs on this image by up to a dozen levels
    other = resize_lanczos(image, 192, 640, vertical_first=False).astype(int)
    assert np.abs(other - np.round(expected)).max() > 4


def float64_lanczos(image: np.ndarray, height: int, width: int, vertical_first: bool):
    """The same definition written directly: per output pixel, taps around
    (i + 0.5) * scale, weights sinc(d / s) sinc(d / 3s) normalized, float64, each pass
    rounded to uint8."""
    def one_axis(data, size, axis):
        data = np.moveaxis(data.astype(np.float64), axis, 0)
        n = data.shape[0]
        scale = n / size
        stretch = max(scale, 1.0)
        out = np.empty((size,) + data.shape[1:])
        for i in range(size):
            centre = (i + 0.5) * scale
            lo = max(int(centre - 3 * stretch + 0.5), 0)
            hi = min(int(centre + 3 * stretch + 0.5), n)
            d = (np.arange(lo, hi) - centre + 0.5) / stretch
            w = np.where(np.abs(d) < 3, np.sinc(d) * np.sinc(d / 3), 0.0)
            w /= w.sum()
            out[i] = np.tensordot(w, data[lo:hi], axes=1)
        return np.moveaxis(np.clip(np.round(out), 0, 255), 0, axis)

    axes = [(0, height), (1, width)] if vertical_first else [(1, width), (0, height)]
    for axis, size in axes:
        image = one_axis(image, size, axis)
    return image.astype(np.uint8)


@pytest.mark.parametrize("size, out", [((37, 53), (20, 30)), ((40, 61), (96, 320)),
                                       ((235, 638), (192, 640)), ((64, 64), (13, 100))])
def test_matches_the_float64_definition(size, out):
    rng = np.random.default_rng(sum(size))
    image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    vertical = vertical_pass_first(*size, *out)
    got = resize_lanczos(image, *out).astype(int)
    expected = float64_lanczos(image, *out, vertical).astype(int)
    # fixed-point weights (22 bits) only move values that sit near a half level
    assert np.abs(got - expected).max() <= 1
    assert np.mean(got == expected) > 0.97


def test_pass_order():
    assert not vertical_pass_first(375, 1242, 192, 640)  # KITTI: horizontal first
    assert vertical_pass_first(235, 638, 192, 640)      # the reference's test image
    assert not vertical_pass_first(100, 100, 150, 20)   # height grows: never vertical first
    assert vertical_pass_first(100, 100, 20, 61) and not vertical_pass_first(100, 100, 20, 60)


def test_identity_constant_and_taps():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_lanczos(image, 30, 40), image)
    flat = np.full((50, 70), 200, np.uint8)
    np.testing.assert_array_equal(resize_lanczos(flat, 13, 101), np.full((13, 101), 200))
    index, weights = lanczos_taps(100, 50)  # halving: 6 input pixels each side -> 13 taps
    assert index.shape == (50, 13)
    np.testing.assert_allclose(weights.sum(axis=1), 1 << 22, atol=8)


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        resize_lanczos(np.zeros((4, 4), np.float32), 2, 2)
    with pytest.raises(ValueError, match="0x3"):
        resize_lanczos(np.zeros((4, 4), np.uint8), 0, 3)
    with pytest.raises(ValueError, match="uint8"):
        resize_lanczos_tf(np.zeros((4, 4, 3), np.float32), 2, 2)
    with pytest.raises(ValueError, match="2x0"):
        resize_lanczos_tf(np.zeros((4, 4, 3), np.uint8), 2, 0)
