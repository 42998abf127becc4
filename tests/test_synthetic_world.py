"""The synthetic world: KITTI's raw layout, exact geometry, LiDAR that agrees with the depth.

The geometry checks are written here in NumPy, independently of the generator: warping one
image into another with the exact depth and the known rig or motion must reproduce it, and
KITTI's LiDAR projection recipe must land every point on a pixel of the point's depth.
"""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from monodepth_tf.data import gt_depth
from monodepth_tf.synthetic import make_synthetic_kitti
from tests.helpers import PROJECT_ROOT

H, W, FRAMES, SEED = 96, 320, 12, 3
DATE = "2011_09_26"
DRIVES = [f"{DATE}/{DATE}_drive_000{n}_sync" for n in (1, 2)]
KITTI_FX, KITTI_CX, KITTI_CY = 721.5377, 609.5593, 172.854  # real 2011_09_26 P_rect_02


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_kitti(root, seed=SEED, num_drives=2, frames_per_drive=FRAMES, height=H,
                         width=W)
    return root


# ---------------------------------------------------------------------------- independent readers


def calib_lines(path: Path) -> dict:
    """``{key: text after the colon}`` of a KITTI calibration file, in file order."""
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in path.read_text().splitlines() if line)}


def calib_numbers(path: Path) -> dict:
    values = {}
    for key, text in calib_lines(path).items():
        try:
            values[key] = np.array([float(v) for v in text.split()])
        except ValueError:
            pass
    return values


def rgb(path: Path) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1]."""
    return cv2.imread(str(path))[..., ::-1] / 255.0


def listed_test_frames(world) -> list:
    return [(folder, int(frame)) for folder, frame, _ in
            (line.split() for line in
             (world / "splits/synthetic/test_files.txt").read_text().splitlines())]


def dense_depth(world, camera: int = 2) -> dict:
    """``{(folder, frame): [H, W] depth}`` of the test frames from gt_depths.npz."""
    with np.load(world / "splits/synthetic/gt_depths.npz", allow_pickle=True) as npz:
        maps = npz["data" if camera == 2 else "cam3"]
    return dict(zip(listed_test_frames(world), maps))


def poses(world, folder: str) -> np.ndarray:
    """``[F, 4, 4]`` camera-to-first-frame poses of a drive."""
    rows = np.loadtxt(world / folder / "poses.txt", ndmin=2)
    out = np.tile(np.eye(4), (len(rows), 1, 1))
    out[:, :3, :] = rows.reshape(-1, 3, 4)
    return out


def intrinsics(world):
    """fx, fy, cx, cy of P_rect_02 and the stereo baseline from P_rect_03."""
    calib = calib_numbers(world / DATE / "calib_cam_to_cam.txt")
    P2, P3 = calib["P_rect_02"].reshape(3, 4), calib["P_rect_03"].reshape(3, 4)
    return P2[0, 0], P2[1, 1], P2[0, 2], P2[1, 2], -P3[0, 3] / P3[0, 0]


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image [H, W, C]`` at fractional ``rows, cols [N]`` (inside the image)."""
    r0 = np.clip(np.floor(rows).astype(int), 0, image.shape[0] - 2)
    c0 = np.clip(np.floor(cols).astype(int), 0, image.shape[1] - 2)
    fr, fc = (rows - r0)[:, None], (cols - c0)[:, None]
    top = image[r0, c0] * (1 - fc) + image[r0, c0 + 1] * fc
    bottom = image[r0 + 1, c0] * (1 - fc) + image[r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def visible(depth_target: np.ndarray, rows, cols, expected) -> np.ndarray:
    """Pixels that the target view shows at the expected depth: its inverse depth (affine in
    the image over a plane) interpolated there matches within 0.5%, so the point is neither
    occluded nor between two surfaces."""
    inverse = bilinear((1.0 / depth_target)[..., None], rows, cols)[:, 0]
    return np.abs(inverse * expected - 1) < 0.005


# ---------------------------------------------------------------------------- tests


def digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_world(world, tmp_path):
    """Also whatever the number of processes (the fixture rendered in one)."""
    make_synthetic_kitti(tmp_path / "same", seed=SEED, num_drives=2, frames_per_drive=FRAMES,
                         height=H, width=W, workers=2)
    assert digests(tmp_path / "same") == digests(world)
    make_synthetic_kitti(tmp_path / "other", seed=SEED + 1, num_drives=1, frames_per_drive=10,
                         height=H, width=W)
    image = f"{DRIVES[0]}/image_02/data/0000000005.png"
    assert digests(tmp_path / "other")[image] != digests(world)[image]


def test_layout_is_kitti_raw(world):
    for folder in DRIVES:
        for sub, ext in (("image_02", "png"), ("image_03", "png"), ("velodyne_points", "bin")):
            names = sorted(p.name for p in (world / folder / sub / "data").iterdir())
            assert names == [f"{i:010d}.{ext}" for i in range(FRAMES)]
        assert cv2.imread(str(world / folder / "image_03/data/0000000000.png")).shape == (H, W, 3)
    split_dir = world / "splits" / "synthetic"
    lines = {name: (split_dir / f"{name}_files.txt").read_text().splitlines()
             for name in ("train", "val", "test")}
    for name, entries in lines.items():
        assert entries, name
        for line in entries:
            folder, frame, side = re.fullmatch(r"(\S+) (\d+) ([lr])", line).groups()
            assert folder in DRIVES and 1 <= int(frame) <= FRAMES - 2
            assert side == "l" or name == "train"
    test_drives = {line.split()[0] for line in lines["test"]}
    assert test_drives == {DRIVES[1]}  # the last drive is held out
    assert not test_drives & {line.split()[0] for line in lines["train"] + lines["val"]}
    train = {int(line.split()[1]) for line in lines["train"]}
    val = {int(line.split()[1]) for line in lines["val"]}
    assert max(train) + 1 < min(val) - 1  # val's frames, neighbours included, are unseen


def test_calibration_has_kittis_keys_and_rescaled_intrinsics(world, kitti_dir):
    real = calib_lines(kitti_dir / "raw" / DATE / "calib_cam_to_cam.txt")
    ours = calib_lines(world / DATE / "calib_cam_to_cam.txt")
    assert list(ours) == list(real)
    real_velo = calib_lines(kitti_dir / "raw" / DATE / "calib_velo_to_cam.txt")
    assert list(calib_lines(world / DATE / "calib_velo_to_cam.txt")) == list(real_velo)
    fx, fy, cx, cy, baseline = intrinsics(world)
    assert fx == pytest.approx(KITTI_FX * W / 1242, rel=1e-12)
    assert fy == pytest.approx(KITTI_FX * H / 375, rel=1e-12)
    assert (cx, cy) == pytest.approx((KITTI_CX * W / 1242, KITTI_CY * H / 375), rel=1e-12)
    assert baseline == pytest.approx(0.54, rel=1e-12)
    assert calib_numbers(world / DATE / "calib_cam_to_cam.txt")["S_rect_02"].tolist() == [W, H]


def test_images_are_textured_everywhere(world):
    image = cv2.imread(str(world / DRIVES[0] / "image_02/data/0000000006.png"),
                       cv2.IMREAD_GRAYSCALE).astype(float)
    assert np.abs(np.diff(image, axis=1)).mean() > 4.0
    assert np.abs(np.diff(image, axis=0)).mean() > 3.0
    tiles = image[:H // 8 * 8, :W // 8 * 8].reshape(H // 8, 8, W // 8, 8).std(axis=(1, 3))
    assert (tiles > 1.0).mean() > 0.9  # hardly a flat 8x8 patch, sky included
    assert np.ptp(image) > 150


def test_dense_depth_is_finite_everywhere(world):
    for depth in dense_depth(world).values():
        assert depth.shape == (H, W) and depth.dtype == np.float32
        assert np.isfinite(depth).all() and depth.min() > 0.5
        assert (depth < 80).mean() > 0.5


def test_right_image_warped_by_the_exact_depth_reproduces_the_left(world):
    """Disparity fx * baseline / depth moves each left pixel onto the right image's row."""
    fx, _, _, _, baseline = intrinsics(world)
    left_depths, right_depths = dense_depth(world, 2), dense_depth(world, 3)
    errors = []
    for key in list(left_depths)[:3]:
        folder, frame = key
        left = rgb(world / folder / "image_02/data" / f"{frame:010d}.png")
        right = rgb(world / folder / "image_03/data" / f"{frame:010d}.png")
        rows, cols = np.indices((H, W)).reshape(2, -1).astype(float)
        depth = left_depths[key].ravel().astype(float)
        target = cols - fx * baseline / depth
        inside = (target >= 0) & (target <= W - 1)
        rows, cols, target, depth = rows[inside], cols[inside], target[inside], depth[inside]
        keep = visible(right_depths[key], rows, target, depth)
        assert keep.mean() > 0.9
        warped = bilinear(right, rows[keep], target[keep])
        errors.append(np.abs(warped - left[rows[keep].astype(int), cols[keep].astype(int)])
                      .mean(axis=1))
    errors = np.concatenate(errors)  # a 10% wrong baseline or a one-pixel shift fails these
    assert np.median(errors) < 0.003
    assert np.mean(errors < 0.05) > 0.985


def test_next_frame_warped_by_depth_and_motion_reproduces_the_frame(world):
    """Back-project frame t with its depth, move by the poses, sample frame t + 1."""
    fx, fy, cx, cy, _ = intrinsics(world)
    depths = dense_depth(world)
    frames = [key for key in depths if (key[0], key[1] + 1) in depths][:3]
    assert frames
    errors = []
    for folder, frame in frames:
        pose = poses(world, folder)
        motion = np.linalg.inv(pose[frame]) @ pose[frame + 1]  # camera t+1 in camera t
        assert 0.5 <= np.linalg.norm(motion[:3, 3]) <= 1.5 and motion[2, 3] > 0.4  # forward
        relative = np.linalg.inv(motion)  # camera t -> camera t+1 coordinates
        rows, cols = np.indices((H, W)).reshape(2, -1).astype(float)
        z = depths[folder, frame].ravel().astype(float)
        points = np.stack([(cols + 1 - cx) / fx * z, (rows + 1 - cy) / fy * z, z, np.ones_like(z)])
        moved = relative @ points
        u = fx * moved[0] / moved[2] + cx - 1
        v = fy * moved[1] / moved[2] + cy - 1
        inside = (moved[2] > 0.5) & (u >= 0) & (u <= W - 1) & (v >= 0) & (v <= H - 1)
        keep = np.zeros_like(inside)
        keep[inside] = visible(depths[folder, frame + 1], v[inside], u[inside],
                               moved[2][inside])
        assert keep.mean() > 0.7
        now = rgb(world / folder / "image_02/data" / f"{frame:010d}.png")
        later = rgb(world / folder / "image_02/data" / f"{frame + 1:010d}.png")
        warped = bilinear(later, v[keep], u[keep])
        errors.append(np.abs(warped - now[rows[keep].astype(int), cols[keep].astype(int)])
                      .mean(axis=1))
    errors = np.concatenate(errors)  # a 10% wrong translation fails these
    assert np.median(errors) < 0.0035
    assert np.mean(errors < 0.05) > 0.985


def kitti_projection(world, points: np.ndarray):
    """KITTI's recipe: ``P_rect_02 @ R_rect_00 @ [R | T]``; pixel ``round(u / w) - 1``.
    Returns ``(rows, cols, forward x)`` of the points in front that land in the image."""
    calib = calib_numbers(world / DATE / "calib_cam_to_cam.txt")
    velo = calib_numbers(world / DATE / "calib_velo_to_cam.txt")
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3], velo_to_cam[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    rect = np.eye(4)
    rect[:3, :3] = calib["R_rect_00"].reshape(3, 3)
    P = calib["P_rect_02"].reshape(3, 4) @ rect @ velo_to_cam
    points = points[points[:, 0] >= 0].astype(np.float64)
    projected = P @ np.c_[points[:, :3], np.ones(len(points))].T
    cols = np.round(projected[0] / projected[2]).astype(int) - 1
    rows = np.round(projected[1] / projected[2]).astype(int) - 1
    inside = (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
    return rows[inside], cols[inside], points[inside, 0]


def scan(world, folder: str, frame: int) -> np.ndarray:
    path = world / folder / "velodyne_points/data" / f"{frame:010d}.bin"
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def test_lidar_points_project_onto_pixels_of_their_exact_depth(world):
    for (folder, frame), depth in list(dense_depth(world).items())[:4]:
        points = scan(world, folder, frame)
        assert (points[:, 0] < 0).any()  # a real scan also sees behind the car
        rows, cols, forward = kitti_projection(world, points)
        assert len(forward) > 2000 and len(forward) == (points[:, 0] >= 0).sum()
        assert len(set(zip(rows, cols))) == len(rows)  # one point per pixel
        relative = np.abs(forward - depth[rows, cols]) / depth[rows, cols]
        assert relative.max() < 1e-5
        assert 0 <= points[:, 3].min() and points[:, 3].max() <= 1


def test_projects_ground_truth_export_equals_the_exact_depth_at_every_point(world, tmp_path):
    output = tmp_path / "gt_depths.npz"
    assert gt_depth.export_gt_depths(world, "synthetic", world / "splits", output) == FRAMES - 2
    with np.load(output, allow_pickle=True) as npz:
        exported = npz["data"]
    for ((folder, frame), depth), sparse in zip(dense_depth(world).items(), exported):
        filled = sparse > 0
        assert filled.sum() == len(kitti_projection(world, scan(world, folder, frame))[0])
        np.testing.assert_allclose(sparse[filled], depth[filled], rtol=1e-5)


def test_tool_writes_a_world_and_rejects_bad_flags(tmp_path):
    tool = [sys.executable, str(PROJECT_ROOT / "bin" / "make_synthetic_kitti"),
            "--output_dir", str(tmp_path), "--num_drives", "1", "--height", "48", "--width",
            "160"]
    good = subprocess.run(tool + ["--frames_per_drive", "10", "--ext", "jpg"],
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr
    assert "wrote 10 stereo frames" in good.stdout
    assert cv2.imread(str(tmp_path / DRIVES[0] / "image_03/data/0000000009.jpg")).shape == \
        (48, 160, 3)
    assert (tmp_path / "splits/synthetic/gt_depths.npz").is_file()
    bad = subprocess.run(tool + ["--frames_per_drive", "3"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "--frames_per_drive must be at least 10" in bad.stderr


def test_tool_in_worker_processes_writes_the_bytes_of_one_process(world, tmp_path):
    """The script itself with a process pool: each "spawn" child imports the script as
    ``__mp_main__``, so without its ``__main__`` guard every child re-ran the tool, died on the
    child's arguments and was replaced, forever (the timeout here catches that)."""
    tool = [sys.executable, str(PROJECT_ROOT / "bin" / "make_synthetic_kitti"),
            "--output_dir", str(tmp_path), "--seed", str(SEED), "--num_drives", "2",
            "--frames_per_drive", str(FRAMES), "--height", str(H), "--width", str(W),
            "--workers", "2"]
    result = subprocess.run(tool, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {2 * FRAMES} stereo frames in 2 drives" in result.stdout
    assert digests(tmp_path) == digests(world)
