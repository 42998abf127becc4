"""A synthetic street in KITTI's raw layout, with exact depth: for tests and first runs.

The world (metres; x right, y down, z forward; the road surface at y = 1.65, the camera height
of KITTI's car): an asphalt road with lane markings between two kerbed sidewalks, building
blocks of varying set-back and height with windows, poles, and parked cars (boxes). Every
surface carries procedural texture (value noise, bricks, tiles, stripes) and Lambertian shading,
so photometric losses have something to hold on to; the sky is a colour that depends on the
view direction only (it is infinitely far; LiDAR never returns from it).

A stereo rig with KITTI's rectified intrinsics and 0.54 m baseline drives along the road with
varying speed and gentle yaw. Images are rendered by ray casting: for a ray ``o + t d`` with
``d = R K^-1 (u, v, 1)``, ``t`` is the camera z-depth, so the depth maps are exact.

Pixel conventions follow KITTI's: pixel column c is centred on image coordinate u = c + 1, so
that the LiDAR ground-truth recipe (``round(u / w) - 1``) maps a point sampled from pixel c back
to pixel c. LiDAR points are sampled at 64 rows of pixels, placed on those pixels' rays at their
exact depth and written in the velodyne frame (x forward, y left, z up).
"""

import dataclasses
from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np

# KITTI 2011_09_26 rectified camera (P_rect_02) at 1242x375.
KITTI_FX, KITTI_CX, KITTI_CY = 721.5377, 609.5593, 172.854
KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
BASELINE = 0.54
CAMERA_HEIGHT = 1.65
KERB_X, KERB_HEIGHT = 5.0, 0.15
DATE = "2011_09_26"
VELO_T = np.array([0.0, -0.08, 0.0])  # velodyne origin in camera coordinates (no z offset)
# velodyne (x forward, y left, z up) -> camera (x right, y down, z forward)
VELO_TO_CAM_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
LIDAR_ROWS = 64

# Box kinds
SIDEWALK, BUILDING, CAR, POLE = range(4)


@dataclasses.dataclass
class Camera:
    """Rectified pinhole intrinsics in KITTI's 1-based image coordinates."""

    fx: float
    fy: float
    cx: float
    cy: float
    height: int
    width: int

    @classmethod
    def kitti(cls, height: int = KITTI_HEIGHT, width: int = KITTI_WIDTH) -> "Camera":
        sx, sy = width / KITTI_WIDTH, height / KITTI_HEIGHT
        return cls(KITTI_FX * sx, KITTI_FX * sy, KITTI_CX * sx, KITTI_CY * sy, height, width)

    def rays(self) -> np.ndarray:
        """``[H, W, 3]`` ray directions in the camera frame with z = 1 (pixel c at u = c + 1)."""
        u = np.arange(self.width, dtype=np.float64) + 1.0
        v = np.arange(self.height, dtype=np.float64) + 1.0
        x = np.broadcast_to(((u - self.cx) / self.fx)[None, :], (self.height, self.width))
        y = np.broadcast_to(((v - self.cy) / self.fy)[:, None], (self.height, self.width))
        return np.stack([x, y, np.ones_like(x)], axis=-1)


def _hash(ix, iy, seed):
    """Deterministic pseudo-random values in [0, 1) for integer lattice points."""
    h = (ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263
         + seed * 2147483647) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFF) / 65536.0


def value_noise(a, b, scale: float, seed: int):
    """Smooth noise in [0, 1) of surface coordinates (metres), with features of ``scale``."""
    a, b = a / scale, b / scale
    ia, ib = np.floor(a), np.floor(b)
    fa, fb = a - ia, b - ib
    fa, fb = fa * fa * (3 - 2 * fa), fb * fb * (3 - 2 * fb)
    n00, n10 = _hash(ia, ib, seed), _hash(ia + 1, ib, seed)
    n01, n11 = _hash(ia, ib + 1, seed), _hash(ia + 1, ib + 1, seed)
    return (n00 * (1 - fa) + n10 * fa) * (1 - fb) + (n01 * (1 - fa) + n11 * fa) * fb


def fractal(a, b, seed: int, base: float = 2.0):
    return sum(value_noise(a, b, base / 2 ** k, seed + k) / 2 ** k for k in range(3)) / 1.75


@dataclasses.dataclass
class World:
    """Axis-aligned boxes ``[N, 6]`` (x0, y0, z0, x1, y1, z1) with a kind and a colour each."""

    boxes: np.ndarray
    kinds: np.ndarray
    colours: np.ndarray
    seed: int


def make_world(rng: np.random.Generator, length: float, seed: int) -> World:
    """The street's sidewalks, buildings, poles and parked cars along ``z`` in [-20, length]."""
    boxes, kinds, colours = [], [], []

    def add(box, kind, colour):
        boxes.append(box)
        kinds.append(kind)
        colours.append(colour)

    top = CAMERA_HEIGHT - KERB_HEIGHT
    for side in (-1, 1):
        add(_box_x(side, KERB_X, 40.0, top, CAMERA_HEIGHT + 1.0, -20, length), SIDEWALK,
            (0.62, 0.6, 0.56))
        z = -20.0
        while z < length:
            depth_z = rng.uniform(8, 25)
            setback = KERB_X + 3.0 + rng.uniform(0, 5)
            height = rng.uniform(5, 16)
            colour = rng.uniform(0.3, 0.85, 3)
            add(_box_x(side, setback, setback + 12, top - height, top, z, z + depth_z - 0.5),
                BUILDING, colour)
            z += depth_z
        for pole_z in np.arange(rng.uniform(0, 15), length, rng.uniform(12, 20)):
            add(_box_x(side, KERB_X + 0.4, KERB_X + 0.6, top - 5.0, top, pole_z, pole_z + 0.2),
                POLE, (0.5, 0.5, 0.52))
        car_z = rng.uniform(5, 20)
        while car_z < length:
            width = rng.uniform(1.6, 1.9)
            add(_box_x(side, KERB_X - 0.3 - width, KERB_X - 0.3, CAMERA_HEIGHT - 1.5,
                       CAMERA_HEIGHT - 0.25, car_z, car_z + rng.uniform(3.8, 4.6)),
                CAR, rng.uniform(0.1, 0.9, 3))
            car_z += rng.uniform(10, 35)
    return World(np.array(boxes), np.array(kinds), np.array(colours), seed)


def _box_x(side, near, far, y0, y1, z0, z1):
    """A box spanning |x| in [near, far] on one side of the road."""
    x0, x1 = sorted((side * near, side * far))
    return [x0, y0, z0, x1, y1, z1]


def render(world: World, camera: Camera, position: np.ndarray, rotation: np.ndarray,
           rays: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Ray-casts one view.

    Args:
        world: the scene.
        camera: intrinsics; ``rays`` its ``[H, W, 3]`` camera-frame rays (z = 1).
        position: ``[3]`` camera centre in the world; rotation: ``[3, 3]`` camera-to-world.

    Returns:
        ``(image [H, W, 3] float32 in [0, 1], depth [H, W] float64 z-depth, 0 for sky)``.
    """
    d = rays @ rotation.T  # world directions; t along d is the camera z-depth
    o = position
    t_best = np.full(d.shape[:2], np.inf)
    hit_kind = np.full(d.shape[:2], -1)
    hit_axis = np.zeros(d.shape[:2], dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_road = np.where(d[..., 1] > 1e-9, (CAMERA_HEIGHT - o[1]) / d[..., 1], np.inf)
    better = t_road < t_best
    t_best[better], hit_kind[better], hit_axis[better] = t_road[better], 100, 1
    hit_box = np.full(d.shape[:2], -1)
    for index in _visible_boxes(world, o):
        rect = _screen_rect(world.boxes[index], camera, position, rotation)
        if rect is None:
            continue
        window = (slice(rect[0], rect[1]), slice(rect[2], rect[3]))
        _intersect_box(world.boxes[index], o, d[window], index, t_best[window], hit_box[window],
                       hit_axis[window], hit_kind[window], world.kinds[index])
    points = o + d * np.where(np.isfinite(t_best), t_best, 0)[..., None]
    image = _shade(world, points, d, hit_kind, hit_box, hit_axis)
    depth = np.where(np.isfinite(t_best), t_best, 0.0)
    return image.astype(np.float32), depth


def _visible_boxes(world: World, origin: np.ndarray) -> List[int]:
    near = (world.boxes[:, 5] > origin[2] - 2) & (world.boxes[:, 2] < origin[2] + 150)
    return list(np.nonzero(near)[0])


def _screen_rect(box, camera: Camera, position, rotation):
    """The pixel rectangle ``(row0, row1, col0, col1)`` a box can cover, None if it is behind
    the camera; the whole image when it straddles the camera plane."""
    corners = np.array([[box[i], box[j], box[k]] for i in (0, 3) for j in (1, 4) for k in (2, 5)])
    cam = (corners - position) @ rotation  # world -> camera: R^T (p - o)
    if (cam[:, 2] <= 0.05).all():
        return None
    if (cam[:, 2] <= 0.05).any():
        return 0, camera.height, 0, camera.width
    cols = camera.fx * cam[:, 0] / cam[:, 2] + camera.cx - 1  # pixel c sits at u = c + 1
    rows = camera.fy * cam[:, 1] / cam[:, 2] + camera.cy - 1
    c0, c1 = max(0, int(np.floor(cols.min()))), min(camera.width, int(np.ceil(cols.max())) + 1)
    r0, r1 = max(0, int(np.floor(rows.min()))), min(camera.height, int(np.ceil(rows.max())) + 1)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _intersect_box(box, o, d, index, t_best, hit_box, hit_axis, hit_kind, kind):
    """Slab test of one box against every ray, updating the nearest hits in place."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_near = np.full(d.shape[:2], -np.inf)
        t_far = np.full(d.shape[:2], np.inf)
        axis_near = np.zeros(d.shape[:2], dtype=np.int64)
        for axis in range(3):
            inv = 1.0 / d[..., axis]
            t0 = (box[axis] - o[axis]) * inv
            t1 = (box[axis + 3] - o[axis]) * inv
            lo, hi = np.minimum(t0, t1), np.maximum(t0, t1)
            parallel = d[..., axis] == 0
            inside = (o[axis] >= box[axis]) & (o[axis] <= box[axis + 3])
            lo = np.where(parallel, np.where(inside, -np.inf, np.inf), lo)
            hi = np.where(parallel, np.where(inside, np.inf, -np.inf), hi)
            axis_near = np.where(lo > t_near, axis, axis_near)
            t_near = np.maximum(t_near, lo)
            t_far = np.minimum(t_far, hi)
    hit = (t_near <= t_far) & (t_near > 0.05) & (t_near < t_best)
    t_best[hit], hit_box[hit], hit_axis[hit], hit_kind[hit] = t_near[hit], index, \
        axis_near[hit], kind


def _shade(world, points, d, kind, box, axis) -> np.ndarray:
    """Texture and Lambertian shading of every hit; the sky where nothing was hit. Textures
    are evaluated only on the pixels of the surfaces they belong to."""
    seed = world.seed
    colour = np.zeros(points.shape)
    light = np.array([0.4, -0.8, 0.45]) / np.linalg.norm([0.4, -0.8, 0.45])

    road = kind == 100
    x, z = points[road, 0], points[road, 2]
    lane = ((np.abs(x) < 0.08) & ((z % 6.0) < 3.0)) | (np.abs(np.abs(x) - 3.6) < 0.1)
    shade = 0.45 + 0.55 * max(-light[1], 0.0)  # the road faces up
    colour[road] = np.where(lane, 0.88, 0.28 + 0.18 * fractal(x, z, seed))[:, None] * shade

    solid = box >= 0
    p, ax, dd, index = points[solid], axis[solid], d[solid], box[solid]
    normal = np.zeros_like(p)
    normal[np.arange(len(p)), ax] = -np.sign(dd[np.arange(len(p)), ax])
    lambert = (0.45 + 0.55 * np.clip(normal @ light, 0, 1))[:, None]
    # surface coordinates: the two world axes along the hit face
    a = np.where(ax == 0, p[:, 2], p[:, 0])
    b = np.where(ax == 1, p[:, 2], p[:, 1])
    base, kinds = world.colours[index], world.kinds[index]
    grain = fractal(a * 1.7, b * 1.7, seed + 7)[:, None]
    tiles = ((np.abs((a % 0.6) - 0.3) > 0.28) | (np.abs((b % 0.6) - 0.3) > 0.28))[:, None]
    bricks = (((b % 0.3) < 0.03) | (((a + 0.2 * np.floor(b / 0.3)) % 0.8) < 0.04))[:, None]
    windows = (((a % 3.0) > 0.8) & ((a % 3.0) < 2.2) & ((b % 3.2) > 0.9)
               & ((b % 3.2) < 2.4))[:, None]
    glass = 0.15 + 0.25 * value_noise(a * 3, b * 3, 0.5, seed + 11)[:, None]
    texture = np.select(
        [kinds[:, None] == SIDEWALK, kinds[:, None] == BUILDING],
        [base * (0.75 + 0.35 * grain) * np.where(tiles, 0.7, 1.0),
         np.where(windows, glass, base * (0.8 + 0.3 * grain) * np.where(bricks, 0.75, 1.0))],
        base * (0.7 + 0.4 * grain) * (0.85 + 0.15 * np.sin(b * 9.0))[:, None])
    colour[solid] = texture * lambert

    sky = kind < 0
    direction = d[sky] / np.linalg.norm(d[sky], axis=-1, keepdims=True)
    elevation = np.clip(-direction[:, 1], 0, 1)[:, None]
    clouds = value_noise(direction[:, 0] * 8, direction[:, 2] * 8 + direction[:, 1] * 8, 1.0,
                         seed + 23)[:, None]
    colour[sky] = (np.array([0.55, 0.7, 0.9]) * (1 - 0.4 * elevation)
                   + 0.3 * np.clip(clouds - 0.4, 0, 1))
    return np.clip(colour, 0, 1)


def drive_path(rng: np.random.Generator, frames: int):
    """Camera positions ``[F, 3]`` and yaws ``[F]``: varying speed, gentle weaving in lane."""
    speed = np.clip(1.0 + 0.35 * np.cumsum(rng.normal(0, 0.15, frames)), 0.5, 1.5)
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(40, 80)
    yaw = 0.03 * np.sin(2 * np.pi * np.arange(frames) / period + phase)
    z = np.concatenate([[0.0], np.cumsum(speed[1:] * np.cos(yaw[1:]))])
    x = -1.8 + np.concatenate([[0.0], np.cumsum(speed[1:] * np.sin(yaw[1:]))])
    return np.stack([x, np.zeros(frames), z], axis=1), yaw


def yaw_rotation(yaw: float) -> np.ndarray:
    """Camera-to-world rotation of a camera turned by ``yaw`` about the vertical (y) axis."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def lidar_points(depth: np.ndarray, camera: Camera, rays: np.ndarray) -> np.ndarray:
    """Velodyne-frame points ``[N, 4]`` sampled from 64 pixel rows of a left-camera depth map.

    Each point lies on its pixel's ray at the pixel's exact depth, so KITTI's projection
    recipe maps it back to that pixel with that depth.
    """
    rows = np.unique(np.linspace(camera.height * 0.35, camera.height - 1, LIDAR_ROWS).astype(int))
    r, c = np.meshgrid(rows, np.arange(0, camera.width, 2), indexing="ij")
    z = depth[r, c]
    valid = z > 0
    cam = rays[r[valid], c[valid]] * z[valid][:, None]  # camera frame
    velo = (cam - VELO_T) @ VELO_TO_CAM_R  # inverse of cam = R velo + T
    reflectance = np.full((len(velo), 1), 0.5)
    return np.concatenate([velo, reflectance], axis=1).astype(np.float32)


def _calib_texts(camera: Camera) -> Tuple[str, str]:
    """calib_cam_to_cam.txt and calib_velo_to_cam.txt in KITTI's format."""
    K = np.array([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]])
    fmt = lambda a: " ".join(f"{v:.12e}" for v in np.ravel(a))  # noqa: E731
    lines = ["calib_time: 01-Jan-2026 00:00:00", "corner_dist: 9.950000e-02"]
    for cam in range(4):
        P = np.hstack([K, np.zeros((3, 1))])
        if cam % 2:  # the right cameras, 0.54 m to the right
            P[0, 3] = -camera.fx * BASELINE
        lines += [f"S_0{cam}: {fmt([camera.width, camera.height])}", f"K_0{cam}: {fmt(K)}",
                  f"D_0{cam}: {fmt(np.zeros(5))}", f"R_0{cam}: {fmt(np.eye(3))}",
                  f"T_0{cam}: {fmt([-BASELINE * (cam % 2), 0, 0])}",
                  f"S_rect_0{cam}: {fmt([camera.width, camera.height])}",
                  f"R_rect_0{cam}: {fmt(np.eye(3))}", f"P_rect_0{cam}: {fmt(P)}"]
    velo = ["calib_time: 01-Jan-2026 00:00:00", f"R: {fmt(VELO_TO_CAM_R)}", f"T: {fmt(VELO_T)}",
            "delta_f: 0.000000e+00 0.000000e+00", "delta_c: 0.000000e+00 0.000000e+00"]
    return "\n".join(lines) + "\n", "\n".join(velo) + "\n"


@dataclasses.dataclass
class _DriveJob:
    folder: Path
    seed: int
    drive: int
    frames: int
    camera: Camera
    ext: str
    keep_depth: Tuple[int, ...]


def _render_drive(job: _DriveJob):
    """Renders and writes one drive; returns ``{frame: left depth}`` for ``keep_depth``."""
    rng = np.random.default_rng([job.seed, job.drive])
    positions, yaws = drive_path(rng, job.frames)
    world = make_world(rng, float(positions[-1, 2]) + 160.0, job.seed * 1000 + job.drive)
    rays = job.camera.rays()
    for sub in ("image_02/data", "image_03/data", "velodyne_points/data"):
        (job.folder / sub).mkdir(parents=True, exist_ok=True)
    kept = {}
    for frame, (position, yaw) in enumerate(zip(positions, yaws)):
        rotation = yaw_rotation(yaw)
        left, depth = render(world, job.camera, position, rotation, rays)
        right, _ = render(world, job.camera, position + rotation @ [BASELINE, 0, 0], rotation,
                          rays)
        for cam, image in (("image_02", left), ("image_03", right)):
            bgr = (np.round(image[..., ::-1] * 255)).astype(np.uint8)
            cv2.imwrite(str(job.folder / cam / "data" / f"{frame:010d}.{job.ext}"), bgr)
        lidar_points(depth, job.camera, rays).tofile(
            job.folder / "velodyne_points" / "data" / f"{frame:010d}.bin")
        if frame in job.keep_depth:
            kept[frame] = depth.astype(np.float32)
    return kept


def split_frames(num_drives: int, frames: int):
    """``{name: [(drive, frame), ...]}``: held-out drives for val/test when there are three or
    more, else held-out stretches of each drive; first and last frames are never targets."""
    usable = range(1, frames - 1)
    if num_drives >= 3:
        by_drive = {"test": [num_drives - 1], "val": [num_drives - 2],
                    "train": list(range(num_drives - 2))}
        return {name: [(d, f) for d in drives for f in usable] for name, drives in
                by_drive.items()}
    cut_val, cut_test = int(frames * 0.7), int(frames * 0.85)
    parts = {"train": range(1, cut_val - 1), "val": range(cut_val, cut_test - 1),
             "test": range(cut_test, frames - 1)}
    return {name: [(d, f) for d in range(num_drives) for f in rng] for name, rng in parts.items()}


def make_synthetic_kitti(output_dir, seed: int = 0, num_drives: int = 2,
                         frames_per_drive: int = 100, height: int = KITTI_HEIGHT,
                         width: int = KITTI_WIDTH, ext: str = "png", workers: int = 2) -> dict:
    """Writes the synthetic world in KITTI's raw layout; returns a summary.

    Writes ``<output_dir>/2011_09_26/`` (calibration, drives ``..._drive_000N_sync`` with
    ``image_02``, ``image_03``, ``velodyne_points``), and ``<output_dir>/splits/synthetic/``
    with ``train_files.txt``, ``val_files.txt``, ``test_files.txt`` and ``gt_depths.npz`` (the
    exact dense left-camera depth of every test frame, 0 for sky, key ``data``).
    """
    if frames_per_drive < 10:
        raise ValueError(f"--frames_per_drive must be at least 10, got {frames_per_drive}")
    if ext not in ("png", "jpg"):
        raise ValueError(f"--ext must be png or jpg, got {ext!r}")
    root = Path(output_dir)
    camera = Camera.kitti(height, width)
    date_dir = root / DATE
    date_dir.mkdir(parents=True, exist_ok=True)
    cam_text, velo_text = _calib_texts(camera)
    (date_dir / "calib_cam_to_cam.txt").write_text(cam_text)
    (date_dir / "calib_velo_to_cam.txt").write_text(velo_text)
    splits = split_frames(num_drives, frames_per_drive)
    folders = [f"{DATE}/{DATE}_drive_{d + 1:04d}_sync" for d in range(num_drives)]
    jobs = [_DriveJob(root / folders[d], seed, d, frames_per_drive, camera, ext,
                      tuple(f for dd, f in splits["test"] if dd == d)) for d in range(num_drives)]
    if workers > 1 and num_drives > 1:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(min(workers, num_drives)) as pool:
            kept = pool.map(_render_drive, jobs)
    else:
        kept = [_render_drive(job) for job in jobs]
    split_dir = root / "splits" / "synthetic"
    split_dir.mkdir(parents=True, exist_ok=True)
    for name, items in splits.items():
        sides = ("l", "r") if name == "train" else ("l",)
        lines = [f"{folders[d]} {f} {side}" for d, f in items for side in sides]
        (split_dir / f"{name}_files.txt").write_text("\n".join(lines) + "\n")
    gt = np.empty(len(splits["test"]), dtype=object)
    gt[:] = [kept[d][f] for d, f in splits["test"]]
    np.savez_compressed(split_dir / "gt_depths.npz", data=gt)
    return {"root": str(root), "frames": num_drives * frames_per_drive,
            "train": len(splits["train"]) * 2, "val": len(splits["val"]),
            "test": len(splits["test"]), "split_dir": str(root / "splits")}
