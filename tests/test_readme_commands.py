"""Every command line shown in README.md and splits/README.md runs as written.

The commands are parsed from the READMEs' code blocks (fenced, except ``python`` ones, and
indented; a line ending in a backslash continues on the next) and run with bash, unchanged,
in a small world: HOME is a temporary folder, so ``~/kitti_data`` is a synthetic KITTI-format
world there, and the working directory holds what the commands name (``weights/mono_640x192``
converted from the shared reference checkpoints, ``street.jpg``, ``my_videos/`` ...), with
``bin/`` linked to the project's. Each command needs an entry in CASES (what its world holds
and what it must produce) or in NOT_RUN (why it cannot run here, and how it is checked
instead); a README command with neither fails. Flags are appended only where the command does
not give them, to keep training and image sizes small (CASES' ``append``).

The download commands (bin/download_kitti, bin/predict --model_name) run against a local HTTP
mirror started by the test (``$MONODEPTH_KITTI_URL``, ``$MONODEPTH_SPLITS_URL``,
``$MONODEPTH_ZOO_URL``): KITTI's 61 drive and 5 calibration archives, each drive holding the one
real frame of ../shared/kitti (about 3.5 MB), KITTI depth's improved maps for eigen_benchmark's
drives, the Monodepth2 release's split lists, and a release zip of the reference checkpoints.
They run in a copy of the repository's code (CASES' ``repository``), so that the default split
folder, the repository's ``splits/``, is the copy's.

Slow cases (``-m "not slow"`` leaves them out): the KITTI training commands, the set-up
command's demo training and the int8 export.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
import pytest

from monodepth_tf.data import kitti_download as kd
from monodepth_tf.data.standard_splits import (LICENSE_NAME, LICENSE_SHA256, SPLIT_FILES,
                                               sha256_of)
from monodepth_tf.synthetic import drive_folder, make_synthetic_kitti
from tests.helpers import PROJECT_ROOT, direct_disparities, imagenet_file, shared_dir
from tests.http_server import FileServer
from tests.kitti_server import (CALIB_FILES, FRAME, SOURCE_DATE, depth_png, serve_kitti,
                                serve_splits, source_file)
from tests.zoo_server import md5_of, release_zip

READMES = ("README.md", "splits/README.md")
# A code line is a command when its first word is one of these programs.
PROGRAM = re.compile(r"(bin/\w+|python3?|\.venv/bin/\w+|pip3?|tensorflow_model_server)$")
# Appended to training commands that do not give these flags: one step at a small size.
SMALL_TRAINING = ("--height", "64", "--width", "192", "--max_steps", "1")
WORLD_SIZE = dict(height=64, width=208)  # the synthetic world's images (KITTI's aspect)
STEREO_ZOO = "monodepth2_resnet18_kitti_stereo_640x192"
VIDEO_FRAMES = 20  # a video's frames: enough samples for a batch of 12


# ---------------------------------------------------------------------------- the READMEs


def code_lines(text: str) -> List[str]:
    """The lines of a markdown text's code blocks: fenced blocks but ``python`` ones, and
    blocks indented by 4 or more spaces (inside list items too)."""
    lines, fence, previous_blank = [], None, True
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else (stripped[3:].strip() or "text")
            continue
        if fence is not None:
            if fence != "python":
                lines.append(stripped)
        elif line.startswith("    ") and (previous_blank or lines and lines[-1] is not None):
            lines.append(stripped)
            previous_blank = False
            continue
        else:
            lines.append(None)  # ends an indented block
        previous_blank = not stripped
    return [line for line in lines if line]


def readme_commands() -> List[str]:
    """Every command of the READMEs, in order, continuation lines joined, runs of spaces
    collapsed (a trailing ``# comment`` is kept: bash ignores it)."""
    commands = []
    for name in READMES:
        pending = ""
        for line in code_lines((PROJECT_ROOT / name).read_text()):
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if PROGRAM.match(line.split()[0]):
                commands.append(" ".join(line.split()))
    return commands


# ---------------------------------------------------------------------------- the small world


def write_video(path: Path, frames: List[Path], fps: float = 10.0) -> None:
    """An mp4 of ``frames`` (image files of one size)."""
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (first.shape[1], first.shape[0]))
    for frame in frames:
        writer.write(cv2.imread(str(frame)))
    writer.release()


def left_frames(world: Path, drive: int) -> List[Path]:
    return sorted((world / drive_folder(drive) / "image_02" / "data").glob("*.png"))


def convert(pytorch_dir: Path, output_dir: Path) -> None:
    """The reference checkpoints as a weights folder, by bin/convert_weights."""
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bin" / "convert_weights"), "--pytorch_dir",
         str(pytorch_dir), "--output_dir", str(output_dir)], capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def build_assets(root: Path, reference_dir: Path, shared: Path) -> Dict[str, Path]:
    """Everything the commands read, built once: name -> file or folder."""
    world = root / "kitti_data"
    make_synthetic_kitti(world, seed=1, num_drives=2, frames_per_drive=VIDEO_FRAMES,
                        **WORLD_SIZE)
    # KITTI as the original's data preparation leaves it, its PNGs converted to JPEG (commands
    # without --png)
    make_synthetic_kitti(root / "kitti_data_jpg", seed=1, num_drives=2,
                         frames_per_drive=VIDEO_FRAMES, ext="jpg", **WORLD_SIZE)
    lists = world / "splits" / "synthetic"
    assets = {"kitti_data": world, "kitti_data_jpg": root / "kitti_data_jpg",
              "reference_pth": reference_dir}
    for name, with_gt in (("splits_lists", False), ("splits_with_gt", True)):
        for split in ("eigen_zhou", "eigen_full", "eigen"):
            (root / name / split).mkdir(parents=True)
            for path in lists.iterdir():
                if path.suffix == ".txt" or with_gt:
                    shutil.copy(path, root / name / split / path.name)
        assets[name] = root / name
    benchmark = root / "splits_with_gt" / "benchmark"
    benchmark.mkdir()
    (benchmark / "test_files.txt").write_text("".join(f"image {i}\n" for i in range(3)))
    images = root / "depth_selection" / "test_depth_prediction_anonymous" / "image"
    images.mkdir(parents=True)
    for i, frame in enumerate(left_frames(world, 1)[:3]):
        cv2.imwrite(str(images / f"{i:010d}.png"), cv2.resize(cv2.imread(str(frame)),
                                                             (1216, 352)))
    assets["depth_selection"] = root / "depth_selection"
    (root / "keras_models").mkdir()
    imagenet_file(reference_dir, root / "keras_models" / "resnet18-5c106cde.pth")
    assets["keras_models"] = root / "keras_models"
    convert(reference_dir, root / "weights")
    assets["weights"] = root / "weights"
    shutil.copy(shared / "reference" / "test_image.jpg", root / "street.jpg")
    assets["street.jpg"] = root / "street.jpg"
    for name, count in (("frames", 2), ("some_frames", 3)):
        (root / name).mkdir()
        for frame in left_frames(world, 0)[:count]:
            shutil.copy(frame, root / name / frame.name)
        assets[name] = root / name
    (root / "kitti_frame").mkdir()  # the real KITTI frame and its calibration
    raw = shared / "kitti" / "raw" / "2011_09_26"
    shutil.copy(raw / "calib_cam_to_cam.txt", root / "kitti_frame")
    shutil.copy(raw / "2011_09_26_drive_0000_sync" / "image_02" / "data" / "0000000001.png",
                root / "kitti_frame")
    assets["kitti_frame"] = root / "kitti_frame"
    write_video(root / "drive.mp4", left_frames(world, 1)[:6])
    assets["drive.mp4"] = root / "drive.mp4"
    assets["my_videos"] = my_videos(root / "my_videos", world)
    assets["kitti_odom"] = odometry(root / "kitti_odom", world)
    return assets


def my_videos(folder: Path, world: Path) -> Path:
    """The README's footage folder: two 10 fps videos and their intrinsics."""
    folder.mkdir()
    from monodepth_tf.synthetic import Intrinsics
    k = Intrinsics.kitti(**WORLD_SIZE)
    (folder / "intrinsics.json").write_text(json.dumps(dict(
        fx=k.fx, fy=k.fy, cx=k.cx - 1, cy=k.cy - 1, width=k.width, height=k.height)))
    for name, drive in (("drive_morning", 0), ("drive_evening", 1)):
        write_video(folder / f"{name}.mp4", left_frames(world, drive)[:VIDEO_FRAMES])
    return folder


def odometry(root: Path, world: Path) -> Path:
    """A KITTI odometry root whose sequence 09 is a synthetic drive."""
    images = root / "sequences" / "09" / "image_2"
    images.mkdir(parents=True)
    for frame in left_frames(world, 0):
        shutil.copy(frame, images / f"{int(frame.stem):06d}.png")
    (root / "poses").mkdir()
    shutil.copy(world / drive_folder(0) / "poses.txt", root / "poses" / "09.txt")
    return root


def link_tree(source: Path, target: Path) -> None:
    """``target`` as a copy of ``source`` whose files are symbolic links (written outputs land
    in the test's own folders)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=os.symlink)
    else:
        os.symlink(source, target)


# ---------------------------------------------------------------------------- running


@dataclasses.dataclass
class Run:
    """A command's run: its HOME, working directory and environment, and its output."""

    home: Path
    cwd: Path
    env: Dict[str, str]
    stdout: str
    stderr: str


@dataclasses.dataclass(frozen=True)
class Case:
    """What a README command needs and produces.

    Attributes:
        check: asserts on a successful Run what the command must have produced.
        home, cwd: path under HOME / the working directory -> asset name.
        append: flags added to the command (only flags it does not give).
        slow: 0 for a quick command; else about how many seconds it takes alone on a 2-core
            CPU, at least 60 (marked slow; the longest start first, tests/conftest.py).
        mirror: downloads from the local mirror (the test starts it).
        repository: runs in a copy of the repository's code (``bin/``, ``monodepth_tf/``,
            ``splits/`` without lists) with no ``$MONODEPTH_SPLIT_DIR``: the default split
            folder is the copy's ``splits/``.
        user_log_level: runs with TensorFlow's log level as a user has it (unset), not
            silenced: for checking that the tool's output has no TensorFlow chatter.
    """

    check: Callable[[Run], None]
    home: Dict[str, str] = dataclasses.field(default_factory=dict)
    cwd: Dict[str, str] = dataclasses.field(default_factory=dict)
    append: Tuple[str, ...] = ()
    slow: int = 0
    mirror: bool = False
    repository: bool = False
    user_log_level: bool = False


def copy_repository(cwd: Path) -> None:
    """The repository's code, setup.py (which marks a source checkout, whose ``splits/`` is
    the default split folder) and its empty ``splits/`` folder, copied into ``cwd``."""
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("bin", "monodepth_tf"):
        shutil.copytree(PROJECT_ROOT / name, cwd / name, ignore=ignore, symlinks=True)
    shutil.copy(PROJECT_ROOT / "setup.py", cwd / "setup.py")
    (cwd / "splits").mkdir()
    for name in ("README.md", ".gitignore"):
        shutil.copy(PROJECT_ROOT / "splits" / name, cwd / "splits" / name)


def run_command(command: str, case: Case, assets: Dict[str, Path], base: Path,
                mirror: Optional[Dict[str, str]] = None) -> Run:
    """Runs ``command`` with bash in a fresh HOME and working directory under ``base``; fails
    the test unless it exits with 0.

    Args:
        mirror: the download addresses' variables (the local mirror's), for cases that use it.
    """
    home, cwd = base / "home", base / "cwd"
    for root, links in ((home, case.home), (cwd, case.cwd)):
        root.mkdir(parents=True)
        for path, asset in links.items():
            link_tree(assets[asset], root / path)
    env = dict(os.environ, HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               MONODEPTH_SPLIT_DIR=str(assets["splits_lists"]), **(mirror or {}))
    for name in ("KERAS_HOME", "MONODEPTH_ZOO_DIR", "PYTHONPATH") + \
            (("TF_CPP_MIN_LOG_LEVEL", "MONODEPTH_VERBOSE") if case.user_log_level else ()):
        env.pop(name, None)
    if case.repository:
        copy_repository(cwd)
        env.pop("MONODEPTH_SPLIT_DIR")
    else:
        (cwd / "bin").symlink_to(PROJECT_ROOT / "bin")
    line = re.sub(r"\s+#.*$", "", command)  # a trailing comment would swallow appended flags
    argv = " ".join([line, *case.append])
    result = subprocess.run(["bash", "-c", argv], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return Run(home, cwd, env, result.stdout, result.stderr)


# ---------------------------------------------------------------------------- checks


def trained(run_dir: Path, **options) -> Callable[[Run], None]:
    """Check: a run folder (relative to HOME, or ``./`` for the working directory) with final
    weights and ``opt.json`` holding ``options`` (values may name ``~``)."""
    def check(run: Run) -> None:
        folder = run.cwd / run_dir if str(run_dir).startswith(".") else run.home / run_dir
        assert (folder / "models" / "weights_final" / "config.json").is_file(), run.stderr[-2000:]
        saved = json.loads((folder / "opt.json").read_text())
        for name, value in options.items():
            value = value.replace("~", str(run.home)) if isinstance(value, str) else value
            assert saved[name] == value, (name, saved[name])
    return check


def check_demo(run: Run) -> None:
    """The set-up command's demo learned: its best val abs_rel is at most half the untrained
    network's (scored first, as epoch -1); the summary says so and names the weights and a
    command to try them; demo.png shows a test frame, the best weights' disparity of it and
    its exact depth."""
    from monodepth_tf.data.images import load_rgb
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.inference.colormap import colorize_disparity
    from monodepth_tf.inference.predictor import predict_disparity
    from monodepth_tf.weights.folder import load_networks

    run_dir = run.home / "tmp" / "mdp"
    assert (run_dir / "models" / "weights_final" / "config.json").is_file()
    assert not re.search(r"oneDNN|cuda|cuInit|absl::InitializeLog|retracing",
                         run.stdout + run.stderr, re.IGNORECASE), run.stderr[-3000:]
    assert run.stdout.count(" val loss ") == 6
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["epoch"] == -1 and records[0]["step"] == 0
    untrained = records[0]["abs_rel"]
    best = min(r["abs_rel"] for r in records[1:])
    assert best <= 0.5 * untrained, records
    weights = run_dir / "models" / "weights_best"
    assert f"untrained {untrained:.3f} -> best {best:.3f}" in run.stdout
    assert f"bin/predict --load_weights_folder {weights} --image_path " in run.stdout
    world = run.home / "tmp" / "synthetic_kitti"
    entry = read_split(world / "splits", "synthetic", "test")[0]
    frame = load_rgb(KittiRawLayout(world, "png").image_path(entry.folder, entry.frame_index,
                                                             entry.side))
    gt = np.load(world / "splits" / "synthetic" / "gt_depths.npz")["data"][0]
    picture = cv2.cvtColor(cv2.imread(str(run_dir / "demo.png")), cv2.COLOR_BGR2RGB)
    height, width = frame.shape[:2]
    assert picture.shape == (height, 3 * width, 3)
    image_panel, disp_panel, depth_panel = np.split(picture, 3, axis=1)
    np.testing.assert_array_equal(image_panel, frame)
    np.testing.assert_array_equal(depth_panel, colorize_disparity(1.0 / gt.astype(np.float64)))
    config, depth_net, _ = load_networks(weights, with_pose=False)
    assert (config.height, config.width) == (height, width)  # the world is at the feed size
    disp = predict_disparity(depth_net, config, [frame])[0]
    # (another process: its float32 sums may round differently at a colour step or two)
    same = np.all(disp_panel == colorize_disparity(disp), axis=-1)
    assert same.mean() > 0.99
    # near things are bright in both: the disparity ranks pixels as the exact depth does
    near = gt < np.median(gt)
    assert disp[near].mean() > 1.5 * disp[~near].mean()


def check_folder_data(run: Run) -> None:
    assert "drive_morning" in run.stdout and "drive_evening" in run.stdout, run.stdout


def check_sample(run: Run) -> None:
    image = cv2.imread(str(run.cwd / "sample.png"))
    assert image is not None and image.size > 0
    assert "wrote sample.png" in run.stdout


def check_folder_training(run: Run) -> None:
    trained("runs/my_videos", num_epochs=20, dataset="folder")(run)
    assert (run.home / "runs" / "my_videos" / "splits" / "folder" / "train_files.txt").is_file()


def video_frames(path: Path) -> Tuple[int, int, int]:
    """(frames, height, width) of a video, decoded."""
    capture = cv2.VideoCapture(str(path))
    count, shape = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape
    capture.release()
    return count, shape[0], shape[1]


def depth_video(path: str, source: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert video_frames(run.cwd / path) == video_frames(run.cwd / source)
    return check


def check_eigen_metrics(run: Run) -> None:
    """The median-scaling ratios and the original's table of the seven metrics (their values
    are tested against the original's in tests/test_evaluate_depth_tool.py)."""
    assert re.search(r"Scaling ratios \| med: \d+\.\d{3} \| std: \d+\.\d{3}", run.stdout), \
        run.stdout
    names = ["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"]
    lines = run.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[::2] == names)
    values = [float(v) for v in lines[head + 1].rstrip("\\").split("&")[1:]]
    assert len(values) == 7 and all(v > 0 for v in values[:4]), values
    assert 0 <= values[4] <= values[5] <= values[6] <= 1, values


def check_benchmark(run: Run) -> None:
    folder = run.cwd / "weights" / "stereo_640x192" / "benchmark_predictions"
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:010d}.png" for i in range(3)]
    depth = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert depth.shape == (352, 1216) and depth.dtype == np.uint16
    assert (folder / "submission.zip").is_file()


def check_street(run: Run) -> None:
    colour = cv2.imread(str(run.cwd / "street_disp.jpeg"))
    assert colour.shape == cv2.imread(str(run.cwd / "street.jpg")).shape
    assert np.load(run.cwd / "street_disp.npy").shape == (1, 1, 192, 640)


def check_metric_frames(run: Run) -> None:
    names = sorted(p.stem for p in (run.cwd / "frames").glob("*.png"))
    written = sorted(p.name for p in (run.cwd / "frames").glob("*_depth.npy"))
    assert written == [f"{name}_depth.npy" for name in names] and len(names) == 2


def check_kitti_cloud(run: Run) -> None:
    """kitti/0000000001.ply: the pixels whose depth (scale / the saved disparity resized to the
    frame) is at most 40, each on its pixel's ray through P_rect_02's intrinsics at that depth,
    coloured by the frame; the tool said where its intrinsics and scale came from. The scale
    follows the weights' config: here the cached "stereo" model is the reference checkpoint,
    whose encoder.pth says use_stereo false (the release's says true), so the cloud must be
    a monocular one, depth = 1 / disparity of unknown scale; the metric case (x5.4) and the PLY
    against the network run directly are tests/test_inference_point_cloud.py's."""
    from monodepth_tf.cli.predict import disparity_at
    from monodepth_tf.data.images import load_rgb
    from monodepth_tf.weights.folder import read_config
    from tests.helpers import kitti_camera_by_hand, read_ply, reproject

    config = read_config(run.home / ".keras" / "monodepth_tf" / "zoo" / STEREO_ZOO)
    scale = 5.4 if config.use_stereo else 1.0
    assert "intrinsics: kitti/calib_cam_to_cam.txt" in run.stdout, run.stdout
    assert ("metric (metres)" if config.use_stereo else "unknown (monocular") in run.stdout
    assert "depth > 40 dropped" in run.stdout
    image = load_rgb(run.cwd / "kitti" / "0000000001.png")
    disparity = np.load(run.cwd / "kitti" / "0000000001_disp.npy")[0, 0]
    depth = scale / disparity_at(disparity, *image.shape[:2]).astype(np.float64)
    _, points, colours = read_ply(run.cwd / "kitti" / "0000000001.ply")
    cam = kitti_camera_by_hand(run.cwd / "kitti" / "calib_cam_to_cam.txt")
    uv = reproject(points, cam["fx"], cam["fy"], cam["cx"], cam["cy"])
    x, y = np.round(uv).astype(int).T
    assert np.abs(uv - np.stack([x, y], 1)).max() < 2e-4
    np.testing.assert_allclose(points[:, 2], depth[y, x], rtol=1e-6)
    np.testing.assert_array_equal(colours, image[y, x])
    expected = np.flatnonzero(depth <= 40.0)
    np.testing.assert_array_equal(y * image.shape[1] + x, expected)
    assert 0 < len(expected) < depth.size, len(expected)


def check_pose(run: Run) -> None:
    assert re.search(r"Trajectory error: \d+\.\d{3}, std: \d+\.\d{3}", run.stdout), run.stdout


def run_again(run: Run, command: str) -> None:
    """Runs another command in ``run``'s HOME, working directory and environment."""
    result = subprocess.run(["bash", "-c", command], cwd=run.cwd, env=run.env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"


def check_export(run: Run) -> None:
    """serving/mdp/1/ serves street.jpg at its own size: bin/predict's disparity (resized back
    as bin/predict does) to 1e-4 relative, as the README says, depth = 1 / disparity, and no
    metric_depth (a mono model)."""
    import tensorflow as tf
    from monodepth_tf.cli.predict import disparity_at
    from monodepth_tf.data.images import load_rgb

    folder = run.cwd / "serving" / "mdp" / "1"
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    image = load_rgb(run.cwd / "street.jpg")
    out = {name: value.numpy()[0] for name, value in serve(images=tf.constant(image[None])).items()}
    assert sorted(out) == ["depth", "disparity"]
    run_again(run, "bin/predict --image_path street.jpg --load_weights_folder "
                   "weights/mono_640x192")
    expected = disparity_at(np.load(run.cwd / "street_disp.npy")[0, 0], *image.shape[:2])
    assert out["disparity"].shape == image.shape[:2]
    np.testing.assert_allclose(out["disparity"], expected, rtol=1e-4)
    np.testing.assert_allclose(out["depth"], 1.0 / out["disparity"], rtol=1e-6)


def check_export_int8(run: Run) -> None:
    assert (run.cwd / "serving" / "mdp" / "2" / "saved_model.pb").is_file()
    tflite = list((run.cwd / "serving" / "mdp").glob("*.tflite"))
    assert tflite and all(p.stat().st_size > 1_000_000 for p in tflite), tflite


def check_export_onnx_openvino(run: Run) -> None:
    """serving/mdp/mdp_v3.onnx, .xml and .bin beside the version folder: onnxruntime's and
    OpenVINO's disparity of street.jpg at the feed size equal the network's
    (weights/mono_640x192, called directly)."""
    from monodepth_tf.data.images import load_rgb
    from monodepth_tf.data.resize import resize_lanczos
    from monodepth_tf.export import onnx_runner, openvino_runner

    model_dir = run.cwd / "serving" / "mdp"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "3", "mdp_v3.bin", "mdp_v3.onnx", "mdp_v3.xml"]
    image = load_rgb(run.cwd / "street.jpg")
    feed = resize_lanczos(image, 192, 640)[None] / np.float32(255.0)
    expected = direct_disparities(run.cwd / "weights" / "mono_640x192", [image])
    # the reference weights amplify summation order (tests/test_export_onnx.py): 1e-3
    np.testing.assert_allclose(onnx_runner(model_dir / "mdp_v3.onnx")(feed), expected, rtol=1e-3)
    np.testing.assert_allclose(openvino_runner(model_dir / "mdp_v3.xml")(feed), expected,
                               rtol=1e-3)


def check_converted(run: Run) -> None:
    folder = run.cwd / "weights" / "mono_640x192"
    config = json.loads((folder / "config.json").read_text())
    assert config["num_layers"] == 18 and (config["height"], config["width"]) == (192, 640)
    assert len(list(folder.glob("*.weights.h5"))) >= 2


def check_split_data(run: Run) -> None:
    assert "samples of split eigen_zhou checked" in run.stdout, run.stdout


def check_gt_export(run: Run) -> None:
    """The LiDAR maps hold, where they have points, the world's exact depth."""
    split = run.home / "monodepth2" / "splits" / "eigen"
    exported = np.load(split / "gt_depths.npz", allow_pickle=True)["data"]
    exact = np.load(run.home / "kitti_data" / "splits" / "synthetic" / "gt_depths.npz")["data"]
    assert len(exported) == len((split / "test_files.txt").read_text().splitlines())
    for sparse, dense in zip(exported, exact):
        filled = sparse > 0
        assert filled.sum() > 100
        np.testing.assert_allclose(sparse[filled], dense[filled], rtol=1e-5)


def release_drives(split: Optional[str]) -> List[str]:
    """The drive folders (``<date>/<drive>_sync``) of a standard split's lists, or of the
    original's archive list (``split`` None), read from ../shared/kitti's copies of them."""
    splits = shared_dir() / "kitti" / "splits"
    if split is None:
        names = [url.rsplit("/", 1)[1] for url in
                 (splits / "kitti_archives_to_download.txt").read_text().split()]
        return sorted(f"{name[:10]}/{name[:-4]}" for name in names if "_drive_" in name)
    return sorted({line.split()[0] for path in (splits / split).glob("*_files.txt")
                   for line in path.read_text().splitlines() if line.strip()})


def check_release_files(folder: Path, splits: Optional[str] = None) -> None:
    """``folder`` holds the release's licence and the lists of ``splits`` (all when None),
    each with the SHA-256 of the release (the table checked against ../shared/kitti by
    test_download_kitti)."""
    names = [name for name in SPLIT_FILES if splits is None or name.split("/")[0] == splits]
    assert names
    for name in names:
        assert sha256_of(folder / name) == SPLIT_FILES[name], name
    assert sha256_of(folder / LICENSE_NAME) == LICENSE_SHA256


def splits_fetched(where: str) -> Callable[[Run], None]:
    """Check: the six standard splits, the licence and nothing else in ``where`` (under HOME,
    or ``repository``: the repository's ``splits/``, beside its README)."""
    def check(run: Run) -> None:
        repository = run.cwd / "splits"
        folder = repository if where == "repository" else run.home / where
        kept = {"README.md", ".gitignore"}
        expected = set(SPLIT_FILES) | {LICENSE_NAME} | (kept if where == "repository" else set())
        assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} \
            == expected
        check_release_files(folder)
        if where != "repository":  # the repository's folder got nothing
            assert {p.name for p in repository.iterdir()} == kept
        assert "NON-COMMERCIAL" in run.stdout and str(folder / LICENSE_NAME) in run.stdout
    return check


def check_drive(data: Path, drive: str, jpeg: bool, depth: bool) -> None:
    """One downloaded drive folder: the real frame's scan and images (as JPEGs: only they),
    and the improved depth map when asked."""
    folder = data / drive
    scan = folder / "velodyne_points" / "data" / f"{FRAME}.bin"
    assert scan.read_bytes() == source_file(shared_dir() / "kitti", "velodyne_points",
                                            "bin").read_bytes()
    for camera in ("image_02", "image_03"):
        source = source_file(shared_dir() / "kitti", camera, "png")
        images = sorted((folder / camera / "data").iterdir())
        assert [p.name for p in images] == [f"{FRAME}.{'jpg' if jpeg else 'png'}"], images
        if not jpeg:
            assert images[0].read_bytes() == source.read_bytes()
            continue
        decoded = cv2.imread(str(images[0])).astype(np.int16)
        error = np.abs(decoded - cv2.imread(str(source))).mean()
        assert 0 < error < 6.0, error  # quality 92 4:2:0 (test_download_kitti: 4.46)
    improved = folder / "proj_depth" / "groundtruth" / "image_02" / f"{FRAME}.png"
    assert (improved.read_bytes() == depth_png()) if depth else not improved.exists()


def kitti_downloaded(split: Optional[str], jpeg: bool = False,
                     depth: bool = False) -> Callable[[Run], None]:
    """Check: ``~/kitti_data`` holds exactly the drives of ``split`` (all 61 when None) in
    KITTI's layout, each date's calibration, and a marker per archive (no archive left); a
    standard split's lists were fetched first into the repository's ``splits/``."""
    def check(run: Run) -> None:
        data = run.home / "kitti_data"
        drives = release_drives(split)
        dates = sorted({drive[:10] for drive in drives})
        assert sorted(f"{p.parent.name}/{p.name}" for p in data.glob("*/*")
                      if p.is_dir()) == drives
        assert sorted(p.name for p in data.iterdir()) == sorted(dates + [kd.WORK_FOLDER])
        for date in dates:
            for name in CALIB_FILES:
                assert (data / date / name).read_bytes() == \
                    (shared_dir() / "kitti" / "raw" / SOURCE_DATE / name).read_bytes()
        for drive in drives:
            check_drive(data, drive, jpeg, depth)
        archives = [f"{date}_calib.zip" for date in dates] + \
            [f"{drive.split('/')[1]}.zip" for drive in drives] + ([kd.DEPTH_ARCHIVE] * depth)
        assert sorted(os.listdir(data / kd.WORK_FOLDER)) == sorted(f"{name}.done"
                                                                   for name in archives)
        assert f"done: {len(archives)} archives fetched, 0 already there" in run.stdout
        if split is not None:
            assert f"fetched the split lists of {split}" in run.stdout
            check_release_files(run.cwd / "splits", split)
    return check


def check_release_prediction(run: Run) -> None:
    """The release, downloaded and cached, predicts what bin/predict does with the folder
    bin/convert_weights made of the same checkpoints, bit for bit."""
    assert "non-commercial use only" in run.stdout + run.stderr
    cache = run.home / ".keras" / "monodepth_tf" / "zoo" / "mono_640x192"
    assert (cache / "config.json").is_file()
    released = np.load(run.cwd / "street_disp.npy")
    assert released.shape == (1, 1, 192, 640)
    run_again(run, "bin/predict --image_path street.jpg --load_weights_folder "
                   "weights/mono_640x192 --output_dir converted")
    np.testing.assert_array_equal(released, np.load(run.cwd / "converted" / "street_disp.npy"))


# ---------------------------------------------------------------------------- the fixtures

KITTI = {"kitti_data": "kitti_data", ".keras/models": "keras_models"}
WEIGHTS_MONO = {"weights/mono_640x192": "weights"}
MY_VIDEOS = {"my_videos": "my_videos"}
OWN_SPLITS = {"kitti_data": "kitti_data_jpg", "monodepth2/splits": "splits_lists",
              ".keras/models": "keras_models"}
DOWNLOAD = dict(mirror=True, repository=True)

CASES: Dict[str, Case] = {
    # the set-up command's bin/train (see NOT_RUN); the README: 5.2 minutes alone
    "bin/train": Case(check_demo, slow=310, user_log_level=True),
    "bin/train --mode=mono --data_path ~/kitti_data --split eigen_zhou --png": Case(
        trained("tmp/mdp", split="eigen_zhou", frame_ids=[0, -1, 1], use_stereo=False,
                data_path="~/kitti_data"), home=KITTI, append=SMALL_TRAINING, slow=60),
    "bin/train --mode=stereo --data_path ~/kitti_data --png # split eigen_full": Case(
        trained("tmp/mdp", split="eigen_full", frame_ids=[0], use_stereo=True),
        home=KITTI, append=SMALL_TRAINING, slow=60),
    "bin/train --mode=mono_stereo --data_path ~/kitti_data --png": Case(
        trained("tmp/mdp", split="eigen_zhou", frame_ids=[0, -1, 1], use_stereo=True),
        home=KITTI, append=SMALL_TRAINING, slow=60),
    "bin/train --model_zoo monodepth2_resnet18_kitti_mono_stereo_640x192 --model_zoo_pose "
    "monodepth2_resnet18_posenet_kitti_mono_stereo_640x192 --pretrained_base --frame_ids 0 -1 1 "
    "--use_stereo --log_dir ./tmp/mono_stereo/ --png --gpu 0 --batch_size 8": Case(
        trained("./tmp/mono_stereo/mdp", batch_size=8, use_stereo=True,
                data_path="~/.mxnet/datasets/kitti/kitti_data"),
        home={".mxnet/datasets/kitti/kitti_data": "kitti_data", ".keras/models": "keras_models"},
        append=SMALL_TRAINING, slow=60),
    "bin/download_kitti --splits_only # the standard split lists": Case(
        splits_fetched("repository"), **DOWNLOAD),
    "bin/download_kitti --data_path ~/kitti_data --split eigen_zhou --jpeg # only the drives it "
    "needs": Case(kitti_downloaded("eigen_zhou", jpeg=True), **DOWNLOAD),
    "bin/download_kitti --data_path ~/kitti_data --jpeg # everything": Case(
        kitti_downloaded(None, jpeg=True), **DOWNLOAD),
    "bin/download_kitti --data_path ~/kitti_data --split eigen_benchmark # + improved depth "
    "maps": Case(kitti_downloaded("eigen_benchmark", depth=True), **DOWNLOAD),
    "bin/check_data --dataset folder --data_path my_videos --target_fps 10": Case(
        check_folder_data, cwd=MY_VIDEOS),
    "bin/show_sample --dataset folder --data_path my_videos --target_fps 10 --index 0 "
    "--output sample.png": Case(check_sample, cwd=MY_VIDEOS),
    "bin/train --dataset folder --data_path my_videos --target_fps 10 --skip_static 0.01 "
    "--log_dir ~/runs --model_name my_videos --num_epochs 20": Case(
        check_folder_training, cwd=MY_VIDEOS, home={".keras/models": "keras_models"},
        append=SMALL_TRAINING),
    "bin/predict --image_path my_videos/drive_morning.mp4 --load_weights_folder "
    "~/runs/my_videos/models/weights_final --output_dir depth": Case(
        depth_video("depth/drive_morning_disp.mp4", "my_videos/drive_morning.mp4"),
        cwd=MY_VIDEOS, home={"runs/my_videos/models/weights_final": "weights"}),
    "bin/evaluate_depth --load_weights_folder weights/mono_640x192 --eval_mono --data_path "
    "~/kitti_data --eval_split eigen --split_dir splits --png": Case(
        check_eigen_metrics, home=KITTI, cwd=dict(WEIGHTS_MONO, splits="splits_with_gt")),
    "bin/evaluate_depth --load_weights_folder weights/stereo_640x192 --eval_split benchmark "
    "--data_path ~/kitti_data/depth_selection --png --split_dir splits": Case(
        check_benchmark, home={"kitti_data/depth_selection": "depth_selection"},
        cwd={"weights/stereo_640x192": "weights", "splits": "splits_with_gt"}),
    "bin/predict --model_name mono_640x192 --image_path street.jpg": Case(
        check_release_prediction, cwd=dict(WEIGHTS_MONO, **{"street.jpg": "street.jpg"}),
        mirror=True),
    "bin/predict --image_path street.jpg --load_weights_folder weights/mono_640x192": Case(
        check_street, cwd=dict(WEIGHTS_MONO, **{"street.jpg": "street.jpg"})),
    "bin/predict --image_path frames/ --ext png --model_zoo "
    "monodepth2_resnet18_kitti_stereo_640x192 --pred_metric_depth": Case(
        check_metric_frames, cwd={"frames": "frames"},
        home={f".keras/monodepth_tf/zoo/{STEREO_ZOO}": "reference_pth"}),
    "bin/predict --image_path drive.mp4 --load_weights_folder weights/mono_640x192": Case(
        depth_video("drive_disp.mp4", "drive.mp4"),
        cwd=dict(WEIGHTS_MONO, **{"drive.mp4": "drive.mp4"})),
    "bin/predict --image_path kitti/0000000001.png --model_zoo "
    "monodepth2_resnet18_kitti_stereo_640x192 --point_cloud --intrinsics "
    "kitti/calib_cam_to_cam.txt --max_depth 40": Case(
        check_kitti_cloud, cwd={"kitti": "kitti_frame"},
        home={f".keras/monodepth_tf/zoo/{STEREO_ZOO}": "reference_pth"}),
    "bin/evaluate_pose --load_weights_folder ~/tmp/mdp/models/weights_19 --data_path "
    "~/kitti_odom --eval_split odom_9 --png": Case(
        check_pose, home={"tmp/mdp/models/weights_19": "weights", "kitti_odom": "kitti_odom"}),
    "bin/export --load_weights_folder weights/mono_640x192 --export_dir serving # -> "
    "serving/mdp/1/": Case(check_export, cwd=dict(WEIGHTS_MONO, **{"street.jpg": "street.jpg"})),
    "bin/export --model_zoo monodepth2_resnet18_kitti_stereo_640x192 --export_dir serving "
    "--version 2 --tflite --tflite_quantize int8 --calibration_images some_frames/": Case(
        check_export_int8, cwd={"some_frames": "some_frames"},
        home={f".keras/monodepth_tf/zoo/{STEREO_ZOO}": "reference_pth"}, slow=60),
    "bin/export --load_weights_folder weights/mono_640x192 --export_dir serving --version 3 "
    "--onnx --openvino # + serving/mdp/mdp_v3.onnx, mdp_v3.xml and mdp_v3.bin": Case(
        check_export_onnx_openvino, cwd=dict(WEIGHTS_MONO, **{"street.jpg": "street.jpg"})),
    "bin/convert_weights --pytorch_dir ~/models/mono_640x192 --output_dir weights/mono_640x192":
        Case(check_converted, home={"models/mono_640x192": "reference_pth"}),
    # splits/README.md
    "bin/download_kitti --splits_only # into this folder": Case(
        splits_fetched("repository"), **DOWNLOAD),
    "bin/download_kitti --splits_only --split_dir ~/splits # or into another one": Case(
        splits_fetched("splits"), **DOWNLOAD),
    "bin/check_data --data_path ~/kitti_data --split eigen_zhou --split_dir ~/monodepth2/splits":
        Case(check_split_data, home=OWN_SPLITS),
    "bin/train --data_path ~/kitti_data --split eigen_zhou --split_dir ~/monodepth2/splits":
        Case(trained("tmp/mdp", split="eigen_zhou", split_dir="~/monodepth2/splits"),
             home=OWN_SPLITS, append=SMALL_TRAINING, slow=60),
    "bin/export_gt_depth --data_path ~/kitti_data --split eigen --split_dir ~/monodepth2/splits":
        Case(check_gt_export, home=OWN_SPLITS),
}


def check_setup_command(command: str) -> None:
    """Its last part is the demo run, which runs as CASES["bin/train"]."""
    assert command.split(" && ")[-1] == ".venv/bin/python bin/train"


def check_test_command(command: str) -> None:
    script = (PROJECT_ROOT / "bin" / "test").read_text()
    assert os.access(PROJECT_ROOT / "bin" / "test", os.X_OK)
    assert 'exec .venv/bin/python -m pytest "$@"' in script
    assert subprocess.run(["bash", "-n", str(PROJECT_ROOT / "bin" / "test")]).returncode == 0


def check_quick_test_command(command: str) -> None:
    """bin/test passes its arguments to pytest, and ``slow`` is a registered marker (pytest
    would only warn about an unknown one), so the quick run deselects the slow tests."""
    check_test_command(command)
    config = (PROJECT_ROOT / "setup.cfg").read_text()
    assert "markers =" in config and "\n    slow:" in config


def check_serving_command(command: str, assets: Dict[str, Path], base: Path) -> None:
    """The model base path it names holds a numeric version folder with saved_model.pb once
    the README's preceding command (bin/export) has run."""
    commands = readme_commands()
    export = commands[commands.index(command) - 1]
    run = run_command(export, CASES[export], assets, base)
    path = Path(re.search(r"--model_base_path=(\S+)", command).group(1)
                .replace("$PWD", str(run.cwd)))
    versions = [p for p in path.iterdir() if p.name.isdigit()]
    assert versions and all((p / "saved_model.pb").is_file() for p in versions)


# command -> (why it does not run here, how it is checked instead)
NOT_RUN: Dict[str, Tuple[str, Callable]] = {
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python bin/train": (
        "creates .venv and installs the project from the network", check_setup_command),
    "bin/test": ("runs this test suite (recursion)", check_test_command),
    'bin/test -m "not slow"': ("runs this test suite (recursion); the marker must be registered",
                               check_quick_test_command),
    "tensorflow_model_server --rest_api_port=8501 --model_name=mdp "
    "--model_base_path=$PWD/serving/mdp": (
        "TF Serving is not installable here", check_serving_command),
}


# ---------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def assets(tmp_path_factory, reference_dir, shared) -> Dict[str, Path]:
    return build_assets(tmp_path_factory.mktemp("readme_assets"), reference_dir, shared)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, kitti_dir, reference_dir) -> Dict[str, str]:
    """The local mirror, running while the module's tests run: the download addresses'
    variables -> its addresses of KITTI, the split lists and the model zoo."""
    root = tmp_path_factory.mktemp("mirror")
    drives = [folder.split("/")[1] for folder in release_drives(None)]
    improved = [folder.split("/")[1] for folder in release_drives("eigen_benchmark")]
    serve_kitti(root / "kitti", kitti_dir, drives, improved, compression=zipfile.ZIP_STORED)
    serve_splits(root / "monodepth2", kitti_dir)
    release = release_zip(reference_dir, "mono_640x192")
    (root / "zoo").mkdir()
    (root / "zoo" / "mono_640x192.zip").write_bytes(release)
    (root / "zoo" / "mono_640x192.zip.md5").write_text(f"{md5_of(release)}  mono_640x192.zip\n")
    with FileServer(root=root) as server:
        yield {kd.KITTI_URL_VARIABLE: f"{server.url}kitti",
               "MONODEPTH_SPLITS_URL": f"{server.url}monodepth2",
               "MONODEPTH_ZOO_URL": f"{server.url}zoo/"}


def test_every_readme_command_has_a_test():
    commands = readme_commands()
    assert len(commands) >= 20  # the parser found the READMEs' blocks
    for command in commands:
        if command not in CASES and command not in NOT_RUN:
            pytest.fail(f"README command without a test: {command}")
    stale = [c for c in list(CASES) + list(NOT_RUN) if c not in commands and c != "bin/train"]
    assert not stale, f"tests of commands no longer in the READMEs: {stale}"


def test_code_blocks_are_parsed_as_markdown_shows_them():
    text = ("Run:\n\n    bin/a --x 1 \\\n        --y 2   # note\n\nprose `bin/b`\n\n"
            "```python\nbin/c = 1\n```\n\n```bash\n# comment\nbin/d --z\nmy_videos/\n```\n"
            "- item:\n\n      bin/e\n  continued prose\n")
    lines = code_lines(text)
    assert lines == ["bin/a --x 1 \\", "--y 2   # note", "# comment", "bin/d --z", "my_videos/",
                     "bin/e"]


def case_params():
    params = []
    for command in readme_commands() + ["bin/train"]:
        seconds = CASES[command].slow if command in CASES else 0
        params.append(pytest.param(command,
                                   marks=[pytest.mark.slow(seconds=seconds)] if seconds else [],
                                   id=command))
    return params


@pytest.mark.parametrize("command", case_params())
def test_readme_command_runs_as_written(command, assets, tmp_path, request):
    if command in NOT_RUN:
        reason, check = NOT_RUN[command]
        if check is check_serving_command:
            check(command, assets, tmp_path)
        else:
            check(command)
        return
    if command not in CASES:
        pytest.fail(f"README command without a test: {command}")
    case = CASES[command]
    mirror = request.getfixturevalue("mirror") if case.mirror else None
    case.check(run_command(command, case, assets, tmp_path, mirror))
