"""bin/download_kitti against a local HTTP server: resumable downloads, KITTI's layout, markers,
corrupt archives, the free-space check, JPEG conversion and the standard split lists.

No internet: each test serves small zips (built from the real KITTI files in ../shared/kitti) from
the local HTTP server of tests/http_server.py. The downloads themselves (resume, retries, ranges,
progress, errors) are tested in tests/test_download.py.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monodepth_tf.data import kitti_download as kd
from monodepth_tf.data.check import check_split
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.splits import read_split
from monodepth_tf.data.standard_splits import (LICENSE_NAME, LICENSE_SHA256, SPLIT_FILES,
                                               ensure_standard_split, fetch_standard_splits)
from monodepth_tf.download import DownloadError
from tests.http_server import FileServer
from tests.kitti_server import CALIB_FILES, FRAME, depth_png, serve_kitti, serve_splits

ROOT = Path(__file__).resolve().parents[1]
DATE = "2011_09_26"
DRIVE = f"{DATE}_drive_0001_sync"
BAD_DRIVE = f"{DATE}_drive_0002_sync"


@pytest.fixture
def server(tmp_path):
    """A local server over ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    with FileServer(root=root) as running:
        yield running


@pytest.fixture
def kitti_server(server, kitti_dir, monkeypatch):
    """The server with KITTI's archive layout: 2011_09_26's calibration, drives 0001 and 0002
    (the real frame), and data_depth_annotated.zip; $MONODEPTH_KITTI_URL points at it."""
    serve_kitti(server.root, kitti_dir, [DRIVE, BAD_DRIVE], depth_drives=[DRIVE])
    monkeypatch.setenv(kd.KITTI_URL_VARIABLE, server.url)
    return server


def test_archive_addresses_are_the_originals_list(kitti_dir, monkeypatch):
    monkeypatch.delenv(kd.KITTI_URL_VARIABLE, raising=False)
    expected = (kitti_dir / "splits" / "kitti_archives_to_download.txt").read_text().split()
    urls = [archive.url for archive in kd.plan_archives(kd.all_drives())]
    assert urls == expected
    assert len(kd.all_drives()) == 61


def test_download_unpacks_kitti_layout_and_rerun_fetches_nothing(kitti_server, kitti_dir,
                                                                   tmp_path):
    data = tmp_path / "kitti_data"
    result = kd.download_kitti(data, [DRIVE[:-5]], depth_annotated=True, progress=False,
                               log=lambda line: None)
    assert result == {"downloaded": 3, "skipped": 0, "converted": 0}
    layout = KittiRawLayout(data, "png")
    for name in CALIB_FILES:
        assert (data / DATE / name).read_bytes() == (kitti_dir / "raw" / DATE / name).read_bytes()
    source = kitti_dir / "raw" / DATE / f"{DATE}_drive_0000_sync"
    where = f"{DATE}/{DRIVE}"
    assert layout.image_path(where, 1, "r").read_bytes() == \
        (source / "image_03" / "data" / f"{FRAME}.png").read_bytes()
    assert layout.velodyne_path(where, 1).read_bytes() == \
        (source / "velodyne_points" / "data" / f"{FRAME}.bin").read_bytes()
    # the improved depth lands where bin/export_gt_depth reads it
    assert layout.depth_png_path(where, 1, "l").read_bytes() == depth_png()
    work = data / kd.WORK_FOLDER
    assert sorted(p.name for p in work.iterdir()) == sorted(
        [f"{DATE}_calib.zip.done", f"{DRIVE}.zip.done", f"{kd.DEPTH_ARCHIVE}.done"])
    kitti_server.requests.clear()
    kitti_server.heads.clear()
    again = kd.download_kitti(data, [DRIVE], depth_annotated=True, progress=False,
                              log=lambda line: None)
    assert again == {"downloaded": 0, "skipped": 3, "converted": 0}
    assert kitti_server.requests == [] and kitti_server.heads == []  # not even a HEAD


def test_interrupted_kitti_run_resumes_on_the_next_run(kitti_server, tmp_path, monkeypatch):
    monkeypatch.setattr(kd, "DOWNLOAD_RETRIES", 0)
    path = f"raw_data/{DRIVE[:-5]}/{DRIVE}.zip"
    size = (kitti_server.root / path).stat().st_size
    kitti_server.cut_once[path] = size // 2
    data = tmp_path / "kitti_data"
    with pytest.raises(DownloadError, match=f"interrupted after {size // 2} of {size} bytes"):
        kd.download_kitti(data, [DRIVE], progress=False, log=lambda line: None)
    assert not (data / kd.WORK_FOLDER / f"{DRIVE}.zip.done").exists()
    assert not (data / DATE / DRIVE).exists()
    result = kd.download_kitti(data, [DRIVE], progress=False, log=lambda line: None)
    assert result["downloaded"] == 1 and result["skipped"] == 1  # the calibration was done
    assert kitti_server.requests[-1] == (path, f"bytes={size // 2}-")
    assert (data / DATE / DRIVE / "image_02" / "data" / f"{FRAME}.png").is_file()


def corrupt_crc(path: Path) -> None:
    """Flips bytes inside the first member's compressed data (the zip's directory stays
    readable, so only the CRC check finds it)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 100, start + 110):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["crc", "not_a_zip"])
def test_corrupt_archive_is_named_and_nothing_is_kept(kitti_server, tmp_path, damage):
    bad = kitti_server.root / "raw_data" / BAD_DRIVE[:-5] / f"{BAD_DRIVE}.zip"
    if damage == "crc":
        corrupt_crc(bad)
    else:
        bad.write_bytes(b"<html>not found</html>" * 50)
    data = tmp_path / "kitti_data"
    with pytest.raises(DataError, match=f"archive {BAD_DRIVE}.zip is corrupt"):
        kd.download_kitti(data, [DRIVE, BAD_DRIVE], progress=False, log=lambda line: None)
    work = data / kd.WORK_FOLDER
    assert (work / f"{DRIVE}.zip.done").exists()  # the good one before it stays done
    assert not (work / f"{BAD_DRIVE}.zip.done").exists()
    assert not (data / DATE / BAD_DRIVE).exists()
    assert sorted(p.name for p in work.iterdir()) == [f"{DATE}_calib.zip.done",
                                                      f"{DRIVE}.zip.done"]


def test_too_little_free_space_stops_before_any_download(kitti_server, tmp_path, monkeypatch):
    sizes = [(kitti_server.root / "raw_data" / name).stat().st_size
             for name in (f"{DATE}_calib.zip", f"{DRIVE[:-5]}/{DRIVE}.zip")]
    needed = sum(sizes) + max(sizes)  # all unpacked + the largest zip while it is unpacked
    assert kd.required_bytes(sizes, [0, 0], keep_archives=True) == 2 * sum(sizes)
    usage = namedtuple("usage", "total used free")
    data = tmp_path / "kitti_data"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 0, needed - 1))
    with pytest.raises(DataError, match=re.escape(f"needs about {kd.human_bytes(needed)}")):
        kd.download_kitti(data, [DRIVE], progress=False, log=lambda line: None)
    assert kitti_server.requests == []
    assert list((data / kd.WORK_FOLDER).iterdir()) == []
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 0, needed))
    assert kd.download_kitti(data, [DRIVE], progress=False, log=lambda line: None)[
        "downloaded"] == 2


def jpeg_frame_components(data: bytes) -> dict:
    """``{component id: (horizontal, vertical) sampling factor}`` from a JPEG's SOF0 marker."""
    start = data.index(b"\xff\xc0")
    count = data[start + 9]
    fields = data[start + 10:start + 10 + 3 * count]
    return {fields[i]: (fields[i + 1] >> 4, fields[i + 1] & 15) for i in range(0, 3 * count, 3)}


def jpeg_luminance_table(data: bytes) -> np.ndarray:
    """The first (luminance) 8-bit quantisation table of a JPEG, in row-major order."""
    start = data.index(b"\xff\xdb")
    zigzag_values = np.frombuffer(data[start + 5:start + 69], np.uint8)
    order = sorted(((r, c) for r in range(8) for c in range(8)),
                   key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]))
    table = np.zeros((8, 8), np.int64)
    for value, (row, col) in zip(zigzag_values, order):
        table[row, col] = value
    return table


# The JPEG standard's luminance table (ITU-T T.81, Annex K), which IJG scales for a quality.
ANNEX_K_LUMINANCE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]])


def test_jpeg_conversion_is_quality_92_with_420_subsampling(kitti_dir, tmp_path):
    source = kitti_dir / "raw" / DATE / f"{DATE}_drive_0000_sync"
    drive = tmp_path / DATE / DRIVE
    for camera in ("image_02", "image_03"):
        (drive / camera / "data").mkdir(parents=True)
        shutil.copy(source / camera / "data" / f"{FRAME}.png", drive / camera / "data")
    assert kd.convert_drive_to_jpeg(drive, keep_png=False, jobs=2) == 2
    jpeg = drive / "image_02" / "data" / f"{FRAME}.jpg"
    assert not jpeg.with_suffix(".png").exists()
    data = jpeg.read_bytes()
    assert jpeg_frame_components(data) == {1: (2, 2), 2: (1, 1), 3: (1, 1)}  # 4:2:0
    scale = 200 - 2 * 92  # IJG's quality scaling (quality >= 50)
    expected = np.clip((ANNEX_K_LUMINANCE * scale + 50) // 100, 1, 255)
    np.testing.assert_array_equal(jpeg_luminance_table(data), expected)
    png = np.asarray(Image.open(source / "image_02" / "data" / f"{FRAME}.png").convert("RGB"))
    decoded = load_rgb(jpeg)
    # Pillow's encoder with the same settings (quality 92, subsampling 2 = 4:2:0) decodes to
    # the same pixels; its 4:4:4 output is closer to the PNG (chroma kept at full size)
    pillow = {}
    for subsampling in (2, 0):
        buffer = tmp_path / f"pillow_{subsampling}.jpg"
        Image.fromarray(png).save(buffer, quality=92, subsampling=subsampling)
        pillow[subsampling] = np.asarray(Image.open(buffer)).astype(np.int16)
    np.testing.assert_array_equal(decoded, pillow[2])
    error = np.abs(decoded.astype(np.int16) - png).mean()
    assert np.abs(pillow[0] - png).mean() < error < 6.0  # measured 2.69 < 4.46


def test_jpeg_run_gives_data_training_reads_without_png(kitti_server, tmp_path):
    data = tmp_path / "kitti_data"
    result = kd.download_kitti(data, [DRIVE], jpeg=True, keep_png=True, progress=False,
                               log=lambda line: None)
    assert result["converted"] == 2
    images = sorted(p.name for p in (data / DATE / DRIVE / "image_02" / "data").iterdir())
    assert images == [f"{FRAME}.jpg", f"{FRAME}.png"]
    split_dir = tmp_path / "splits"
    (split_dir / "mine").mkdir(parents=True)
    (split_dir / "mine" / "train_files.txt").write_text(f"{DATE}/{DRIVE} 1 l\n")
    assert check_split(data, "mine", split_dir, frame_ids=(0,), use_stereo=True, ext="jpg",
                       names=("train",), lidar=True) == []
    again = kd.download_kitti(data, [DRIVE], jpeg=True, keep_png=True, progress=False,
                              log=lambda line: None)
    assert again == {"downloaded": 0, "skipped": 2, "converted": 0}


def test_unknown_drive_and_odometry_split_are_refused(tmp_path, kitti_dir):
    with pytest.raises(DataError, match="'2011_09_26_drive_0003' is not a KITTI raw drive"):
        kd.normalize_drive("2011_09_26_drive_0003")
    assert kd.normalize_drive("2011_09_26/2011_09_26_drive_0001_sync/") == f"{DATE}/{DRIVE}"
    with pytest.raises(DataError, match="odometry"):
        kd.split_drives(kitti_dir / "splits", "odom")
    assert len(kd.split_drives(kitti_dir / "splits", "eigen_zhou")) == 32


def test_checksum_table_matches_the_release_files(kitti_dir):
    splits = kitti_dir / "splits"
    on_disk = {str(p.relative_to(splits)) for p in splits.rglob("*") if p.is_file()
               and p.parent != splits}
    assert on_disk == set(SPLIT_FILES)
    for name, sha in SPLIT_FILES.items():
        assert hashlib.sha256((splits / name).read_bytes()).hexdigest() == sha, name
    assert hashlib.sha256((splits / LICENSE_NAME).read_bytes()).hexdigest() == LICENSE_SHA256


@pytest.fixture
def splits_server(server, kitti_dir, monkeypatch):
    """The server holding the release's tree (``splits/`` and ``LICENSE``)."""
    serve_splits(server.root, kitti_dir)
    monkeypatch.setenv("MONODEPTH_SPLITS_URL", server.url)
    return server


def test_split_fetch_checks_checksums(splits_server, kitti_dir, tmp_path):
    split_dir = tmp_path / "splits"
    written = fetch_standard_splits(split_dir, ["eigen", "eigen_zhou"])
    assert sorted(p.relative_to(split_dir).as_posix() for p in written) == [
        LICENSE_NAME, "eigen/test_files.txt", "eigen_zhou/train_files.txt",
        "eigen_zhou/val_files.txt"]
    for path in written:
        source = kitti_dir / "splits" / path.relative_to(split_dir)
        assert path.read_bytes() == source.read_bytes()
    assert fetch_standard_splits(split_dir, ["eigen"]) == []  # already there
    served = splits_server.root / "splits" / "eigen_benchmark" / "test_files.txt"
    served.write_bytes(served.read_bytes().replace(b" 69 l", b" 70 l", 1))
    with pytest.raises(DownloadError, match="SHA-256 .* is not the release's .*refused"):
        fetch_standard_splits(split_dir, ["eigen_benchmark"])
    assert sorted(os.listdir(split_dir / "eigen_benchmark")) == []


def test_a_missing_standard_split_is_fetched_before_its_drives_are_listed(splits_server,
                                                                          tmp_path):
    split_dir = tmp_path / "splits"
    assert [p.name for p in ensure_standard_split(split_dir, "eigen")] == [
        LICENSE_NAME, "test_files.txt"]
    assert ensure_standard_split(split_dir, "eigen") == []  # complete now
    assert ensure_standard_split(split_dir, "mine") == []   # not a standard one
    drives = kd.split_drives(split_dir, "eigen")
    assert len(drives) == 28 and drives[0] == "2011_09_26/2011_09_26_drive_0002_sync"
    assert [a.name for a in kd.plan_archives(drives)][:2] == [
        f"{DATE}_calib.zip", "2011_09_26_drive_0002_sync.zip"]


def test_missing_split_error_names_the_command_that_fetches_it(splits_server, tmp_path):
    split_dir = tmp_path / "my_splits"
    with pytest.raises(DataError) as error:
        read_split(split_dir, "eigen_zhou", "train")
    command = re.search(r"with: (bin/download_kitti [^;)]*)", str(error.value)).group(1)
    assert command == f"bin/download_kitti --splits_only --split_dir {split_dir}"
    tool, *flags = command.split()
    done = subprocess.run([sys.executable, str(ROOT / tool), *flags], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "NON-COMMERCIAL" in done.stdout and str(split_dir / LICENSE_NAME) in done.stdout
    assert len(read_split(split_dir, "eigen_zhou", "train")) == 39810


def test_training_on_a_missing_standard_split_names_the_command(tmp_path):
    from monodepth_tf.training.options import OptionsError, TrainOptions
    from monodepth_tf.training.loop import open_data

    options = TrainOptions(data_path=str(tmp_path), split="eigen_full", split_dir=str(tmp_path))
    with pytest.raises(OptionsError, match=re.escape(
            f"--split=eigen_full: no folder {tmp_path / 'eigen_full'} (fetch the standard split "
            f"lists with: bin/download_kitti --splits_only --split_dir {tmp_path})")):
        open_data(options)
