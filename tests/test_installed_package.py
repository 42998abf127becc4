"""The package installed with a plain (non-editable) ``pip install .``, run from elsewhere:
where it looks for split lists by default, and that it reads them there."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

SOURCES = ("monodepth_tf", "splits", "setup.py", "setup.cfg", "README.md")

REPORT_SPLIT_DIR = """
import json, monodepth_tf
from monodepth_tf.data.splits import default_split_dir, read_split
split_dir = default_split_dir()
entries = read_split(split_dir, "mine", "train")
print(json.dumps({"package": monodepth_tf.__file__, "split_dir": str(split_dir),
                  "entries": [list(e) for e in entries]}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """``pip install --no-deps --target`` of a copy of the sources (pip builds in the source
    tree; the copy keeps build/ and *.egg-info out of the repository): a non-editable install,
    importable with PYTHONPATH and the test venv's dependencies."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    target = root / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                             "--no-build-isolation", "--disable-pip-version-check",
                             "--target", str(target), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return target


def run_installed(site: Path, cwd: Path, **env_changes) -> dict:
    """Runs REPORT_SPLIT_DIR from ``cwd`` with only the installed package on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MONODEPTH_SPLIT_DIR", "XDG_DATA_HOME")}
    env.update(PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3", **env_changes)
    result = subprocess.run([sys.executable, "-c", REPORT_SPLIT_DIR], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_split(split_dir: Path) -> Path:
    (split_dir / "mine").mkdir(parents=True)
    (split_dir / "mine" / "train_files.txt").write_text("2011_09_26/x 7 r\n9 3 l\n")
    return split_dir


EXPECTED_ENTRIES = [["2011_09_26/x", 7, "r"], ["9", 3, "l"]]


def test_installed_package_reads_splits_from_the_user_data_folder(site, tmp_path):
    """Without $MONODEPTH_SPLIT_DIR the installed package (no repository around it) reads
    ~/.local/share/monodepth_tf/splits, or $XDG_DATA_HOME/monodepth_tf/splits."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    user_splits = write_split(home / ".local" / "share" / "monodepth_tf" / "splits")
    report = run_installed(site, elsewhere, HOME=str(home))
    assert Path(report["package"]).resolve().is_relative_to(site.resolve())
    assert report["split_dir"] == str(user_splits)
    assert report["entries"] == EXPECTED_ENTRIES
    xdg_splits = write_split(tmp_path / "xdg" / "monodepth_tf" / "splits")
    report = run_installed(site, elsewhere, HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg"))
    assert report["split_dir"] == str(xdg_splits)


def test_split_dir_variable_wins_after_install(site, tmp_path):
    chosen = write_split(tmp_path / "chosen")
    report = run_installed(site, tmp_path, HOME=str(tmp_path / "home"),
                           MONODEPTH_SPLIT_DIR=str(chosen))
    assert report["split_dir"] == str(chosen) and report["entries"] == EXPECTED_ENTRIES
