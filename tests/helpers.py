"""Builders shared by several test modules: where the project and ../shared are, hand-made KITTI
trees, a KITTI drive exported as a folder dataset, PyTorch checkpoints assembled without
PyTorch, and the Eigen depth protocol in float64. (Fixtures live in conftest.py; the readers of
the original's reference outputs in reference.py.)"""

import json
import os
import re
import shutil
import struct
import sys
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import keras
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.folder import (INTRINSICS_FILE, KITTI_CALIB_FILE, REQUIRED_FIELDS,
                                      read_kitti_calib)
from monodepth_tf.data.resize import resize_lanczos
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.weights.folder import build_networks, load_networks, save_weights_folder
from monodepth_tf.weights.torch_checkpoint import load_state_dict, unwrap_state_dict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The ../shared folder (override with MONODEPTH_SHARED); fails loudly when it is absent."""
    path = Path(os.environ.get("MONODEPTH_SHARED", PROJECT_ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.fail(
            f"the shared test material is missing: {path} is not a folder "
            "(set MONODEPTH_SHARED to the folder holding reference/ and kitti/)"
        )
    return path


# ---- real images, and a small feed size for networks in tests --------------------------------

SMALL = dict(height=64, width=192)


def real_image_paths(shared: Path):
    """The shared test photo and the real KITTI raw frame's two cameras."""
    frame = shared / "kitti" / "raw" / "2011_09_26" / "2011_09_26_drive_0000_sync"
    return [shared / "reference" / "test_image.jpg",
            frame / "image_02" / "data" / "0000000001.png",
            frame / "image_03" / "data" / "0000000001.png"]


# ---- bin/train on a synthetic world -------------------------------------------------------

TRAIN_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def train_command(world: Path, log_dir: Path, *extra: str):
    """bin/train's command line (run with :data:`TRAIN_ENV`): mono+stereo on the synthetic
    ``world`` at 64x192, batch 2 from scratch, one epoch, a checkpoint every step, into
    ``<log_dir>/run``; ``extra`` flags after (a later flag wins)."""
    return [sys.executable, str(PROJECT_ROOT / "bin" / "train"), "--mode=mono_stereo",
            "--data_path", str(world), "--split_dir", str(world / "splits"),
            "--split", "synthetic", "--png", "--height", "64", "--width", "192",
            "--batch_size", "2", "--weights_init", "scratch", "--learning_rate", "1e-3",
            "--log_dir", str(log_dir), "--model_name", "run", "--num_epochs", "1",
            "--save_steps", "1", *extra]


# ---- KITTI raw trees made of links to the shared frame --------------------------------------

DATE = "2011_09_26"
DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"
FRAME = 1  # the one real frame of the shared raw drive


def make_raw_tree(kitti_dir: Path, root: Path, frames: Iterable[int] = (FRAME,)) -> Path:
    """A KITTI raw tree under ``root`` made of symlinks to the shared frame: its two images and
    its scan appear under each frame number of ``frames``; the calibration files are linked."""
    (root / DATE).mkdir(parents=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        (root / DATE / name).symlink_to(kitti_dir / "raw" / DATE / name)
    real = kitti_dir / "raw" / DRIVE
    for sub, ext in (("image_02/data", "png"), ("image_03/data", "png"),
                     ("velodyne_points/data", "bin")):
        (root / DRIVE / sub).mkdir(parents=True)
        for frame in frames:
            (root / DRIVE / sub / f"{frame:010d}.{ext}").symlink_to(
                real / sub / f"{FRAME:010d}.{ext}")
    return root


def export_kitti_drive_as_folder(kitti_root: Path, drive: str, output_dir: Path,
                                 name: str, ext: str = "png", stereo: bool = False,
                                 camera: Optional[dict] = None) -> Path:
    """Copies one KITTI raw drive's frames to ``output_dir/<name>/`` (``left/``, ``right/``
    with ``stereo``) and writes ``output_dir/<name>/intrinsics.json``: ``camera`` (fx, fy, cx,
    cy, width, height, ...) when given, else the drive's ``calib_cam_to_cam.txt``."""
    source = Path(kitti_root) / drive
    target = Path(output_dir) / name
    sides = (("image_02", "left"), ("image_03", "right")) if stereo else (("image_02", ""),)
    for camera_dir, side in sides:
        destination = target / side if side else target
        destination.mkdir(parents=True, exist_ok=True)
        for path in sorted((source / camera_dir / "data").glob(f"*.{ext}")):
            shutil.copyfile(path, destination / path.name)
    if camera is None:
        c = read_kitti_calib(Path(kitti_root) / Path(drive).parts[0] / KITTI_CALIB_FILE)
        camera = {k: getattr(c, k) for k in REQUIRED_FIELDS + ("baseline",)
                  if getattr(c, k) is not None}
    (target / INTRINSICS_FILE).write_text(json.dumps(camera, indent=2) + "\n")
    return target


def replace_file(path: Path, content: bytes) -> None:
    """Writes ``content`` at ``path`` (a symlink in the temporary tree is replaced, never the
    shared file it points to)."""
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_bytes(content)


# ---- PyTorch checkpoints written opcode by opcode (no PyTorch) ------------------------------

def pickle_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def pickle_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def pickle_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def pickle_tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def pickle_ordered_dict() -> bytes:
    return pickle_global("collections", "OrderedDict") + b")R"


def pickle_dict(entries: Dict[str, bytes], ordered: bool = True) -> bytes:
    """A (Ordered)Dict built with SETITEMS from ``{key: opcode bytes}``."""
    start = pickle_ordered_dict() if ordered else b"}"
    return start + b"(" + b"".join(pickle_str(k) + v for k, v in entries.items()) + b"u"


def pickle_tensor(storage_key: str, storage_class: str, count: int, offset: int, size, stride,
                  legacy_pid: bool = False) -> bytes:
    """``_rebuild_tensor_v2`` on a persistent storage id, as torch pickles a tensor."""
    pid_items = [pickle_str("storage"), pickle_global("torch", storage_class),
                 pickle_str(storage_key), pickle_str("cpu"), pickle_int(count)]
    pid_items += [b"N"] if legacy_pid else []
    args = pickle_tuple([pickle_tuple(pid_items) + b"Q", pickle_int(offset),
                         pickle_tuple([pickle_int(n) for n in size]),
                         pickle_tuple([pickle_int(n) for n in stride]), b"\x89",
                         pickle_ordered_dict()])
    return pickle_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def pickle_parameter(tensor: bytes) -> bytes:
    return (pickle_global("torch._utils", "_rebuild_parameter")
            + pickle_tuple([tensor, b"\x88", pickle_ordered_dict()]) + b"R")


def with_metadata(state: bytes) -> bytes:
    """BUILD the ``_metadata`` attribute a module's state dict carries."""
    metadata = pickle_dict({"": b"}" + pickle_str("version") + pickle_int(1) + b"s"})
    return state + b"}(" + pickle_str("_metadata") + metadata + b"ub"


def pickle_protocol2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def write_state_dict(path, state: Dict[str, np.ndarray]) -> None:
    """``{key: array}`` -> ``path``, every tensor float32 on a storage of its own."""
    entries, storages = {}, {}
    for index, (key, array) in enumerate(state.items()):
        array = np.ascontiguousarray(array, np.float32)
        stride = tuple(s // array.itemsize for s in array.strides)
        entries[key] = pickle_tensor(str(index), "FloatStorage", array.size, 0, array.shape, stride)
        storages[str(index)] = array.tobytes()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_protocol2(with_metadata(pickle_dict(entries))))
        archive.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")


# ---- the Eigen depth protocol in float64, and depth networks to score ----------------------

GARG = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize with clamped borders, in float64."""
    def axis(n_in, n_out):
        x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(x).astype(int)
        return low, np.minimum(low + 1, n_in - 1), x - low

    image = image.astype(np.float64)
    r0, r1, fr = axis(image.shape[0], height)
    c0, c1, fc = axis(image.shape[1], width)
    rows = image[r0] * (1 - fr)[:, None] + image[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def numpy_protocol(disps, gts, crop, median_scaling, factor):
    """Mean metrics, the ratios and the valid-pixel counts of the Eigen protocol."""
    errors, ratios, counts = [], [], []
    for disp, gt in zip(disps, gts):
        gt = gt.astype(np.float64)
        h, w = gt.shape
        depth = 1.0 / bilinear_resize(disp, h, w)
        mask = (gt > 1e-3) & (gt < 80)
        if crop:
            keep = np.zeros_like(mask)
            keep[int(GARG[0] * h):int(GARG[1] * h), int(GARG[2] * w):int(GARG[3] * w)] = True
            mask &= keep
        target, pred = gt[mask], depth[mask] * factor
        ratio = np.median(target) / np.median(pred) if median_scaling else 1.0
        pred = np.clip(pred * ratio, 1e-3, 80)
        ratio_max = np.maximum(target / pred, pred / target)
        errors.append([np.mean(np.abs(target - pred) / target),
                       np.mean((target - pred) ** 2 / target),
                       np.sqrt(np.mean((target - pred) ** 2)),
                       np.sqrt(np.mean((np.log(target) - np.log(pred)) ** 2)),
                       np.mean(ratio_max < 1.25), np.mean(ratio_max < 1.25 ** 2),
                       np.mean(ratio_max < 1.25 ** 3)])
        ratios.append(ratio)
        counts.append(mask.sum())
    return np.mean(errors, axis=0), np.array(ratios), np.array(counts)


NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def direct_disparities(folder, images, post_process=False):
    """Scaled disparities straight from the network (no tool code): Lanczos to the feed size,
    forward, disp_to_depth; post-processing blended here from its definition."""
    config, depth, _ = load_networks(folder, with_pose=False)
    batch = np.stack([resize_lanczos(i, config.height, config.width) for i in images])
    batch = tf.constant(batch.astype(np.float32) / 255.0)

    def scaled(x):
        disp = depth(x, training=False)[0][..., 0]
        return disp_to_depth(disp, config.min_depth, config.max_depth)[0].numpy()

    disp = scaled(batch)
    if post_process:
        back = scaled(batch[:, :, ::-1])[:, :, ::-1]
        w = disp.shape[2]
        ramp = np.clip(20 * (np.linspace(0, 1, w) - 0.05), 0, 1)  # 0 at the left edge
        left, right = 1 - ramp, (1 - ramp)[::-1]
        disp = right * disp + left * back + (1 - left - right) * 0.5 * (disp + back)
    return disp


def random_depth_weights(folder, seed: int):
    """A weights folder of a freshly initialized ResNet-18 depth network at 64x192 (mono)."""
    keras.utils.set_random_seed(seed)
    config = ModelConfig(height=64, width=192, pose_model_type=None)
    depth, _ = build_networks(config, with_pose=False)
    return save_weights_folder(folder, config, depth)


def imagenet_file(reference_dir, path):
    """A torchvision-layout ResNet-18 file (keys without the ``encoder.`` prefix) holding the
    reference encoder's tensors: stands in for the ImageNet download."""
    state = unwrap_state_dict(load_state_dict(reference_dir / "encoder.pth"))
    tensors = {k[len("encoder."):]: v for k, v in state.items()
               if isinstance(v, np.ndarray) and v.dtype == np.float32}
    write_state_dict(path, tensors)
    return tensors


# ---- point clouds: an independent PLY reader, projection, KITTI intrinsics by hand ----------

def read_ply(path: Path) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """(header lines, points [N, 3] float32, colours [N, 3] uint8) of a binary little-endian
    PLY of ``float x, y, z, uchar red, green, blue`` vertices, parsed with ``struct``."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"], header
    properties = [line.split()[1:] for line in header if line.startswith("property")]
    assert properties == [["float", "x"], ["float", "y"], ["float", "z"], ["uchar", "red"],
                          ["uchar", "green"], ["uchar", "blue"]], properties
    count = int(next(line.split()[2] for line in header if line.startswith("element vertex")))
    record = struct.Struct("<fffBBB")
    body = data[end:]
    assert len(body) == count * record.size, (len(body), count)
    rows = list(record.iter_unpack(body))
    values = np.array(rows, dtype=np.float64).reshape(count, 6)
    return header, values[:, :3].astype(np.float32), values[:, 3:].astype(np.uint8)


def reproject(points: np.ndarray, fx, fy, cx, cy) -> np.ndarray:
    """Pixel coordinates ``[N, 2]`` (x, y) of camera points, in float64."""
    p = points.astype(np.float64)
    return np.stack([fx * p[:, 0] / p[:, 2] + cx, fy * p[:, 1] / p[:, 2] + cy], axis=1)


def kitti_camera_by_hand(calib: Path) -> Dict[str, float]:
    """fx, fy, cx, cy of P_rect_02 and width, height of S_rect_02, parsed here."""
    values = {}
    for line in calib.read_text().splitlines():
        match = re.match(r"^(P_rect_02|S_rect_02):(.*)$", line)
        if match:
            values[match.group(1)] = [float(v) for v in match.group(2).split()]
    P, S = values["P_rect_02"], values["S_rect_02"]
    return dict(fx=P[0], fy=P[5], cx=P[2], cy=P[6], width=S[0], height=S[1])
