"""--dataset folder: frame folders and videos with an intrinsics.json, against the KITTI path
on the same frames (the synthetic world exported as plain folders)."""

import json
import logging
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.data.errors import DataError
from monodepth_tf.data.folder import (FolderLayout, FolderOptions, check_folder, frame_motion,
                                      make_splits, read_kitti_calib)
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.pipeline import NORMALIZED_K, PipelineOptions, make_dataset
from monodepth_tf.data.splits import SplitEntry
from monodepth_tf.synthetic import BASELINE, Intrinsics, make_synthetic_kitti
from monodepth_tf.training.options import OptionsError, TrainOptions
from tests.helpers import PROJECT_ROOT, export_kitti_drive_as_folder

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
HEIGHT, WIDTH = 64, 192
# KITTI's normalized intrinsics in pixels of the 64x192 frames: the folder path then must give
# the KITTI path's K exactly
KITTI_CAMERA = dict(fx=0.58 * WIDTH, fy=1.92 * HEIGHT, cx=0.5 * WIDTH, cy=0.5 * HEIGHT,
                    width=WIDTH, height=HEIGHT, baseline=0.1)
LOSSY_ERROR = 6.0  # of 255; measured here: MJPG 3.4, mp4v 4.3
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    make_synthetic_kitti(root, seed=0, num_drives=1, frames_per_drive=12, height=HEIGHT,
                         width=WIDTH, workers=1)
    return root


@pytest.fixture(scope="module")
def stereo_folder(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    export_kitti_drive_as_folder(world, DRIVE, root, "drive1", stereo=True,
                                 camera=KITTI_CAMERA)
    return root


def left_frames(world):
    return sorted((world / DRIVE / "image_02" / "data").glob("*.png"))


def flat(batch):
    return [t.numpy() for t in tf.nest.flatten(batch)]


@pytest.mark.parametrize("augment", [False, True])
def test_folder_batches_equal_the_kitti_batches_on_the_same_frames(world, stereo_folder,
                                                                   augment):
    options = PipelineOptions(HEIGHT, WIDTH, (0, -1, 1, "s"), augment=augment, seed=5)
    entries = [SplitEntry(DRIVE, i, side) for i in (1, 4, 10) for side in "lr"]
    folder_entries = [SplitEntry("drive1", e.frame_index, e.side) for e in entries]
    kitti = list(make_dataset(KittiRawLayout(world, "png"), entries, options, 2, epoch=1))
    folder = list(make_dataset(FolderLayout(stereo_folder), folder_entries, options, 2,
                               epoch=1))
    assert len(kitti) == len(folder) == 3
    for a, b in zip(kitti, folder):
        for x, y in zip(flat(a), flat(b)):
            np.testing.assert_array_equal(x, y)
        for s in range(4):  # and K per scale is KITTI's normalized K times the scale's size
            expected = NORMALIZED_K.copy()
            expected[0] *= WIDTH // 2 ** s
            expected[1] *= HEIGHT // 2 ** s
            np.testing.assert_array_equal(b.K[s].numpy()[0], expected)
        np.testing.assert_array_equal(np.abs(b.stereo_T.numpy()[:, 0, 3]), np.float32([0.1, 0.1]))


def test_each_sequence_has_its_own_intrinsics_and_off_centre_disables_flips(world, tmp_path,
                                                                           caplog):
    frames = left_frames(world)
    for name in ("centred", "shifted"):
        (tmp_path / name).mkdir()
        for path in frames:
            shutil.copyfile(path, tmp_path / name / path.name)
    # dataset-wide camera, overridden for "shifted" (a principal point 0.1 of the width off)
    (tmp_path / "intrinsics.json").write_text(json.dumps(
        dict(fx=100.0, fy=80.0, cx=96.0, cy=32.0, width=192, height=64)))
    (tmp_path / "shifted" / "intrinsics.json").write_text(json.dumps(
        dict(fx=200.0, fy=160.0, cx=240.0, cy=60.0, width=384, height=128)))
    with caplog.at_level(logging.WARNING):
        layout = FolderLayout(tmp_path)
    assert "horizontal flips are off for sequence shifted" in caplog.text
    assert "sequence centred" not in caplog.text
    entries = [SplitEntry(name, i, "l") for name in ("centred", "shifted") for i in range(1, 11)]
    plain = PipelineOptions(HEIGHT, WIDTH, (0, -1, 1), augment=False)
    augmented = PipelineOptions(HEIGHT, WIDTH, (0, -1, 1), augment=True, seed=2)
    a = list(make_dataset(layout, entries, plain, 1, shuffle=False))
    b = list(make_dataset(layout, entries, augmented, 1, shuffle=False))
    flipped = {"centred": 0, "shifted": 0}
    for entry, x, y in zip(entries, a, b):
        cx, fx = (96.0, 100.0) if entry.folder == "centred" else (240.0, 200.0)
        cy, fy = (32.0, 80.0) if entry.folder == "centred" else (60.0, 160.0)
        size = (192, 64) if entry.folder == "centred" else (384, 128)
        for s in range(4):
            w, h = WIDTH // 2 ** s, HEIGHT // 2 ** s
            expected = [[fx / size[0] * w, 0, cx / size[0] * w], [0, fy / size[1] * h,
                                                                  cy / size[1] * h]]
            np.testing.assert_allclose(x.K[s].numpy()[0, :2, :3], expected, rtol=1e-6)
            np.testing.assert_allclose(x.K[s].numpy()[0] @ x.inv_K[s].numpy()[0], np.eye(4),
                                       atol=1e-5)
        flipped[entry.folder] += not np.array_equal(x.color["0"][0].numpy(),
                                                    y.color["0"][0].numpy())
    assert flipped["shifted"] == 0 and flipped["centred"] > 0


def test_video_gives_the_frames_back(world, tmp_path):
    frames = [cv2.imread(str(p)) for p in left_frames(world)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "intrinsics.json").write_text(json.dumps(KITTI_CAMERA))
    for name, codec in (("lossless.avi", "FFV1"), ("mjpg.avi", "MJPG"), ("mp4v.mp4", "mp4v")):
        writer = cv2.VideoWriter(str(data / name), cv2.VideoWriter_fourcc(*codec), 10,
                                 (WIDTH, HEIGHT))
        assert writer.isOpened(), codec
        for frame in frames:
            writer.write(frame)
        writer.release()
    layout = FolderLayout(data, FolderOptions(cache_dir=str(tmp_path / "cache")))
    assert sorted(layout.sequences) == ["lossless", "mjpg", "mp4v"]
    decoded = {name: [cv2.imread(str(p)) for p in seq.frames]
               for name, seq in layout.sequences.items()}
    assert all(len(d) == 12 for d in decoded.values())
    for got, want in zip(decoded["lossless"], frames):
        np.testing.assert_array_equal(got, want)  # FFV1 + PNG cache: exact
    # lossy codecs: within codec error (mean |difference| of 8-bit values)
    for name in ("mjpg", "mp4v"):
        errors = [np.abs(got.astype(float) - want).mean()
                  for got, want in zip(decoded[name], frames)]
        assert max(errors) < LOSSY_ERROR, (name, errors)
    # a second opening reuses the cache; a stride decodes every other frame
    stamp = (layout.sequences["lossless"].frames[0].parent / "frames.json").stat().st_mtime_ns
    again = FolderLayout(data, FolderOptions(cache_dir=str(tmp_path / "cache")))
    assert (again.sequences["lossless"].frames[0].parent / "frames.json").stat().st_mtime_ns \
        == stamp
    strided = FolderLayout(data, FolderOptions(frame_stride=2,
                                               cache_dir=str(tmp_path / "cache")))
    got = [cv2.imread(str(p)) for p in strided.sequences["lossless"].frames]
    assert len(got) == 6
    for a, b in zip(got, frames[::2]):
        np.testing.assert_array_equal(a, b)
    # --target_fps reads the video's rate (written at 10 fps): 5 fps keeps every other frame
    halved = FolderLayout(data, FolderOptions(target_fps=5, cache_dir=str(tmp_path / "cache")))
    assert halved.sequences["lossless"].frames == strided.sequences["lossless"].frames


def test_subsampling_static_frames_and_motion(tmp_path):
    # frames of constant grey levels: the motion between two is |a - b| / 255
    levels = [0, 0, 51, 51, 51, 102, 255, 255]
    (tmp_path / "seq").mkdir()
    for i, level in enumerate(levels):
        cv2.imwrite(str(tmp_path / "seq" / f"f{i}.png"), np.full((8, 16, 3), level, np.uint8))
    (tmp_path / "seq" / "intrinsics.json").write_text(json.dumps(
        dict(fx=8, fy=8, cx=8, cy=4, width=16, height=8, fps=30)))
    layout = FolderLayout(tmp_path)
    frames = layout.sequences["seq"].frames
    np.testing.assert_allclose(frame_motion(frames), np.abs(np.diff(levels)) / 255.0, rtol=1e-6)
    kept = FolderLayout(tmp_path, FolderOptions(skip_static=0.1)).sequences["seq"].frames
    assert [p.name for p in kept] == ["f0.png", "f2.png", "f5.png", "f6.png"]
    kept = FolderLayout(tmp_path, FolderOptions(target_fps=10)).sequences["seq"].frames
    assert [p.name for p in kept] == ["f0.png", "f3.png", "f6.png"]  # stride round(30 / 10)
    # natural order: f10 comes after f9
    cv2.imwrite(str(tmp_path / "seq" / "f10.png"), np.zeros((8, 16, 3), np.uint8))
    assert FolderLayout(tmp_path).sequences["seq"].frames[-1].name == "f10.png"


def test_splits_divide_by_sequence(world, tmp_path):
    for name in ("a", "b", "c"):
        export_kitti_drive_as_folder(world, DRIVE, tmp_path, name, camera=KITTI_CAMERA)
    layout = FolderLayout(tmp_path)
    train, val = make_splits(layout, (0, -1, 1))
    assert {e.folder for e in val} == {"c"} and {e.folder for e in train} == {"a", "b"}
    assert [e.frame_index for e in val] == list(range(1, 11))  # 12 frames: 1..10 usable
    single = FolderLayout(tmp_path, FolderOptions()).samples((0, -2, 2), "a")
    assert [e.frame_index for e in single] == list(range(2, 10))


def test_trains_through_bin_train_and_writes_its_split(stereo_folder, tmp_path):
    # stereo mode (no pose network: half the run time of mono here; the mono samples are the
    # KITTI path's, see above)
    command = [sys.executable, str(PROJECT_ROOT / "bin" / "train"), "--dataset", "folder",
               "--mode", "stereo", "--data_path", str(stereo_folder), "--height", str(HEIGHT),
               "--width", str(WIDTH), "--batch_size", "2", "--weights_init", "scratch",
               "--scales", "0", "--log_dir", str(tmp_path), "--model_name", "run",
               "--num_epochs", "1", "--max_steps", "1", "--val_samples", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "training run on 22 samples" in log and "val loss" in log
    # one sequence, frames 0..11 usable on both sides (frames 0, s): val is the last frame
    split = tmp_path / "run" / "splits" / "folder"
    train = split.joinpath("train_files.txt").read_text().splitlines()
    assert train[:3] == ["drive1 0 l", "drive1 0 r", "drive1 1 l"] and len(train) == 22
    assert split.joinpath("val_files.txt").read_text() == "drive1 11 l\ndrive1 11 r\n"
    assert (tmp_path / "run" / "models" / "weights_final").is_dir()


def make_bad(tmp_path, case):
    """A dataset with one problem; returns the file the error must name."""
    good = np.zeros((8, 16, 3), np.uint8)
    (tmp_path / "intrinsics.json").write_text(json.dumps(
        dict(fx=8, fy=8, cx=8, cy=4, width=16, height=8)))
    (tmp_path / "seq").mkdir()
    if case == "one image":
        cv2.imwrite(str(tmp_path / "seq" / "0.png"), good)
        return tmp_path / "seq" / "0.png", "has 1 frame(s)"
    cv2.imwrite(str(tmp_path / "seq" / "0.png"), good)
    cv2.imwrite(str(tmp_path / "seq" / "1.png"), good)
    if case == "unreadable video":
        (tmp_path / "clip.mp4").write_bytes(b"this is not a video" * 10)
        return tmp_path / "clip.mp4", "OpenCV cannot open this video"
    if case == "missing field":
        (tmp_path / "seq" / "intrinsics.json").write_text(json.dumps(
            dict(fx=8, cx=8, cy=4, width=16, height=8)))
        return tmp_path / "seq" / "intrinsics.json", "missing field(s) fy"
    cv2.imwrite(str(tmp_path / "seq" / "2.png"), np.zeros((8, 20, 3), np.uint8))
    return tmp_path / "seq" / "2.png", "20x8 image in a sequence of 16x8 images"


@pytest.mark.parametrize("case", ["one image", "unreadable video", "missing field",
                                  "mixed sizes"])
def test_bad_input_names_the_file(tmp_path, case):
    path, message = make_bad(tmp_path, case)
    with pytest.raises(DataError) as error:
        FolderLayout(tmp_path, FolderOptions(cache_dir=str(tmp_path / "cache")))
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_bad_input_through_the_tool_exits_2(tmp_path):
    (tmp_path / "data").mkdir()
    path, message = make_bad(tmp_path / "data", "missing field")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "train"), "--dataset",
                             "folder", "--data_path", str(tmp_path / "data"), "--log_dir",
                             str(tmp_path / "logs")], capture_output=True, text=True,
                            timeout=300, env=ENV)
    assert result.returncode == 2
    assert f"error: {path}: {message}" in result.stderr


def test_a_kitti_calibration_file_gives_the_camera(world, tmp_path):
    (tmp_path / "seq").mkdir()
    for path in left_frames(world)[:3]:
        shutil.copyfile(path, tmp_path / "seq" / path.name)
    shutil.copyfile(world / "2011_09_26" / "calib_cam_to_cam.txt",
                    tmp_path / "seq" / "calib_cam_to_cam.txt")
    camera = read_kitti_calib(tmp_path / "seq" / "calib_cam_to_cam.txt")
    truth = Intrinsics.kitti(HEIGHT, WIDTH)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (truth.fx, truth.fy, truth.cx,
                                                            truth.cy)
    assert (camera.width, camera.height) == (WIDTH, HEIGHT)
    assert camera.baseline == pytest.approx(BASELINE, rel=1e-6)
    K = FolderLayout(tmp_path).camera(SplitEntry("seq", 1, "l")).normalized_K
    np.testing.assert_allclose(K[:2, :3], [[truth.fx / WIDTH, 0, truth.cx / WIDTH],
                                           [0, truth.fy / HEIGHT, truth.cy / HEIGHT]],
                               rtol=1e-6)


def grey_sequence(folder, levels):
    folder.mkdir(parents=True)
    for i, level in enumerate(levels):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((8, 16, 3), level, np.uint8))


def test_check_data_reports_samples_motion_and_short_sequences(tmp_path):
    (tmp_path / "intrinsics.json").write_text(json.dumps(
        dict(fx=8, fy=8, cx=8, cy=4, width=16, height=8)))
    grey_sequence(tmp_path / "long", [0, 51, 102, 153, 255])
    grey_sequence(tmp_path / "short", [0, 51])
    layout = FolderLayout(tmp_path)
    reports, problems = check_folder(layout, (0, -1, 1))
    assert problems == []
    long, short = reports
    assert (long.name, long.frames, long.samples) == ("long", 5, 3)
    assert long.motion == pytest.approx((0.2 * 3 + 0.4) / 4, rel=1e-6)
    assert long.min_motion == pytest.approx(0.2, rel=1e-6)
    assert (short.frames, short.samples) == (2, 0)
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "check_data"),
                             "--dataset", "folder", "--data_path", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["long", "5", "3", "0.2500", "0.2000"]
    assert lines[2].split()[:3] == ["short", "2", "0"]
    assert lines[2].endswith("too short for frames 0,-1,1")
    assert lines[3].startswith("3 usable samples (frames 0,-1,1) in 2 sequence(s)")


def test_show_sample_on_a_folder_dataset(stereo_folder, tmp_path):
    output = tmp_path / "sample.png"
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "show_sample"),
                             "--dataset", "folder", "--data_path", str(stereo_folder),
                             "--index", "3", "--height", str(HEIGHT), "--width", str(WIDTH),
                             "--output", str(output)], capture_output=True, text=True,
                            timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    # train list of the made split: drive1 1 l, 1 r, 2 l, 2 r, ... -> line 3 is frame 2, right
    assert "drive1 frame 2 (r)" in result.stdout
    assert cv2.imread(str(output)).shape == (3 * HEIGHT, 2 * WIDTH, 3)


@pytest.mark.parametrize("change,message", [
    (dict(frame_stride=2), "--frame_stride, --target_fps and --skip_static are for "
     "--dataset=folder"),
    (dict(dataset="folder"), "--dataset=folder needs --data_path"),
    (dict(dataset="folder", data_path="x", frame_stride=0), "--frame_stride=0 must be at least 1"),
    (dict(dataset="folder", data_path="x", frame_stride=2, target_fps=10),
     "give --frame_stride or --target_fps, not both"),
])
def test_folder_options_are_checked(change, message):
    with pytest.raises(OptionsError, match=message):
        TrainOptions(**change).validate()
