"""The tf.data pipeline on a real KITTI frame: scales, intrinsics, flips and colour jitter."""

import colorsys
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.pipeline import PipelineOptions, SampleLoader, _jitter, intrinsics, \
    make_dataset
from monodepth_tf.data.splits import SplitEntry

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


@pytest.fixture(scope="module")
def kitti_root(kitti_dir, tmp_path_factory):
    """A raw-layout tree whose frames 0..2 are all the one real frame (left and right)."""
    root = tmp_path_factory.mktemp("kitti")
    real = kitti_dir / "raw" / DRIVE
    for cam in ("image_02", "image_03"):
        folder = root / DRIVE / cam / "data"
        folder.mkdir(parents=True)
        for i in range(3):
            os.symlink(real / cam / "data" / "0000000001.png", folder / f"{i:010d}.png")
    return root


def dataset(root, augment, seed=0, frames=(0, -1, 1, "s"), side="l", size=(64, 192)):
    options = PipelineOptions(height=size[0], width=size[1], frame_ids=frames, augment=augment,
                              seed=seed)
    return make_dataset(KittiRawLayout(root, "png"), [SplitEntry(DRIVE, 1, side)], options,
                        batch_size=1, shuffle=False)


def first(data):
    return next(iter(data))


def pillow_scales(root, camera: str, mirrored: bool = False, size=(64, 192)):
    """The original's four network inputs of the real frame, float32 in [0, 1]: Pillow's
    Lanczos (``ANTIALIAS``) on 8-bit images, each scale from the previous one, after the flip
    (``Image.FLIP_LEFT_RIGHT`` of the full frame, as the original flips)."""
    image = Image.open(root / DRIVE / camera / "data" / "0000000001.png").convert("RGB")
    if mirrored:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    scales = []
    for s in range(4):
        image = image.resize((size[1] // 2 ** s, size[0] // 2 ** s), Image.LANCZOS)
        scales.append(np.asarray(image) / np.float32(255.0))
    return scales


def test_images_per_frame_and_scale_and_intrinsics(kitti_root):
    batch = first(dataset(kitti_root, augment=False))
    assert sorted(batch.color) == ["-1", "0", "1", "s"]
    for s in range(4):
        assert batch.color["0"][s].shape == (1, 64 // 2 ** s, 192 // 2 ** s, 3)
        K = batch.K[s].numpy()[0]
        w, h = 192 // 2 ** s, 64 // 2 ** s
        np.testing.assert_allclose(K[:2, :3], [[0.58 * w, 0, 0.5 * w], [0, 1.92 * h, 0.5 * h]],
                                   rtol=1e-6)
        np.testing.assert_allclose(K @ batch.inv_K[s].numpy()[0], np.eye(4), atol=1e-5)
    # each scale is the original's: Pillow's Lanczos on 8-bit images, scale 0 from the full
    # frame and scale s from scale s - 1, then divided by 255 (torchvision's ToTensor)
    for s, expected in enumerate(pillow_scales(kitti_root, "image_02")):
        np.testing.assert_array_equal(batch.color["0"][s].numpy()[0], expected)


def test_stereo_frame_is_the_other_camera_and_baseline_sign_follows_the_side(kitti_root):
    left = first(dataset(kitti_root, augment=False, side="l"))
    right = first(dataset(kitti_root, augment=False, side="r"))
    np.testing.assert_allclose(left.color["s"][0].numpy(), right.color["0"][0].numpy())
    assert left.stereo_T.numpy()[0, 0, 3] == pytest.approx(-0.1)
    assert right.stereo_T.numpy()[0, 0, 3] == pytest.approx(0.1)
    np.testing.assert_allclose(np.delete(left.stereo_T.numpy()[0].ravel(), 3),
                               np.delete(np.eye(4).ravel(), 3))


def test_flip_mirrors_every_frame_and_reverses_the_baseline(kitti_root):
    flips = 0
    for seed in range(8):
        batch = first(dataset(kitti_root, augment=True, seed=seed))
        flipped = batch.stereo_T.numpy()[0, 0, 3] > 0
        flips += flipped
        for key in batch.color:
            # the loss images are never colour-jittered: only flipped (before resizing, as the
            # original flips), so every scale is Pillow's resize of the mirrored frame
            camera = "image_03" if key == "s" else "image_02"
            for s, expected in enumerate(pillow_scales(kitti_root, camera, flipped)):
                np.testing.assert_array_equal(batch.color[key][s].numpy()[0], expected)
    assert 0 < flips < 8


def test_one_jitter_draw_per_sample_applied_to_network_inputs_only(kitti_root):
    jittered = 0
    for seed in range(8):
        batch = first(dataset(kitti_root, augment=True, seed=seed, frames=(0, -1, 1)))
        # frames 0, -1, 1 are the same picture here: one shared draw makes them equal
        np.testing.assert_allclose(batch.color_aug["-1"].numpy(), batch.color_aug["0"].numpy())
        np.testing.assert_allclose(batch.color_aug["1"].numpy(), batch.color_aug["0"].numpy())
        jittered += not np.allclose(batch.color_aug["0"].numpy(), batch.color["0"][0].numpy())
    assert 0 < jittered < 8


def test_same_seed_same_sample_different_seed_different_draws(kitti_root):
    a = first(dataset(kitti_root, augment=True, seed=3))
    b = first(dataset(kitti_root, augment=True, seed=3))
    np.testing.assert_array_equal(a.color_aug["0"].numpy(), b.color_aug["0"].numpy())
    loader = SampleLoader(PipelineOptions())
    draws = {tuple(loader.draws(tf.constant([s, 0], tf.int64))[2].numpy()) for s in range(5)}
    assert len(draws) == 5


def numpy_jitter(image, b, c, s, h):
    """torchvision's colour jitter semantics in float64."""
    grey = lambda x: x @ np.array([0.2989, 0.587, 0.114])  # noqa: E731
    image = np.clip(image * b, 0, 1)
    image = np.clip((image - grey(image).mean()) * c + grey(image).mean(), 0, 1)
    image = np.clip((image - grey(image)[..., None]) * s + grey(image)[..., None], 0, 1)
    out = np.empty_like(image)
    for idx in np.ndindex(image.shape[:2]):
        hue, sat, val = colorsys.rgb_to_hsv(*image[idx])
        out[idx] = colorsys.hsv_to_rgb((hue + h) % 1.0, sat, val)
    return out


def test_jitter_matches_a_float64_reference():
    image = np.random.default_rng(0).random((6, 7, 3))
    factors = np.array([1.15, 0.85, 1.1, 0.07])
    ours = _jitter(tf.constant(image, tf.float32), tf.constant(factors, tf.float32)).numpy()
    np.testing.assert_allclose(ours, numpy_jitter(image, *factors), atol=2e-3)


def test_intrinsics_of_the_reference_fixture_size():
    K = intrinsics(96, 320, 0)
    assert K[0, 0] == pytest.approx(185.6) and K[0, 2] == 160 and K[1, 1] == pytest.approx(184.32)


def test_validation_batches_carry_the_lidar_ground_truth(kitti_root, kitti_dir):
    root = kitti_root
    (root / "2011_09_26").mkdir(exist_ok=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        if not (root / "2011_09_26" / name).exists():
            os.symlink(kitti_dir / "raw" / "2011_09_26" / name, root / "2011_09_26" / name)
    velodyne = root / DRIVE / "velodyne_points" / "data"
    velodyne.mkdir(parents=True, exist_ok=True)
    if not (velodyne / "0000000001.bin").exists():
        os.symlink(kitti_dir / "raw" / DRIVE / "velodyne_points/data/0000000001.bin",
                   velodyne / "0000000001.bin")
    from monodepth_tf.data.pipeline import make_validation_dataset
    options = PipelineOptions(height=64, width=192, frame_ids=(0, -1, 1))
    data = make_validation_dataset(KittiRawLayout(root, "png"), [SplitEntry(DRIVE, 1, "l")],
                                   options, batch_size=1)
    batch, depth = next(iter(data))
    reference = np.load(kitti_dir / "reference" / "gt_depth_2011_09_26_drive_0000_0000000001.npz")
    np.testing.assert_array_equal(depth.numpy()[0], reference["cam2"])
    plain = first(dataset(root, augment=False, frames=(0, -1, 1)))
    np.testing.assert_array_equal(batch.color["0"][0].numpy(), plain.color["0"][0].numpy())
