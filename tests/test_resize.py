"""Pillow-exact Lanczos resizing: the reference's network input, a float64 formula, TF."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.resize import lanczos_taps, resize_lanczos, vertical_pass_first
from tests.reference import load_npz, nhwc


def test_reproduces_the_reference_network_input_bit_for_bit(shared, reference_dir):
    """``full/input`` is the original's Lanczos resize of test_image.jpg (638x235 -> 640x192)."""
    image = cv2.cvtColor(cv2.imread(str(shared / "reference" / "test_image.jpg")),
                         cv2.COLOR_BGR2RGB)
    assert image.shape == (235, 638, 3)
    expected = nhwc(load_npz(reference_dir, "forward.npz")["full/input"])[0] * 255.0
    np.testing.assert_array_equal(resize_lanczos(image, 192, 640),
                                  np.round(expected).astype(np.uint8))
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


def test_close_to_tensorflows_antialiased_lanczos3():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:375, 0:1242] / 100.0
    image = np.stack([np.sin(x * (1 + c) + y * (2 - c)) for c in range(3)], -1)
    image = np.clip(127.5 + 100 * image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    ours = resize_lanczos(image, 192, 640).astype(float)
    theirs = tf.image.resize(image.astype(np.float32), (192, 640), method="lanczos3",
                             antialias=True).numpy()
    assert np.abs(ours - theirs).mean() < 0.5


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        resize_lanczos(np.zeros((4, 4), np.float32), 2, 2)
    with pytest.raises(ValueError, match="0x3"):
        resize_lanczos(np.zeros((4, 4), np.uint8), 0, 3)
