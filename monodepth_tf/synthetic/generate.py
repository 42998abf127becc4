"""make_synthetic_kitti: the world of each drive rendered frame by frame, in chunks of frames run
in a "spawn" process pool, and written in KITTI's raw layout."""

import dataclasses
import functools
import multiprocessing
import os
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from monodepth_tf.synthetic.camera import KITTI_HEIGHT, KITTI_WIDTH, Intrinsics, drive_path
from monodepth_tf.synthetic.lidar import lidar_pixels, lidar_scan
from monodepth_tf.synthetic.raycast import render_frame
from monodepth_tf.synthetic.textures import Texture, make_textures
from monodepth_tf.synthetic.world import FaceTable, World, face_table, make_world
from monodepth_tf.synthetic.writer import (DATE, cam_to_cam_text, drive_folder, pose_lines,
                                           split_frames, velo_to_cam_text, write_npz,
                                           write_splits)


@dataclasses.dataclass(frozen=True)
class _Job:
    """Frames ``[start, stop)`` of one drive to render and write."""

    root: str
    seed: int
    drive: int
    frames: int
    start: int
    stop: int
    intrinsics: Intrinsics
    ext: str
    keep: Tuple[int, ...]


@functools.lru_cache(maxsize=1)
def seed_textures(seed: int) -> Dict[int, Texture]:
    """make_textures(seed), kept for the next call (per process: every drive of a world)."""
    return make_textures(seed)


@functools.lru_cache(maxsize=1)
def drive_world(seed: int, drive: int, frames: int) -> Tuple[World, FaceTable]:
    """``(world, face table)`` of a drive, drawn after its path from the same generator; the
    last one built is kept for the next call (per process: the jobs of one drive)."""
    rng = np.random.default_rng([seed, drive])
    positions, _ = drive_path(rng, frames)
    world = make_world(rng, -40.0, float(positions[-1, 2]) + 200.0, seed_textures(seed))
    return world, face_table(world)


def drive_setup(seed: int, drive: int, frames: int, with_world: bool = True):
    """``(world, face table, positions [F, 3], yaws [F])`` of a drive (world and table None
    when not ``with_world``)."""
    positions, yaws = drive_path(np.random.default_rng([seed, drive]), frames)
    if not with_world:
        return None, None, positions, yaws
    return (*drive_world(seed, drive, frames), positions, yaws)


def _run_job(job: _Job) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Renders and writes a job's frames; returns ``{frame: (left depth, right depth)}`` of
    the frames in ``job.keep`` (float32)."""
    world, table, positions, yaws = drive_setup(job.seed, job.drive, job.frames)
    folder = Path(job.root) / drive_folder(job.drive)
    pixels = lidar_pixels(job.intrinsics)
    kept = {}
    for frame in range(job.start, job.stop):
        name = f"{frame:010d}"
        depths = []
        for camera in (2, 3):
            image, depth, codes = render_frame(world, table, job.intrinsics, positions[frame],
                                               yaws[frame], camera)
            cv2.imwrite(str(folder / f"image_0{camera}" / "data" / f"{name}.{job.ext}"),
                        image[..., ::-1])
            if camera == 2:
                lidar_scan(depth, codes, image, job.intrinsics, pixels).tofile(
                    folder / "velodyne_points" / "data" / f"{name}.bin")
            depths.append(depth.astype(np.float32))
        if frame in job.keep:
            kept[frame] = (depths[0], depths[1])
    return kept


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _job_name(job: _Job) -> str:
    return f"frames {job.start}-{job.stop - 1} of {drive_folder(job.drive)}"


def _run_jobs(jobs: List[_Job], workers: int,
              run_job: Callable[[_Job], dict] = _run_job) -> List[dict]:
    """``run_job`` of every job, in order, in ``workers`` processes (here when one).

    Raises:
        RuntimeError: naming the job, when a worker process died (killed, out of memory) or
            the job raised (chained to its error); the other jobs are cancelled.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [run_job(job) for job in jobs]
    # "spawn", never "fork": a process that has TensorFlow or OpenCV threads running (a test,
    # bin/train's demo) deadlocks its forked children on locks those threads held. Unlike
    # multiprocessing.Pool, which replaces a dead worker and waits forever for its task, the
    # executor fails every pending job as soon as a worker dies.
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context,
                                     initializer=_worker_init) as pool:
        pending = [pool.submit(run_job, job) for job in jobs]
        results = []
        for job, future in zip(jobs, pending):
            try:
                results.append(future.result())
            except BrokenProcessPool as error:
                _cancel(pending)
                raise RuntimeError(f"a worker process died while writing {_job_name(job)} "
                                   f"under {job.root}: {error}") from error
            except Exception as error:
                _cancel(pending)
                raise RuntimeError(f"writing {_job_name(job)} under {job.root} failed: "
                                   f"{type(error).__name__}: {error}") from error
        return results


def _cancel(pending: List[futures.Future]) -> None:
    for future in pending:
        future.cancel()


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
    """What make_synthetic_kitti wrote.

    Attributes: ``root``; ``drives`` (their folders relative to root); ``frames`` (stereo
    frames in all); ``train``, ``val``, ``test`` (lines of each split list); ``split_dir``
    (``root/splits``, holding ``synthetic/``); ``gt_depths`` (path of gt_depths.npz).
    """

    root: Path
    drives: Tuple[str, ...]
    frames: int
    train: int
    val: int
    test: int
    split_dir: Path
    gt_depths: Path


def _check_arguments(num_drives, frames_per_drive, height, width, ext) -> None:
    if num_drives < 1:
        raise ValueError(f"--num_drives must be at least 1, got {num_drives}")
    if frames_per_drive < 10:
        raise ValueError(f"--frames_per_drive must be at least 10, got {frames_per_drive}")
    if height < 16 or width < 16:
        raise ValueError(f"--height and --width must be at least 16, got {height}x{width}")
    if ext not in ("png", "jpg"):
        raise ValueError(f"--ext must be png or jpg, got {ext!r}")


def make_synthetic_kitti(output_dir, seed: int = 0, num_drives: int = 3,
                         frames_per_drive: int = 100, height: int = KITTI_HEIGHT,
                         width: int = KITTI_WIDTH, ext: str = "png",
                         workers: Optional[int] = None) -> SyntheticSummary:
    """Writes a synthetic street in KITTI's raw layout; the same arguments give the same bytes.

    Writes, under ``output_dir``:

    - ``2011_09_26/calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``;
    - per drive ``2011_09_26/2011_09_26_drive_000N_sync/``: ``image_02/data/<10 digits>.<ext>``
      (left), ``image_03/data/...`` (right), ``velodyne_points/data/<10 digits>.bin`` and
      ``poses.txt`` (left-camera-to-world of each frame relative to the first, odometry
      format);
    - ``splits/synthetic/{train,val,test}_files.txt`` and ``gt_depths.npz``: key ``data``, the
      ``[N, H, W]`` float32 exact dense depth of camera 2 (the left camera, the one the test
      lines name) of each test line, in order; key ``cam3`` the same for camera 3. Sky pixels
      hold the sky box's depth (hundreds of metres), so the evaluation's 80 m cap leaves them
      out.

    Args:
        output_dir: root folder (created).
        seed: world, path and texture seed.
        num_drives, frames_per_drive: how many drives (streets) and stereo frames each.
        height, width: image size; intrinsics are KITTI's scaled to it.
        ext: ``png`` or ``jpg``.
        workers: processes (default: the CPU count, one for small jobs).
    """
    _check_arguments(num_drives, frames_per_drive, height, width, ext)
    root = Path(output_dir)
    intrinsics = Intrinsics.kitti(height, width)
    (root / DATE).mkdir(parents=True, exist_ok=True)
    (root / DATE / "calib_cam_to_cam.txt").write_text(cam_to_cam_text(intrinsics))
    (root / DATE / "calib_velo_to_cam.txt").write_text(velo_to_cam_text())
    for drive in range(num_drives):
        folder = root / drive_folder(drive)
        for sub in ("image_02/data", "image_03/data", "velodyne_points/data"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        _, _, positions, yaws = drive_setup(seed, drive, frames_per_drive, with_world=False)
        (folder / "poses.txt").write_text(pose_lines(positions, yaws))
    splits = split_frames(num_drives, frames_per_drive)
    if workers is None:
        work = num_drives * frames_per_drive * height * width
        workers = (os.cpu_count() or 1) if work > 20_000_000 else 1
    chunk = max(5, -(-frames_per_drive // max(1, 2 * workers)))
    jobs = [_Job(str(root), seed, d, frames_per_drive, start,
                 min(start + chunk, frames_per_drive), intrinsics, ext,
                 tuple(f for dd, f in splits["test"] if dd == d))
            for d in range(num_drives) for start in range(0, frames_per_drive, chunk)]
    kept = {}
    for job, result in zip(jobs, _run_jobs(jobs, workers)):
        kept.update({(job.drive, f): v for f, v in result.items()})
    counts = write_splits(root / "splits" / "synthetic", splits)
    gt_path = root / "splits" / "synthetic" / "gt_depths.npz"
    # One [N, H, W] float32 array per camera (all maps share the image size): indexes like the
    # original's object array, and needs no pickle, whose bytes would depend on whether a map
    # was rendered here or came back from a worker process.
    maps = {key: np.stack([kept[item][camera] for item in splits["test"]]).astype(np.float32)
            for camera, key in enumerate(("data", "cam3"))}
    write_npz(gt_path, maps)
    return SyntheticSummary(root, tuple(drive_folder(d) for d in range(num_drives)),
                            num_drives * frames_per_drive, counts["train"], counts["val"],
                            counts["test"], root / "splits", gt_path)
