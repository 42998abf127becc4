"""Pose evaluation: the ATE of a snippet on hand-worked cases, the chaining of frame-to-frame
transforms on known motions, bin/evaluate_pose on real KITTI odometry frames with the reference
weights (checked against an independent NumPy recomputation), the conventions end to end on the
synthetic world, and bad inputs."""

import contextlib
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.cli.evaluate_pose import PoseEvalArgs, evaluate
from monodepth_tf.config import ModelConfig
from monodepth_tf.synthetic import make_synthetic_kitti
from monodepth_tf.evaluation.pose import (PoseEvaluationError, accumulate, compute_ate,
                                          evaluate_poses, frame_to_frame_transforms,
                                          load_pose_network, predict_transforms, read_poses_file,
                                          relative_poses, snippet_frames)
from monodepth_tf.geometry.camera import BackprojectDepth, Project3D
from monodepth_tf.geometry.sampling import bilinear_sample
from monodepth_tf.geometry.transforms import transformation_from_parameters
from monodepth_tf.weights.folder import build_networks, save_weights_folder
from tests.helpers import PROJECT_ROOT
from tests.reference import load_npz, nhwc
from tests.zoo_server import closed_port_url

# ---- independent float64 helpers (written apart from the library) ---------------------------


def yaw(angle: float) -> np.ndarray:
    """Rotation by ``angle`` about the camera's y axis (KITTI cameras: x right, y down, z ahead)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rigid(rotation: np.ndarray, translation) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, translation
    return out


def rigid_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 by its structure, ``[R^T, -R^T t]`` (not np.linalg.inv)."""
    return rigid(m[:3, :3].T, -m[:3, :3].T @ m[:3, 3])


def loadtxt_poses(path) -> np.ndarray:
    rows = np.loadtxt(path, ndmin=2)
    return np.array([np.vstack([r.reshape(3, 4), [0, 0, 0, 1]]) for r in rows])


def ate_by_lstsq(gt: np.ndarray, pred: np.ndarray) -> float:
    """The snippet error with the scale from np.linalg.lstsq on the flattened positions."""
    moved = pred - pred[0] + gt[0]
    scale = np.linalg.lstsq(moved.reshape(-1, 1), gt.reshape(-1), rcond=None)[0][0]
    residual = scale * moved - gt
    return math.sqrt(float((residual ** 2).sum())) / len(gt)


def numpy_original_protocol(pred: np.ndarray, gt_poses: np.ndarray, short: bool = False):
    """The original's evaluation, re-written with loops: chain the predicted and the
    ground-truth frame-to-frame transforms alike, 5 frames a snippet. The ground truth's are
    written ``inv(inv(G[t]) G[t+1])`` with general inverses, as KITTI's 7-digit rotations are
    not exactly orthonormal."""
    n = len(gt_poses)
    gt_steps = [np.linalg.inv(np.linalg.inv(gt_poses[t]) @ gt_poses[t + 1]) for t in range(n - 1)]
    ates = []
    last = n - 1 if short else n - 4
    for i in range(last):
        tracks = []
        for steps in (pred, gt_steps):
            current, xyz = np.eye(4), [np.zeros(3)]
            for step in steps[i:i + 4]:
                current = current @ np.asarray(step, np.float64)
                xyz.append(current[:3, 3].copy())
            tracks.append(np.array(xyz))
        ates.append(ate_by_lstsq(tracks[1], tracks[0]))
    return np.array(ates)


# ---- 1. the ATE of a snippet ------------------------------------------------------------------


def test_identical_trajectories_have_zero_error():
    xyz = np.random.default_rng(0).normal(size=(5, 3))
    assert compute_ate(xyz, xyz) == pytest.approx(0.0, abs=1e-15)


def test_a_prediction_at_twice_the_scale_has_zero_error():
    gt = np.cumsum(np.random.default_rng(1).normal(size=(5, 3)), axis=0)
    gt -= gt[0]  # snippets start at their first camera
    assert compute_ate(gt, 2.0 * gt) == pytest.approx(0.0, abs=1e-14)
    assert compute_ate(gt, 0.25 * gt + np.array([3.0, -1.0, 7.0])) == pytest.approx(0.0, abs=1e-14)


def test_hand_worked_snippets():
    # gt along x; prediction [0,0,0], [1,1,0], [1,0,0]: sum(g.p) = 3, sum(p^2) = 3, scale 1,
    # residuals (0,0,0), (0,1,0), (-1,0,0) -> sqrt(2) / 3
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    pred = np.array([[0.0, 0, 0], [1, 1, 0], [1, 0, 0]])
    assert compute_ate(gt, pred) == pytest.approx(math.sqrt(2) / 3, rel=1e-15)
    assert compute_ate(gt, pred + 5.0) == pytest.approx(math.sqrt(2) / 3, rel=1e-15)
    # gt shifted by (1, 0, 0): the prediction moves onto it, p' = [1,0,0], [2,1,0], [2,0,0];
    # sum(g.p') = 1 + 4 + 6 = 11, sum(p'^2) = 1 + 5 + 4 = 10, scale 1.1; residuals
    # (0.1,0,0), (0.2,1.1,0), (-0.8,0,0): 0.01 + 0.04 + 1.21 + 0.64 = 1.9 -> sqrt(1.9) / 3
    assert compute_ate(gt + [1.0, 0, 0], pred) == pytest.approx(math.sqrt(1.9) / 3, rel=1e-14)


def test_ate_equals_a_least_squares_solution():
    rng = np.random.default_rng(2)
    for _ in range(20):
        gt, pred = rng.normal(size=(2, 5, 3))
        assert compute_ate(gt, pred) == pytest.approx(ate_by_lstsq(gt, pred), rel=1e-12)


# ---- 2. chaining and relative poses on known motions --------------------------------------------

STEP, TURN, FRAMES = 1.0, 0.05, 9


def circle_drive():
    """Each frame the camera moves 1 m ahead and turns by TURN: ``G[k+1] = G[k] S``, S the
    motion of camera k+1 in camera k. Returns (G [FRAMES, 4, 4], S)."""
    motion = rigid(yaw(TURN), [0.0, 0.0, STEP])
    poses = [rigid(yaw(0.3), [4.0, -1.65, 2.0])]  # any start pose
    for _ in range(FRAMES - 1):
        poses.append(poses[-1] @ motion)
    return np.array(poses), motion


def circle_positions(k: int) -> np.ndarray:
    """Closed form: camera k in camera 0, the sum of the steps (sin(j t), 0, cos(j t)) * STEP."""
    j = np.arange(k)
    return STEP * np.array([np.sin(j * TURN).sum(), 0.0, np.cos(j * TURN).sum()])


def test_frame_to_frame_transforms_of_a_known_motion():
    poses, motion = circle_drive()
    steps = frame_to_frame_transforms(poses)
    assert steps.shape == (FRAMES - 1, 4, 4)
    np.testing.assert_allclose(steps, np.broadcast_to(rigid_inverse(motion), steps.shape),
                               atol=1e-12)


def test_relative_poses_and_chained_motions_follow_the_circle():
    poses, motion = circle_drive()
    expected = np.array([circle_positions(k) for k in range(5)])
    np.testing.assert_allclose(relative_poses(poses, 2, 5)[:, :3, 3], expected, atol=1e-12)
    # the inverted frame-to-frame transforms, accumulated, are the same poses
    chained = accumulate(np.linalg.inv(frame_to_frame_transforms(poses)[2:6]))
    np.testing.assert_allclose(chained, relative_poses(poses, 2, 5), atol=1e-12)
    # the original's chaining of the transforms themselves: X[k] = inv(S)^k, whose translation
    # is -R(k t)^T p_k
    original = accumulate(frame_to_frame_transforms(poses)[2:6])
    for k in range(5):
        np.testing.assert_allclose(original[k, :3, 3], -yaw(k * TURN).T @ expected[k],
                                   atol=1e-12)


def test_exact_transforms_score_zero_in_both_protocols():
    poses, _ = circle_drive()
    exact = frame_to_frame_transforms(poses)
    for protocol in ("original", "relative"):
        result = evaluate_poses(exact, poses, protocol=protocol)
        assert result.num_snippets == FRAMES - 4
        assert np.max(result.ates) < 1e-12
    assert evaluate_poses(exact, poses, include_short=True).num_snippets == FRAMES - 1


def test_protocols_agree_without_rotation_and_match_the_numpy_loops():
    rng = np.random.default_rng(3)
    straight = np.array([rigid(np.eye(3), [0.1 * k, 0.0, 1.2 * k]) for k in range(8)])
    noisy = np.array([rigid(np.eye(3), t) for t in rng.normal([0, 0, -1.2], 0.2, size=(7, 3))])
    original = evaluate_poses(noisy, straight, protocol="original")
    relative = evaluate_poses(noisy, straight, protocol="relative")
    np.testing.assert_allclose(original.ates, relative.ates, rtol=1e-12)
    assert original.mean > 0.01
    # with rotations they differ, and the original one is the NumPy loop's
    poses, _ = circle_drive()
    turning = np.array([rigid(yaw(a), t) for a, t in
                        zip(rng.normal(-TURN, 0.02, FRAMES - 1),
                            rng.normal([0, 0, -1], 0.1, size=(FRAMES - 1, 3)))])
    original = evaluate_poses(turning, poses, protocol="original")
    np.testing.assert_allclose(original.ates, numpy_original_protocol(turning, poses), rtol=1e-12)
    assert original.mean == pytest.approx(np.mean(original.ates))
    assert original.std == pytest.approx(np.std(original.ates))
    relative = evaluate_poses(turning, poses, protocol="relative")
    assert np.max(np.abs(relative.ates - original.ates)) > 1e-4


def test_transforms_in_the_wrong_direction_are_caught_when_the_camera_turns():
    poses, _ = circle_drive()
    exact = frame_to_frame_transforms(poses)
    wrong = np.linalg.inv(exact)  # camera motion instead of camera t -> t+1 coordinates
    assert evaluate_poses(wrong, poses, protocol="relative").mean > 0.01
    # going straight, the reversal is only a sign, which the fitted scale absorbs
    straight = np.array([rigid(np.eye(3), [0, 0, 1.0 * k]) for k in range(6)])
    steps = frame_to_frame_transforms(straight)
    assert evaluate_poses(np.linalg.inv(steps), straight, protocol="relative").mean < 1e-12


def test_snippet_counts_follow_the_original_loop():
    assert snippet_frames(6) == [5, 5]
    assert snippet_frames(6, include_short=True) == [5, 5, 4, 3, 2]  # range(N - 1) snippets
    assert snippet_frames(1591) == [5] * 1587


def test_mismatched_or_too_short_inputs():
    poses, _ = circle_drive()
    steps = frame_to_frame_transforms(poses)
    with pytest.raises(PoseEvaluationError, match="9 ground-truth poses need 8"):
        evaluate_poses(steps[:-1], poses)
    with pytest.raises(PoseEvaluationError, match="fewer than one snippet of 5"):
        evaluate_poses(steps[:3], poses[:4])
    with pytest.raises(PoseEvaluationError, match="protocol"):
        evaluate_poses(steps, poses, protocol="sideways")


# ---- 3. the tool on real KITTI odometry frames with the reference weights ---------------------


def run_in_process(args: PoseEvalArgs):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        record = evaluate(args)
    return record, out.getvalue()


@pytest.fixture(scope="module")
def kitti_run(kitti_dir, reference_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("kitti_pose")
    args = PoseEvalArgs(load_weights_folder=str(reference_dir),
                        data_path=str(kitti_dir / "odometry"), sequences=["0"], camera=0,
                        png=True, batch_size=2, save_pred_poses=True, output_dir=str(out_dir))
    record, printed = run_in_process(args)
    return record, printed, out_dir


def test_reference_weights_on_kitti_sequence_00_match_numpy(kitti_run, kitti_dir):
    record, printed, out_dir = kitti_run
    pred = np.load(out_dir / "poses_00.npy")
    assert pred.shape == (5, 4, 4) and pred.dtype == np.float32
    rotations = pred[:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rotations @ np.transpose(rotations, (0, 2, 1)),
                               np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-5)
    gt = loadtxt_poses(kitti_dir / "odometry" / "poses" / "00.txt")
    ates = numpy_original_protocol(pred, gt)
    assert len(ates) == 2  # six frames: two 5-frame snippets
    seq = record["sequences"]["00"]
    assert seq["num_snippets"] == 2 and seq["num_frames"] == 6
    assert seq["ate_mean"] == pytest.approx(np.mean(ates), rel=1e-10)
    assert seq["ate_std"] == pytest.approx(np.std(ates), rel=1e-8, abs=1e-12)
    line = f"Trajectory error: {np.mean(ates):0.3f}, std: {np.std(ates):0.3f}"
    assert re.search(rf"^   {re.escape(line)}$", printed, re.M), printed
    # the original's loop also scores the three shorter snippets at the end
    short = evaluate_poses(pred, gt, include_short=True)
    np.testing.assert_allclose(short.ates, numpy_original_protocol(pred, gt, short=True),
                               rtol=1e-10)


def test_predicted_transforms_are_the_reference_forward_pass(reference_dir):
    """The reference network's pose outputs for two pairs: the transform built from the first
    output without inversion (forward.npz ``eval/T``) is what predict_transforms records."""
    forward = load_npz(reference_dir, "forward.npz")
    pairs = nhwc(forward["eval/pose_input"])  # [2, 96, 320, 6], values k / 255
    config, pose_net = load_pose_network(reference_dir)
    assert (config.pose_model_type, config.num_pose_frames) == ("separate_resnet", 2)
    for pair, expected in zip(pairs, forward["eval/T"]):
        frames = [np.round(pair[..., :3] * 255).astype(np.uint8),
                  np.round(pair[..., 3:] * 255).astype(np.uint8)]
        got = predict_transforms(pose_net, 96, 320, frames, batch_size=1)
        assert got.shape == (1, 4, 4)
        np.testing.assert_allclose(got[0], expected, atol=2e-5)


# ---- 4. the synthetic world seen as an odometry sequence --------------------------------------

SYN_H, SYN_W, SYN_FRAMES, SEQUENCE = 64, 192, 10, 7
DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


@pytest.fixture(scope="module")
def synthetic_odometry(tmp_path_factory):
    """A synthetic drive, and an odometry-layout view of it made of links:
    ``sequences/07/image_2/<6 digits>.png`` -> ``image_02/data/<10 digits>.png``,
    ``poses/07.txt`` -> the drive's ``poses.txt``."""
    world = tmp_path_factory.mktemp("synthetic_world")
    make_synthetic_kitti(world, seed=5, num_drives=1, frames_per_drive=SYN_FRAMES,
                         height=SYN_H, width=SYN_W)
    root = tmp_path_factory.mktemp("odometry_view")
    images = root / "sequences" / f"{SEQUENCE:02d}" / "image_2"
    images.mkdir(parents=True)
    for frame in range(SYN_FRAMES):
        (images / f"{frame:06d}.png").symlink_to(world / DRIVE / "image_02/data" /
                                                 f"{frame:010d}.png")
    (root / "poses").mkdir()
    (root / "poses" / f"{SEQUENCE:02d}.txt").symlink_to(world / DRIVE / "poses.txt")
    return world, root


def test_ground_truth_transforms_through_the_protocol_score_zero(synthetic_odometry):
    _, root = synthetic_odometry
    poses = read_poses_file(root / "poses" / f"{SEQUENCE:02d}.txt")
    assert poses.shape == (SYN_FRAMES, 4, 4)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-6)
    exact = frame_to_frame_transforms(poses)
    for protocol in ("original", "relative"):
        result = evaluate_poses(exact, poses, protocol=protocol)
        assert result.num_snippets == SYN_FRAMES - 4
        assert result.mean < 1e-12 and result.std < 1e-12
    # float32 transforms, as the network gives them, stay near zero
    assert evaluate_poses(exact.astype(np.float32), poses).mean < 1e-5


def calib_K(world: Path) -> np.ndarray:
    """4x4 intrinsics of camera 2 for 0-based pixel indices (KITTI's P is 1-based)."""
    line = next(l for l in (world / "2011_09_26/calib_cam_to_cam.txt").read_text().splitlines()
                if l.startswith("P_rect_02:"))
    P = np.array(line.split(":")[1].split(), float).reshape(3, 4)
    K = np.eye(4)
    K[:3, :3] = P[:, :3]
    K[0, 2] -= 1
    K[1, 2] -= 1
    return K


def test_the_ground_truth_transform_warps_like_the_training_loss(synthetic_odometry):
    """What the protocol calls T[t] is the matrix the training loss warps source frame +1 with:
    back-projecting frame t's exact depth, moving by T[t] and sampling frame t + 1 (the loss's
    BackprojectDepth -> Project3D -> bilinear sampling) reproduces frame t; the inverse does not."""
    from monodepth_tf.data.images import load_rgb

    world, root = synthetic_odometry
    frame = int((world / "splits/synthetic/test_files.txt").read_text().split()[1])
    with np.load(world / "splits/synthetic/gt_depths.npz") as npz:
        depth = npz["data"][0].astype(np.float32)
    poses = read_poses_file(root / "poses" / f"{SEQUENCE:02d}.txt")
    T = frame_to_frame_transforms(poses)[frame]
    K = calib_K(world)
    images = [load_rgb(world / DRIVE / "image_02/data" / f"{f:010d}.png").astype(np.float32) / 255
              for f in (frame, frame + 1)]
    points = BackprojectDepth()(tf.constant(depth[None, :, :, None]),
                                tf.constant(np.linalg.inv(K)[None], tf.float32))

    def error(transform):
        grid = Project3D()(points, tf.constant(K[None], tf.float32),
                           tf.constant(transform[None], tf.float32))
        warped = bilinear_sample(tf.constant(images[1][None]), grid)[0].numpy()
        inside = np.all(np.abs(grid[0].numpy()) <= 1, axis=-1)
        return np.median(np.abs(warped - images[0]).mean(axis=-1)[inside])

    good, reversed_ = error(T), error(np.linalg.inv(T))
    assert good < 0.02 and reversed_ > 3 * good, (good, reversed_)


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    """Random networks saved at the synthetic images' own size (no resizing at prediction)."""
    tf.keras.utils.set_random_seed(0)
    config = ModelConfig(height=SYN_H, width=SYN_W)
    depth, pose = build_networks(config)
    folder = tmp_path_factory.mktemp("weights") / "weights_0"
    save_weights_folder(folder, config, depth, pose)
    return folder, pose


def synthetic_args(root, out_dir, **weights) -> PoseEvalArgs:
    return PoseEvalArgs(data_path=str(root), eval_split=f"odom_{SEQUENCE}", png=True,
                        batch_size=4, save_pred_poses=True, output_dir=str(out_dir),
                        protocol="relative", **weights)


@pytest.fixture(scope="module")
def synthetic_run(synthetic_odometry, small_weights, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("synthetic_pose")
    record, printed = run_in_process(synthetic_args(synthetic_odometry[1], out_dir,
                                                    load_weights_folder=str(small_weights[0])))
    return record, printed, np.load(out_dir / f"poses_{SEQUENCE:02d}.npy")


def test_tool_on_the_colour_frames_of_the_synthetic_sequence(synthetic_odometry, small_weights,
                                                             synthetic_run):
    world, root = synthetic_odometry
    _, pose_net = small_weights
    record, printed, pred = synthetic_run
    assert pred.shape == (SYN_FRAMES - 1, 4, 4)
    # each transform is the network's first output on [frame t, frame t + 1], not inverted
    frames = [np.asarray(tf.io.decode_png(tf.io.read_file(str(p)))) for p in
              sorted((root / "sequences" / f"{SEQUENCE:02d}" / "image_2").glob("*.png"))]
    for t in (0, 5):
        pair = np.concatenate([frames[t], frames[t + 1]], axis=-1)[None] / np.float32(255)
        axisangle, translation = pose_net(tf.constant(pair, tf.float32), training=False)
        expected = transformation_from_parameters(axisangle[:, 0], translation[:, 0])[0]
        np.testing.assert_allclose(pred[t], expected.numpy(), atol=1e-5)
    gt = loadtxt_poses(world / DRIVE / "poses.txt")
    relative = []
    for i in range(SYN_FRAMES - 4):
        chained, xyz = np.eye(4), [np.zeros(3)]
        for step in pred[i:i + 4].astype(np.float64):
            chained = chained @ rigid_inverse(step)
            xyz.append(chained[:3, 3])
        truth = np.array([(rigid_inverse(gt[i]) @ gt[i + k])[:3, 3] for k in range(5)])
        relative.append(ate_by_lstsq(truth, np.array(xyz)))
    seq = record["sequences"][f"{SEQUENCE:02d}"]
    assert seq["num_snippets"] == SYN_FRAMES - 4
    assert seq["ate_mean"] == pytest.approx(np.mean(relative), rel=1e-6)
    assert seq["ate_std"] == pytest.approx(np.std(relative), rel=1e-5)
    assert f"Trajectory error: {np.mean(relative):0.3f}" in printed


def test_model_zoo_pose_name_reads_its_local_folder(synthetic_odometry, small_weights,
                                                    synthetic_run, tmp_path, monkeypatch):
    name = "monodepth2_resnet18_posenet_kitti_mono_640x192"
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / name).symlink_to(small_weights[0])
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path / "zoo"))
    record, _ = run_in_process(synthetic_args(synthetic_odometry[1], tmp_path / "out",
                                              model_zoo=name))
    np.testing.assert_array_equal(np.load(tmp_path / "out" / f"poses_{SEQUENCE:02d}.npy"),
                                  synthetic_run[2])
    assert record["sequences"] == {
        key: dict(value, pred_poses=str(tmp_path / "out" / f"poses_{SEQUENCE:02d}.npy"))
        for key, value in synthetic_run[0]["sequences"].items()}
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())  # offline, not in the cache
    with pytest.raises(OSError, match=re.escape(f"unzip it into {tmp_path / 'empty'} ")):
        run_in_process(PoseEvalArgs(model_zoo=name, data_path=str(synthetic_odometry[1]),
                                    sequences=["7"], png=True))


# ---- 5. bad inputs ---------------------------------------------------------------------------


def expect_error(match, **kwargs):
    with pytest.raises(ValueError, match=match):
        run_in_process(PoseEvalArgs(**kwargs))


def test_missing_sequence_poses_and_frames_are_named(synthetic_odometry, small_weights,
                                                     tmp_path):
    _, root = synthetic_odometry
    folder, _ = small_weights
    common = dict(load_weights_folder=str(folder), png=True)
    expect_error(re.escape(str(root / "sequences" / "09")) + " does not exist",
                 data_path=str(root), **common)  # default sequences 09 and 10
    view = tmp_path / "view"
    (view / "sequences").mkdir(parents=True)
    (view / "sequences" / "07").symlink_to(root / "sequences" / "07")
    expect_error("poses file " + re.escape(str(view / "poses" / "07.txt")) + " does not exist",
                 data_path=str(view), sequences=["7"], **common)
    (view / "poses").mkdir()
    lines = (root / "poses" / "07.txt").read_text().splitlines()
    (view / "poses" / "07.txt").write_text("\n".join(lines + lines[:2]) + "\n")  # 12 frames
    expect_error("frame " + re.escape(str(view / "sequences/07/image_2/000010.png")) +
                 " does not exist", data_path=str(view), sequences=["7"], **common)
    (view / "poses" / "07.txt").write_text("\n".join(lines[:4]) + "\n")
    expect_error(re.escape(str(view / "poses" / "07.txt")) + " lists 4 frames, fewer than one "
                 "snippet of 5", data_path=str(view), sequences=["7"], **common)
    (view / "poses" / "07.txt").write_text(lines[0] + "\n1 2 3\n")
    expect_error(re.escape(str(view / "poses" / "07.txt")) + ":2: expected 12 finite numbers",
                 data_path=str(view), sequences=["7"], **common)
    expect_error("frame .*image_2/000000.jpg does not exist", data_path=str(root),
                 sequences=["7"], load_weights_folder=str(folder))  # without --png
    expect_error("image_0/000000.png does not exist", data_path=str(root), sequences=["7"],
                 camera=0, **common)


def test_flags_that_do_not_fit(synthetic_odometry, small_weights):
    _, root = synthetic_odometry
    folder, _ = small_weights
    common = dict(load_weights_folder=str(folder), data_path=str(root), png=True)
    expect_error("--eval_split=eigen is not a pose split", eval_split="eigen", **common)
    expect_error("either --eval_split or --sequences", eval_split="odom_9", sequences=["9"],
                 **common)
    expect_error("--sequences: 'x' is not a sequence number", sequences=["x"], **common)
    expect_error("--data_path .*nowhere does not exist", load_weights_folder=str(folder),
                 data_path=str(root / "nowhere"))


def run_tool(*args):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "evaluate_pose"), *args],
                          capture_output=True, text=True, timeout=300)


def test_weights_without_a_pose_network_exit_2_naming_the_folder(reference_dir, kitti_dir,
                                                                 tmp_path):
    depth_only = tmp_path / "depth_only"
    depth_only.mkdir()
    for name in ("encoder.pth", "depth.pth"):
        (depth_only / name).symlink_to(reference_dir / name)
    done = run_tool("--load_weights_folder", str(depth_only), "--data_path",
                    str(kitti_dir / "odometry"), "--sequences", "0", "--camera", "0", "--png")
    assert done.returncode == 2, done.stderr
    assert f"error: weights folder {depth_only} has no pose network" in done.stderr
    expect_error(re.escape(f"--load_weights_folder {tmp_path / 'absent'} does not exist"),
                 load_weights_folder=str(tmp_path / "absent"),
                 data_path=str(kitti_dir / "odometry"), sequences=["0"], camera=0, png=True)
