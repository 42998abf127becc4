"""Geometry layers against hand-worked cases, float64 NumPy, and finite differences."""

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import geometry
from tests.reference import load_npz

RNG = np.random.default_rng(7)


def numpy_bilinear_border(image, px, py):
    """Reference sampler in float64: image [H, W, C], pixel coordinates px, py [N]."""
    height, width = image.shape[:2]
    px = np.clip(px, 0, width - 1)
    py = np.clip(py, 0, height - 1)
    x0 = np.floor(px).astype(int)
    y0 = np.floor(py).astype(int)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    ax, ay = (px - x0)[:, None], (py - y0)[:, None]
    return ((1 - ax) * (1 - ay) * image[y0, x0] + ax * (1 - ay) * image[y0, x1]
            + (1 - ax) * ay * image[y1, x0] + ax * ay * image[y1, x1])


def test_grid_at_pixel_centres_reads_those_pixels_exactly():
    # sizes with powers of two for H - 1 and W - 1, so the normalized grid itself is exact
    image = RNG.random((1, 5, 9, 3)).astype(np.float32)
    ys, xs = np.meshgrid(np.arange(5), np.arange(9), indexing="ij")
    grid = geometry.grid_from_pixels(tf.constant(np.stack([xs, ys], -1)[None], tf.float32), 5, 9)
    out = geometry.bilinear_sample(tf.constant(image), grid).numpy()
    np.testing.assert_array_equal(out, image)


def test_sampler_matches_float64_bilinear_with_border_clamping():
    image = RNG.random((2, 6, 9, 3))
    px = RNG.uniform(-3, 12, size=(2, 4, 5))
    py = RNG.uniform(-3, 9, size=(2, 4, 5))
    pix = tf.constant(np.stack([px, py], -1), tf.float64)
    out = geometry.bilinear_sample(tf.constant(image), geometry.grid_from_pixels(pix, 6, 9))
    for b in range(2):
        expected = numpy_bilinear_border(image[b], px[b].ravel(), py[b].ravel())
        np.testing.assert_allclose(out.numpy()[b].reshape(-1, 3), expected, atol=1e-12)


def test_sampler_hand_worked_midpoint_and_clamp():
    image = np.array([[0.0, 10.0], [20.0, 30.0]])[None, :, :, None]
    pix = tf.constant([[[[0.5, 0.5], [0.25, 0.0], [5.0, -4.0]]]], tf.float64)
    out = geometry.bilinear_sample(tf.constant(image), geometry.grid_from_pixels(pix, 2, 2))
    np.testing.assert_allclose(out.numpy().ravel(), [15.0, 2.5, 10.0])


def test_sampler_gradients_match_finite_differences():
    image = tf.constant(RNG.random((1, 5, 6, 2)))
    # keep points away from integer coordinates, where bilinear interpolation has kinks
    px = RNG.uniform(0.2, 4.8, size=(1, 3, 4))
    py = RNG.uniform(0.2, 3.8, size=(1, 3, 4))
    px, py = np.floor(px) + np.clip(px % 1, 0.1, 0.9), np.floor(py) + np.clip(py % 1, 0.1, 0.9)
    grid = geometry.grid_from_pixels(tf.constant(np.stack([px, py], -1)), 5, 6)
    theoretical, numerical = tf.test.compute_gradient(geometry.bilinear_sample, [image, grid])
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, atol=1e-7)


def intrinsics(batch=1, fx=50.0, fy=40.0, cx=15.5, cy=11.5):
    K = np.eye(4)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = fx, fy, cx, cy
    return np.repeat(K[None], batch, 0)


def test_backproject_then_project_with_identity_returns_the_pixel_grid():
    K = intrinsics(2)
    depth = RNG.uniform(1, 20, size=(2, 24, 32, 1))
    points = geometry.BackprojectDepth()(tf.constant(depth), tf.constant(np.linalg.inv(K)))
    # the z coordinate of each point is its depth
    np.testing.assert_allclose(points.numpy()[..., 2:3], depth, rtol=1e-12)
    grid = geometry.Project3D()(points, tf.constant(K), tf.constant(np.repeat(np.eye(4)[None], 2, 0)))
    pix = geometry.pixels_from_grid(grid, 24, 32).numpy()
    ys, xs = np.meshgrid(np.arange(24), np.arange(32), indexing="ij")
    np.testing.assert_allclose(pix[..., 0], np.broadcast_to(xs, (2, 24, 32)), atol=1e-6)
    np.testing.assert_allclose(pix[..., 1], np.broadcast_to(ys, (2, 24, 32)), atol=1e-6)


def test_projection_of_a_translated_camera_matches_hand_computation():
    # A point 10 m ahead of pixel (15.5, 11.5) (the principal point), camera moved 1 m right:
    # seen from the new camera the point is at x = -1, so u = cx + fx * (-1) / 10.
    K = intrinsics()
    depth = np.full((1, 24, 32, 1), 10.0)
    T = np.eye(4)[None].copy()
    T[0, 0, 3] = -1.0  # transform from target to source coordinates: x' = x - 1
    points = geometry.BackprojectDepth()(tf.constant(depth), tf.constant(np.linalg.inv(K)))
    grid = geometry.Project3D()(points, tf.constant(K), tf.constant(T))
    pix = geometry.pixels_from_grid(grid, 24, 32).numpy()
    # pixel column 15 sees x = (15 - 15.5) * 10 / 50 = -0.1 m; after the move x = -1.1 m
    assert pix[0, 11, 15, 0] == pytest.approx(15.5 + 50.0 * (-1.1) / 10.0, rel=1e-7)


def test_backprojection_and_projection_gradients_match_finite_differences():
    K = tf.constant(intrinsics())
    inv_K = tf.constant(np.linalg.inv(intrinsics()))
    axisangle = tf.constant([[0.02, -0.03, 0.01]], tf.float64)
    translation = tf.constant([[0.1, -0.05, 0.3]], tf.float64)

    def warp_grid(depth, aa, t):
        T = geometry.transformation_from_parameters(aa, t)
        return geometry.Project3D()(geometry.BackprojectDepth()(depth, inv_K), K, T)

    depth = tf.constant(RNG.uniform(2, 10, size=(1, 4, 5, 1)))
    theoretical, numerical = tf.test.compute_gradient(warp_grid, [depth, axisangle, translation])
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-8)


def rodrigues(v):
    angle = np.linalg.norm(v)
    k = v / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def test_rotation_and_transforms_match_float64_rodrigues():
    vecs = RNG.normal(size=(4, 3))
    trans = RNG.normal(size=(4, 3))
    R = geometry.rotation_from_axisangle(tf.constant(vecs)).numpy()
    T = geometry.transformation_from_parameters(tf.constant(vecs), tf.constant(trans)).numpy()
    T_inv = geometry.transformation_from_parameters(tf.constant(vecs), tf.constant(trans),
                                                    invert=True).numpy()
    for i in range(4):
        np.testing.assert_allclose(R[i, :3, :3], rodrigues(vecs[i]), atol=1e-7)
        np.testing.assert_allclose(T[i, :3, :3], rodrigues(vecs[i]), atol=1e-7)
        np.testing.assert_allclose(T[i, :3, 3], trans[i], atol=1e-12)
        np.testing.assert_allclose(T_inv[i], np.linalg.inv(T[i]), atol=1e-6)


def test_disp_to_depth_maps_sigmoid_range_onto_depth_range():
    scaled, depth = geometry.disp_to_depth(tf.constant([0.0, 1.0, 0.5], tf.float64), 0.1, 100.0)
    np.testing.assert_allclose(depth.numpy()[:2], [100.0, 0.1])
    np.testing.assert_allclose(scaled.numpy()[2], 0.01 + 0.5 * (10.0 - 0.01))


def test_sampler_and_warp_compile_with_xla():
    K = tf.constant(intrinsics(2), tf.float32)
    inv_K = tf.constant(np.linalg.inv(intrinsics(2)), tf.float32)
    image = tf.constant(RNG.random((2, 24, 32, 3)), tf.float32)
    depth = tf.constant(RNG.uniform(2, 10, size=(2, 24, 32, 1)), tf.float32)
    T = geometry.transformation_from_parameters(tf.constant([[0.01, 0.02, 0.0]] * 2),
                                                tf.constant([[0.1, 0.0, 0.2]] * 2))

    def warp(d):
        grid = geometry.Project3D()(geometry.BackprojectDepth()(d, inv_K), K, T)
        return geometry.bilinear_sample(image, grid)

    @tf.function(jit_compile=True)
    def compiled(d):
        with tf.GradientTape() as tape:
            tape.watch(d)
            out = warp(d)
            total = tf.reduce_sum(out)
        return out, tape.gradient(total, d)

    out, grad = compiled(depth)
    np.testing.assert_allclose(out.numpy(), warp(depth).numpy(), atol=1e-5)
    assert np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0


def test_layers_equal_their_functions():
    image = tf.constant(RNG.random((1, 5, 9, 3)), tf.float32)
    grid = tf.constant(RNG.uniform(-1.2, 1.2, size=(1, 4, 6, 2)), tf.float32)
    np.testing.assert_array_equal(geometry.BilinearSampler()(image, grid).numpy(),
                                  geometry.bilinear_sample(image, grid).numpy())


def test_depth_stays_a_correctly_rounded_division_under_grapplers_default_rewrites():
    # Prediction and evaluation graphs run with grappler's defaults (the Trainer turns two
    # passes off); there constant folding makes 1 / x an approximate reciprocal.
    previous = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(
        {"constant_folding": True, "arithmetic_optimization": True})
    try:
        disp = tf.constant(RNG.uniform(0.0, 1.0, size=(2, 30, 40, 1)), tf.float32)
        scaled, depth = tf.function(lambda d: geometry.disp_to_depth(d, 0.1, 100.0))(disp)
        plain = tf.function(lambda s: 1.0 / s)(scaled)
    finally:
        tf.config.optimizer.set_experimental_options(previous)
    expected = np.float32(1.0) / scaled.numpy()
    np.testing.assert_array_equal(depth.numpy(), expected)
    assert (plain.numpy() != expected).mean() > 0.05  # what the plain division becomes


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_transforms_of_the_originals_pose_outputs_equal_its_own_bit_for_bit(reference_dir,
                                                                            mode):
    forward = load_npz(reference_dir, "forward.npz")
    axisangle = tf.constant(forward[f"{mode}/axisangle"][:, 0])
    translation = tf.constant(forward[f"{mode}/translation"][:, 0])
    for invert, key in ((False, "T"), (True, "T_inv")):
        T = geometry.transformation_from_parameters(axisangle, translation, invert, exact=True)
        np.testing.assert_array_equal(T.numpy(), forward[f"{mode}/{key}"], err_msg=key)


def fused_length(vector: np.ndarray) -> np.float32:
    """``sqrt`` of ``x*x + y*y + z*z`` in float32, each addition fused with its product (the
    product and the sum exact in float64, then rounded once)."""
    v = vector.astype(np.float64)
    total = np.float32(v[0] * v[0])
    for k in range(1, len(v)):
        total = np.float32(v[k] * v[k] + np.float64(total))
    return np.sqrt(total)


def test_exact_rotation_angle_is_the_fused_length_which_the_plain_one_misses(reference_dir):
    losses = load_npz(reference_dir, "losses.npz")
    vectors = np.concatenate([losses[f"net/axisangle/0/{key}"][:, 0, 0] for key in ("-1", "1")])
    exact = geometry.transforms._vector_length(tf.constant(vectors), exact=True).numpy()[:, 0]
    plain = geometry.transforms._vector_length(tf.constant(vectors), exact=False).numpy()[:, 0]
    np.testing.assert_array_equal(exact, [fused_length(v) for v in vectors])
    # the last (frame 1, second sample) is the pose whose plain angle moved 340 grid values
    assert exact[3] != plain[3] and np.array_equal(exact[:3], plain[:3])
