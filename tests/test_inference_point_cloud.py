"""Point clouds (bin/predict --point_cloud, monodepth_tf.inference.point_cloud): points lie on
their pixels' rays at the predicted depth, the PLY files read back with an independent parser,
camera files and defaults give the intrinsics they should, and bad input is refused."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import pytest

from monodepth_tf.cli.predict import PredictArgs, check_point_cloud_flags, predict
from monodepth_tf.data.errors import DataError
from monodepth_tf.inference.point_cloud import (CloudMaker, PointCloud, camera_matrix,
                                                cloud_from_depth, read_camera, write_ply)
from tests.helpers import (DATE, DRIVE, FRAME, PROJECT_ROOT, bilinear_resize,
                           direct_disparities, kitti_camera_by_hand, random_depth_weights,
                           read_ply, reproject)

KITTI_SIZE = (375, 1242)  # the shared frame's height, width


# ---- independent references -------------------------------------------------------------------

def pixel_coordinates(height: int, width: int) -> np.ndarray:
    """``[H * W, 2]`` (x, y) of every pixel in row-major order."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float64)


def random_scene(seed: int, height: int = 48, width: int = 160):
    """(depth [H, W] in 0.5..90, image [H, W, 3] uint8)."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 90.0, (height, width))
    return depth, rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---- geometry ---------------------------------------------------------------------------------

def test_points_reproject_to_their_pixels_at_the_depth():
    depth, image = random_scene(0)
    fx, fy, cx, cy = 101.7, 96.3, 77.4, 22.9
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    cloud = cloud_from_depth(depth, image, K)
    assert cloud.points.dtype == np.float32 and cloud.points.shape == (48 * 160, 3)
    pixels = pixel_coordinates(48, 160)
    assert np.abs(reproject(cloud.points, fx, fy, cx, cy) - pixels).max() < 1e-4
    np.testing.assert_allclose(cloud.points[:, 2], depth.ravel(), rtol=1e-7)
    # and the hand-written back-projection (float64): (x - cx) / fx * d, (y - cy) / fy * d
    expected = np.stack([(pixels[:, 0] - cx) / fx * depth.ravel(),
                         (pixels[:, 1] - cy) / fy * depth.ravel(), depth.ravel()], axis=1)
    np.testing.assert_allclose(cloud.points, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cloud.colours, image.reshape(-1, 3))


def test_max_depth_drops_the_far_points():
    depth, image = random_scene(1)
    K = camera_matrix(np.array([[0.6, 0, 0.45, 0], [0, 1.9, 0.55, 0], [0, 0, 1, 0],
                                [0, 0, 0, 1]], np.float32), 48, 160)
    cloud = cloud_from_depth(depth, image, K, max_depth=30.0)
    keep = depth <= 30.0
    assert 0.2 < keep.mean() < 0.5  # the crop does something, and not everything
    assert len(cloud.points) == keep.sum() and cloud.points[:, 2].max() <= 30.0
    np.testing.assert_allclose(cloud.points[:, 2], depth[keep], rtol=1e-7)
    np.testing.assert_array_equal(cloud.colours, image[keep])
    pixels = pixel_coordinates(48, 160)[keep.ravel()]
    assert np.abs(reproject(cloud.points, K[0, 0], K[1, 1], K[0, 2], K[1, 2]) - pixels).max() \
        < 1e-4


def test_default_intrinsics_are_kittis_scaled_and_the_scale_follows_the_model():
    """No --intrinsics: fx = 0.58 W, fy = 1.92 H, principal point at W / 2, H / 2 (the
    original's normalized KITTI intrinsics); depth = 5.4 / disparity for stereo-trained
    models, 1 / disparity for monocular ones, both times --depth_scale."""
    height, width = 40, 136
    rng = np.random.default_rng(2)
    disparity = rng.uniform(0.02, 5.0, (height, width)).astype(np.float32)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels = pixel_coordinates(height, width)
    for use_stereo, depth_scale, factor in ((True, None, 5.4), (False, None, 1.0),
                                            (False, 3.5, 3.5), (True, 2.0, 10.8)):
        maker = CloudMaker.create(None, use_stereo, depth_scale)
        cloud = maker.cloud(disparity, image)
        np.testing.assert_allclose(cloud.points[:, 2],
                                   factor / disparity.ravel().astype(np.float64), rtol=1e-6)
        uv = reproject(cloud.points, 0.58 * width, 1.92 * height, width / 2, height / 2)
        assert np.abs(uv - pixels).max() < 1e-4
        text = " ".join(maker.describe())
        assert "NORMALIZED_K" in text and "--intrinsics" in text
        assert ("metric" in text) == use_stereo and ("unknown" in text) != use_stereo


def test_kitti_calibration_and_its_intrinsics_json_give_the_same_cloud(kitti_dir, tmp_path):
    calib = kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt"
    by_hand = kitti_camera_by_hand(calib)
    assert (by_hand["width"], by_hand["height"]) == (1242, 375)
    (tmp_path / "intrinsics.json").write_text(json.dumps(by_hand))
    height, width = KITTI_SIZE
    rng = np.random.default_rng(3)
    disparity = rng.uniform(0.05, 3.0, KITTI_SIZE).astype(np.float32)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    clouds = [CloudMaker.create(read_camera(path), False, 1.7, max_depth=20.0)
              .cloud(disparity, image) for path in (calib, tmp_path / "intrinsics.json")]
    np.testing.assert_array_equal(clouds[0].points, clouds[1].points)
    np.testing.assert_array_equal(clouds[0].colours, clouds[1].colours)
    keep = 1.7 / disparity.astype(np.float64) <= 20.0
    pixels = pixel_coordinates(height, width)[keep.ravel()]
    uv = reproject(clouds[0].points, by_hand["fx"], by_hand["fy"], by_hand["cx"], by_hand["cy"])
    # float32 points at x up to 1241 px: one rounding of x and z moves a pixel by ~1e-4
    assert np.abs(uv - pixels).max() < 2e-4
    # the same intrinsics described for a half-size image give the same pixel intrinsics
    half = dict(by_hand, fx=by_hand["fx"] / 2, fy=by_hand["fy"] / 2, cx=by_hand["cx"] / 2,
                cy=by_hand["cy"] / 2, width=621, height=187.5)
    (tmp_path / "half.json").write_text(json.dumps(half))
    K_half = camera_matrix(read_camera(tmp_path / "half.json").normalized_K(), height, width)
    np.testing.assert_allclose(K_half[:3, :3], [[by_hand["fx"], 0, by_hand["cx"]],
                                                [0, by_hand["fy"], by_hand["cy"]], [0, 0, 1]],
                               rtol=1e-6)
    # another aspect ratio (a crop?) is warned about, once per size; a resize is not
    maker = CloudMaker.create(read_camera(calib), True)
    assert maker.size_warning(187, 621) is None  # half size (aspect within 1%)
    warning = maker.size_warning(300, 300)
    assert f"--intrinsics {calib} describes 1242x375 images, these are 300x300" in warning
    assert maker.size_warning(300, 300) is None


# ---- the PLY file -----------------------------------------------------------------------------

def test_ply_reads_back_with_an_independent_parser(tmp_path):
    rng = np.random.default_rng(4)
    points = rng.normal(0, 30, (257, 3)).astype(np.float32)
    colours = rng.integers(0, 256, (257, 3), dtype=np.uint8)
    path = write_ply(tmp_path / "a.ply", PointCloud(points, colours),
                     ("scale: metric   (metres)", "from /home/zoë/cam.json"))
    header, read_points, read_colours = read_ply(path)
    assert header[2:4] == ["comment scale: metric (metres)", "comment from /home/zo?/cam.json"]
    assert "element vertex 257" in header and header[-1] == "end_header"
    np.testing.assert_array_equal(read_points, points)
    np.testing.assert_array_equal(read_colours, colours)
    assert path.stat().st_size == len("\n".join(header)) + 1 + 257 * 15
    empty = write_ply(tmp_path / "empty.ply", PointCloud(points[:0], colours[:0]))
    assert read_ply(empty)[1].shape == (0, 3)


# ---- bad input --------------------------------------------------------------------------------

def test_camera_files_that_cannot_be_read_are_named(tmp_path):
    with pytest.raises(DataError, match=f"--intrinsics {tmp_path / 'none.json'}: no such file"):
        read_camera(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{fx: 1")
    with pytest.raises(DataError, match=f"{tmp_path / 'bad.json'}: not valid JSON"):
        read_camera(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps(dict(fx=1, fy=1, cx=1, cy=1)))
    with pytest.raises(DataError, match=f"{tmp_path / 'short.json'}: missing field"):
        read_camera(tmp_path / "short.json")
    (tmp_path / "calib.txt").write_text("just some words\nP_rect_00: 1 2 3\n")
    with pytest.raises(DataError, match=f"{tmp_path / 'calib.txt'}: calibration key "
                                        "'P_rect_02' is missing"):
        read_camera(tmp_path / "calib.txt")


def test_flags_out_of_range_or_without_point_cloud_are_refused(tmp_path):
    for name, value in (("depth_scale", 0.0), ("depth_scale", -2.0), ("max_depth", 0.0),
                        ("max_depth", -1.0)):
        with pytest.raises(ValueError, match=f"--{name}={value} must be positive"):
            check_point_cloud_flags(PredictArgs(point_cloud=True, **{name: value}))
    with pytest.raises(ValueError, match="--intrinsics and --max_depth only apply to "
                                         "--point_cloud"):
        check_point_cloud_flags(PredictArgs(intrinsics="x.json", max_depth=5.0))
    assert check_point_cloud_flags(PredictArgs(point_cloud=True)) is None


# ---- bin/predict end to end ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Dict[str, Path]:
    """Random ResNet-18 folders at 64x192: monocular, and the same weights stereo-trained."""
    root = tmp_path_factory.mktemp("weights")
    mono = random_depth_weights(root / "mono", seed=5)
    stereo = root / "stereo"
    shutil.copytree(mono, stereo)
    config = json.loads((stereo / "config.json").read_text())
    (stereo / "config.json").write_text(json.dumps(dict(config, use_stereo=True)))
    return {"mono": Path(mono), "stereo": stereo}


def kitti_frame(kitti_dir: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    frame = folder / f"{FRAME:010d}.png"
    shutil.copy(kitti_dir / "raw" / DRIVE / "image_02" / "data" / frame.name, frame)
    return frame


def test_predict_writes_the_metric_cloud_of_a_real_kitti_frame(weights, kitti_dir, tmp_path,
                                                              capsys):
    frame = kitti_frame(kitti_dir, tmp_path / "in")
    calib = kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt"
    image = cv2.cvtColor(cv2.imread(str(frame)), cv2.COLOR_BGR2RGB)
    disparity = direct_disparities(weights["stereo"], [image])[0]
    depth = 5.4 / bilinear_resize(disparity, *KITTI_SIZE)  # float64, independent of the tool
    max_depth = float(np.round(np.median(depth), 3))  # random weights: keep about half
    written = predict(PredictArgs(image_path=str(frame), load_weights_folder=str(
        weights["stereo"]), output_dir=str(tmp_path / "out"), point_cloud=True,
        intrinsics=str(calib), max_depth=max_depth))
    assert sorted(p.name for p in written) == [f"{frame.stem}{s}" for s in
                                               (".ply", "_disp.jpeg", "_disp.npy")]
    out = capsys.readouterr().out
    assert f"intrinsics: {calib}" in out and "metric (metres)" in out
    header, points, colours = read_ply(tmp_path / "out" / f"{frame.stem}.ply")

    cam = kitti_camera_by_hand(calib)
    uv = reproject(points, cam["fx"], cam["fy"], cam["cx"], cam["cy"])
    pixels = np.round(uv).astype(int)
    assert np.abs(uv - pixels).max() < 2e-4  # see the calibration test
    x, y = pixels[:, 0], pixels[:, 1]
    np.testing.assert_allclose(points[:, 2], depth[y, x], rtol=2e-5)
    np.testing.assert_array_equal(colours, image[y, x])
    # every pixel up to max_depth is there once, in row-major order; pixels at max_depth up to
    # the float32 prediction's rounding may go either way
    assert np.all(np.diff(y * KITTI_SIZE[1] + x) > 0)
    kept = np.zeros(KITTI_SIZE, bool)
    kept[y, x] = True
    differ = kept != (depth <= max_depth)
    assert np.all(np.abs(depth[differ] / max_depth - 1) < 2e-5)
    assert 0.4 < kept.mean() < 0.6, kept.mean()


def test_mono_clouds_have_unknown_scale_and_default_intrinsics(weights, kitti_dir, tmp_path,
                                                              capsys):
    frame = kitti_frame(kitti_dir, tmp_path)
    for depth_scale, name in ((None, "plain"), (2.5, "scaled")):
        predict(PredictArgs(image_path=str(frame), load_weights_folder=str(weights["mono"]),
                            output_dir=str(tmp_path / name), point_cloud=True,
                            depth_scale=depth_scale))
    out = capsys.readouterr().out
    assert "scale: unknown (monocular model)" in out and "NORMALIZED_K" in out
    _, plain, colours = read_ply(tmp_path / "plain" / f"{frame.stem}.ply")
    _, scaled, _ = read_ply(tmp_path / "scaled" / f"{frame.stem}.ply")
    assert len(plain) == KITTI_SIZE[0] * KITTI_SIZE[1]  # no crop: every pixel
    np.testing.assert_allclose(scaled, 2.5 * plain.astype(np.float64), rtol=1e-6, atol=1e-7)
    height, width = KITTI_SIZE
    uv = reproject(plain, 0.58 * width, 1.92 * height, width / 2, height / 2)
    assert np.abs(uv - pixel_coordinates(height, width)).max() < 2e-4
    image = cv2.cvtColor(cv2.imread(str(frame)), cv2.COLOR_BGR2RGB)
    depth = 1.0 / bilinear_resize(direct_disparities(weights["mono"], [image])[0], *KITTI_SIZE)
    np.testing.assert_allclose(plain[:, 2], depth.ravel(), rtol=2e-5)


def test_a_video_gives_one_cloud_per_frame(weights, tmp_path):
    rng = np.random.default_rng(6)
    source = tmp_path / "drive.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 32))
    assert writer.isOpened()
    for _ in range(3):
        writer.write(rng.integers(0, 256, (32, 96, 3), dtype=np.uint8))
    writer.release()
    capture = cv2.VideoCapture(str(source))
    decoded = []
    while (frame := capture.read())[0]:
        decoded.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    capture.release()
    written = predict(PredictArgs(image_path=str(source), batch_size=2, point_cloud=True,
                                  load_weights_folder=str(weights["stereo"])))
    assert [p.name for p in written] == ["drive_disp.mp4", "drive_000000.ply",
                                         "drive_000001.ply", "drive_000002.ply"]
    disparities = direct_disparities(weights["stereo"], decoded)
    for index, image in enumerate(decoded):
        _, points, colours = read_ply(written[1 + index])
        np.testing.assert_array_equal(colours, image.reshape(-1, 3))
        depth = 5.4 / bilinear_resize(disparities[index], 32, 96)
        np.testing.assert_allclose(points[:, 2], depth.ravel(), rtol=2e-5)


def run_predict(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "predict"), *args],
                          capture_output=True, text=True, timeout=300)


def test_the_tool_refuses_a_bad_intrinsics_file_before_predicting(weights, kitti_dir, tmp_path):
    frame = kitti_frame(kitti_dir, tmp_path)
    (tmp_path / "cam.json").write_text('{"fx": 700, "fy": 700}')
    for intrinsics, fragment in ((tmp_path / "nothing.txt", "no such file"),
                                 (tmp_path / "cam.json", "missing field(s) cx, cy, width")):
        result = run_predict("--image_path", str(frame), "--load_weights_folder",
                             str(weights["mono"]), "--point_cloud", "--intrinsics",
                             str(intrinsics))
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and str(intrinsics) in errors[0] and fragment in errors[0], \
            result.stderr
        assert "Loaded" not in result.stderr  # refused before the network was loaded
    result = run_predict("--image_path", str(frame), "--load_weights_folder",
                         str(weights["mono"]), "--point_cloud", "--depth_scale", "0")
    assert result.returncode == 2 and "error: --depth_scale=0.0 must be positive" in \
        result.stderr, result.stderr
    assert not list(tmp_path.glob("*.ply")) and not list(tmp_path.glob("*_disp*"))
