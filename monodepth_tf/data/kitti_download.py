"""KITTI raw data by command: the archives the original Monodepth2 trains on, unpacked in
KITTI's layout (``bin/download_kitti``).

Archives (``$MONODEPTH_KITTI_URL`` replaces the base address, for mirrors and tests)::

    <base>/raw_data/<date>_calib.zip                          -> <data_path>/<date>/calib_*.txt
    <base>/raw_data/<drive>/<drive>_sync.zip                  -> <data_path>/<date>/<drive>_sync/
    <base>/data_depth_annotated.zip   (--depth_annotated)     -> <data_path>/<date>/<drive>_sync/
                                                                   proj_depth/groundtruth/...

The 61 drives and 5 calibration archives are those of the original's
``splits/kitti_archives_to_download.txt`` (about 175 GB in all). Each archive goes through
``<data_path>/.kitti_download/``: downloaded there (resumable), unpacked into a staging folder,
moved into place, then marked done by ``<archive>.done`` and deleted (``keep_archives`` keeps
it). A re-run skips marked archives, so it downloads nothing once everything is there; a corrupt
archive is removed with nothing moved or marked.

``jpeg=True`` converts each drive's camera PNGs to JPEG as the original's README does with
ImageMagick (quality 92, 4:2:0 chroma subsampling), here with OpenCV, so training runs without
``--png``.
"""

import json
import os
import shutil
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np

from monodepth_tf.data.errors import DataError
from monodepth_tf.download import download, human_bytes, remote_size

PathLike = Union[str, Path]

DEFAULT_KITTI_URL = "https://s3.eu-central-1.amazonaws.com/avg-kitti"
KITTI_URL_VARIABLE = "MONODEPTH_KITTI_URL"
WORK_FOLDER = ".kitti_download"
DEPTH_ARCHIVE = "data_depth_annotated.zip"
DOWNLOAD_RETRIES = 2  # further attempts after a network failure, each resuming the archive

# The raw drives of the original's archive list, by recording date (drive numbers).
RAW_DRIVES: Dict[str, Sequence[int]] = {
    "2011_09_26": (1, 2, 5, 9, 11, 13, 14, 15, 17, 18, 19, 20, 22, 23, 27, 28, 29, 32, 35, 36,
                   39, 46, 48, 51, 52, 56, 57, 59, 60, 61, 64, 70, 79, 84, 86, 87, 91, 93, 95,
                   96, 101, 104, 106, 113, 117),
    "2011_09_28": (1, 2),
    "2011_09_29": (4, 26, 71),
    "2011_09_30": (16, 18, 20, 27, 28, 33, 34),
    "2011_10_03": (27, 34, 42, 47),
}

# Sizes used when the server gives no Content-Length (documented estimates): the raw set is
# about 175 GB over 61 drives; KITTI lists data_depth_annotated.zip as 14 GB.
ESTIMATED_DRIVE_BYTES = 175_000_000_000 // 61
ESTIMATED_CALIB_BYTES = 10_000
ESTIMATED_DEPTH_BYTES = 14_000_000_000

JPEG_QUALITY = 92
JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
               cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
CAMERA_PNGS = "image_0[0-3]/data/*.png"


class Archive(NamedTuple):
    """One archive to fetch.

    Attributes:
        name: its file name (``2011_09_26_drive_0001_sync.zip``).
        url: where it is.
        estimate: bytes assumed when the server does not say.
        drive: the drive folder it fills (``2011_09_26/2011_09_26_drive_0001_sync``), or None.
    """
    name: str
    url: str
    estimate: int
    drive: Optional[str] = None


def kitti_url() -> str:
    """The base address: ``$MONODEPTH_KITTI_URL`` or KITTI's own."""
    return (os.environ.get(KITTI_URL_VARIABLE) or DEFAULT_KITTI_URL).rstrip("/")


def all_drives() -> List[str]:
    """Every drive folder of the archive list, ``<date>/<date>_drive_<nnnn>_sync``."""
    return [f"{date}/{date}_drive_{number:04d}_sync"
            for date, numbers in RAW_DRIVES.items() for number in numbers]


def normalize_drive(name: str) -> str:
    """``2011_09_26_drive_0001``, ``..._sync`` or ``2011_09_26/..._sync`` ->
    ``2011_09_26/2011_09_26_drive_0001_sync``.

    Raises:
        DataError: the name is not one of the archive list's drives.
    """
    stem = PurePosixPath(name.strip().rstrip("/")).name.removesuffix("_sync")
    folder = f"{stem[:10]}/{stem}_sync"
    if folder not in all_drives():
        raise DataError(f"--drives: {name!r} is not a KITTI raw drive of the archive list "
                        "(expected e.g. 2011_09_26_drive_0001)")
    return folder


def split_drives(split_dir: PathLike, split: str) -> List[str]:
    """The raw drive folders named by the lists of ``<split_dir>/<split>/`` (sorted).

    Raises:
        DataError: the split has no lists, or names no raw drive (``odom``: KITTI odometry).
    """
    folder = Path(split_dir) / split
    lists = sorted(folder.glob("*_files.txt"))
    if not lists:
        raise DataError(f"--split={split}: no *_files.txt in {folder}")
    drives = {line.split()[0] for path in lists for line in path.read_text().splitlines()
              if line.strip() and "_drive_" in line.split()[0]}
    if not drives:
        raise DataError(f"--split={split}: its lists name no KITTI raw drive (the odometry "
                        "split reads KITTI odometry, downloaded from KITTI's website)")
    return sorted(normalize_drive(drive) for drive in drives)


def plan_archives(drives: Iterable[str], depth_annotated: bool = False) -> List[Archive]:
    """The archives for these drive folders: each date's calibration, then the drives (in
    the archive list's order), then the improved depth maps when asked."""
    base = kitti_url()
    chosen = set(drives)
    archives, dates = [], []
    for drive in all_drives():
        date, folder = drive.split("/")
        if drive in chosen and date not in dates:
            dates.append(date)
            archives.append(Archive(f"{date}_calib.zip", f"{base}/raw_data/{date}_calib.zip",
                                    ESTIMATED_CALIB_BYTES))
        if drive in chosen:
            stem = folder.removesuffix("_sync")
            archives.append(Archive(f"{folder}.zip", f"{base}/raw_data/{stem}/{folder}.zip",
                                    ESTIMATED_DRIVE_BYTES, drive))
    if depth_annotated:
        archives.append(Archive(DEPTH_ARCHIVE, f"{base}/{DEPTH_ARCHIVE}", ESTIMATED_DEPTH_BYTES))
    return archives


def marker_path(data_path: PathLike, archive: Archive) -> Path:
    """``<data_path>/.kitti_download/<archive>.done``: written once it is unpacked."""
    return Path(data_path) / WORK_FOLDER / f"{archive.name}.done"


def required_bytes(sizes: Sequence[int], partial: Sequence[int], keep_archives: bool) -> int:
    """Free space a run needs: everything unpacked (about the archives' size) plus the
    archive being unpacked (all of them with ``keep_archives``), less what is already
    downloaded.

    Args:
        sizes: each pending archive's size.
        partial: bytes of each already on disk (an interrupted download).
    """
    to_fetch = [size - have for size, have in zip(sizes, partial)]
    return sum(sizes) + (sum(to_fetch) if keep_archives else max(to_fetch, default=0))


def check_free_space(data_path: PathLike, needed: int) -> None:
    """Raises DataError when the disk of ``data_path`` has less than ``needed`` bytes free."""
    free = shutil.disk_usage(data_path).free
    if free < needed:
        raise DataError(f"--data_path={data_path}: {human_bytes(free)} free, the download "
                        f"needs about {human_bytes(needed)}; free some space or choose "
                        "another --data_path (fewer drives: --split or --drives)")


def raw_member(name: str) -> str:
    """A raw archive's member name as written (KITTI's zips already hold ``<date>/...``)."""
    return name


def depth_member(name: str) -> str:
    """``train|val/<drive>_sync/proj_depth/...`` -> ``<date>/<drive>_sync/proj_depth/...``
    (the layout of :mod:`monodepth_tf.data.kitti` and bin/export_gt_depth)."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or parts[0] not in ("train", "val") or "_drive_" not in parts[1]:
        raise zipfile.BadZipFile(f"unexpected member {name!r} (expected train|val/<drive>/...)")
    return str(PurePosixPath(parts[1][:10], *parts[1:]))


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise zipfile.BadZipFile(f"unsafe member name {name!r}")
    return path


def unpack(zip_path: Path, data_path: Path, rename: Callable[[str], str] = raw_member) -> int:
    """Unpacks ``zip_path`` into ``data_path`` through a staging folder, so an error leaves
    nothing half-written in place.

    Args:
        rename: maps a member's name to its path under ``data_path``.

    Returns:
        The number of files unpacked.

    Raises:
        DataError: the archive is corrupt (unreadable directory, bad CRC, unsafe or unexpected
            member names); the archive file is removed so that the next run fetches it again.
    """
    staging = data_path / WORK_FOLDER / f"{zip_path.name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            for member in members:
                target = staging / _safe_relative(rename(member.filename))
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        zip_path.unlink(missing_ok=True)
        raise DataError(f"archive {zip_path.name} is corrupt ({error}); it was removed and "
                        "nothing of it was kept: run the command again to fetch it afresh") \
            from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for source in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = data_path / source.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    shutil.rmtree(staging, ignore_errors=True)
    return len(members)


def png_to_jpeg(png: Path, keep_png: bool = False) -> Path:
    """Writes ``png``'s image next to it as ``.jpg`` (quality 92, 4:2:0, channels kept), then
    removes the PNG unless ``keep_png``; returns the JPEG's path.

    Raises:
        DataError: the PNG cannot be decoded.
    """
    image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{png}: not a readable PNG")
    ok, encoded = cv2.imencode(".jpg", image, JPEG_PARAMS)
    if not ok:
        raise DataError(f"{png}: OpenCV could not encode it as JPEG")
    jpeg = png.with_suffix(".jpg")
    staged = png.with_suffix(".jpg.tmp")
    staged.write_bytes(np.asarray(encoded).tobytes())
    os.replace(staged, jpeg)
    if not keep_png:
        png.unlink()
    return jpeg


def convert_drive_to_jpeg(drive_folder: Path, keep_png: bool = False, jobs: int = 0) -> int:
    """Converts the camera PNGs (``image_00..03/data/*.png``) of one drive folder; PNGs whose
    JPEG exists are skipped when kept. Returns how many were converted.

    Args:
        jobs: parallel conversions (0: one per CPU).
    """
    pngs = [p for p in sorted(drive_folder.glob(CAMERA_PNGS))
            if not (keep_png and p.with_suffix(".jpg").exists())]
    with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        list(pool.map(lambda png: png_to_jpeg(png, keep_png), pngs))
    return len(pngs)


def fetch_archive(archive: Archive, data_path: Path, size: Optional[int],
                  keep_archives: bool, progress: bool) -> int:
    """Downloads (resuming), unpacks and marks one archive; returns the files unpacked."""
    zip_path = data_path / WORK_FOLDER / archive.name
    if not zip_path.exists():
        download(archive.url, zip_path, expected_size=size, resume=True,
                 retries=DOWNLOAD_RETRIES, progress=progress)
    rename = depth_member if archive.name == DEPTH_ARCHIVE else raw_member
    count = unpack(zip_path, data_path, rename)
    marker_path(data_path, archive).write_text(
        json.dumps({"url": archive.url, "bytes": zip_path.stat().st_size, "files": count}))
    if not keep_archives:
        zip_path.unlink()
    return count


def download_kitti(data_path: PathLike, drives: Optional[Iterable[str]] = None,
                   depth_annotated: bool = False, jpeg: bool = False, keep_png: bool = False,
                   keep_archives: bool = False, jobs: int = 0, progress: bool = True,
                   log: Callable[[str], None] = print) -> Dict[str, int]:
    """Fetches and unpacks KITTI raw drives into ``data_path`` (KITTI's layout).

    Args:
        data_path: the root to fill (created): ``<date>/<drive>_sync/...`` and
            ``<date>/calib_*.txt``.
        drives: drive folders (:func:`normalize_drive` forms); None: all 61.
        depth_annotated: also KITTI depth's improved maps (for ``eigen_benchmark``).
        jpeg: convert the camera PNGs to JPEG (quality 92, 4:2:0) after unpacking.
        keep_png: with ``jpeg``, keep the PNGs too.
        keep_archives: keep the zips after unpacking.
        jobs: parallel JPEG conversions (0: one per CPU).
        progress: progress bars on stderr.
        log: where status lines go.

    Returns:
        ``{"downloaded": archives fetched now, "skipped": already done, "converted": JPEGs}``.

    Raises:
        DataError: an unknown drive, too little free space (before any download) or a
            corrupt archive.
        DownloadError: a download failed (a re-run resumes it).
    """
    data_path = Path(data_path).expanduser()
    (data_path / WORK_FOLDER).mkdir(parents=True, exist_ok=True)
    folders = all_drives() if drives is None else [normalize_drive(d) for d in drives]
    archives = plan_archives(folders, depth_annotated)
    pending = [a for a in archives if not marker_path(data_path, a).exists()]
    served = [remote_size(archive.url) for archive in pending]  # None: not said by the server
    sizes = [size or archive.estimate for size, archive in zip(served, pending)]
    partial = [_bytes_on_disk(data_path / WORK_FOLDER / a.name) for a in pending]
    needed = required_bytes(sizes, partial, keep_archives)
    log(f"{len(archives)} archives, {len(archives) - len(pending)} already unpacked; "
        f"about {human_bytes(sum(sizes))} to fetch into {data_path}")
    check_free_space(data_path, needed)
    for number, (archive, size) in enumerate(zip(pending, served), start=1):
        log(f"[{number}/{len(pending)}] {archive.name}")
        fetch_archive(archive, data_path, size, keep_archives, progress)
    converted = 0
    if jpeg:
        for folder in folders:
            converted += convert_drive_to_jpeg(data_path / folder, keep_png, jobs)
        log(f"converted {converted} PNGs to JPEG (quality {JPEG_QUALITY}, 4:2:0)")
    return {"downloaded": len(pending), "skipped": len(archives) - len(pending),
            "converted": converted}


def _bytes_on_disk(zip_path: Path) -> int:
    """Bytes of an archive already downloaded, complete or partial."""
    for path in (zip_path, zip_path.with_name(zip_path.name + ".part")):
        if path.exists():
            return path.stat().st_size
    return 0
