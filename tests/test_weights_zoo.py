"""Model names: the GluonCV names' presets, and the original's releases downloaded from a local
HTTP server, checked, converted once and cached (atomically: nothing is left after a failure)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.weights import zoo
from monodepth_tf.weights.folder import WeightsFolderError, load_networks
from tests.conftest import PROJECT_ROOT
from tests.http_server import FileServer, closed_port_url
from tests.reference import load_npz, nhwc
from tests.zoo_server import make_zip, md5_of, release_zip

DEPTH = "monodepth2_resnet18_kitti_{}_640x192"
POSE = "monodepth2_resnet18_posenet_kitti_{}_640x192"


def test_the_tutorial_names_are_known():
    expected = {DEPTH.format(m) for m in ("mono", "stereo", "mono_stereo")}
    expected |= {POSE.format(m) for m in ("mono", "mono_stereo")}
    assert set(zoo.PRESETS) == expected and len(zoo.PRESETS) == 5
    assert set(zoo.names()) == expected | set(zoo.RELEASES) and len(zoo.names()) == 18


@pytest.mark.parametrize("name, mode, frame_ids, use_stereo, is_pose", [
    (DEPTH.format("mono"), "mono", (0, -1, 1), False, False),
    (DEPTH.format("stereo"), "stereo", (0,), True, False),
    (DEPTH.format("mono_stereo"), "mono_stereo", (0, -1, 1), True, False),
    (POSE.format("mono"), "mono", (0, -1, 1), False, True),
    (POSE.format("mono_stereo"), "mono_stereo", (0, -1, 1), True, True),
])
def test_presets(name, mode, frame_ids, use_stereo, is_pose):
    preset = zoo.resolve(name)
    assert (preset.name, preset.mode, preset.frame_ids, preset.use_stereo, preset.is_pose) == \
        (name, mode, frame_ids, use_stereo, is_pose)
    assert (preset.num_layers, preset.height, preset.width) == (18, 192, 640)
    assert zoo.resolve(preset) is preset
    original = zoo.RELEASES[preset.original_name]  # the same configuration, released
    assert (original.mode, original.num_layers, original.height, original.width) == \
        (mode, 18, 192, 640)
    assert original.has_pose or not is_pose


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        zoo.resolve("monodepth2_resnet50_kitti_mono_640x192")
    message = str(error.value)
    assert "monodepth2_resnet50_kitti_mono_640x192" in message
    assert all(name in message for name in zoo.names())


def test_folder_comes_from_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = DEPTH.format("stereo")
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text("{}")
    assert zoo.weights_folder(name) == tmp_path / name


def test_default_folder_is_under_keras_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MONODEPTH_ZOO_DIR", raising=False)
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / ".keras" / "monodepth_tf" / "zoo"
    assert zoo.zoo_dir() == cache
    with pytest.raises(zoo.ZooDownloadError, match=re.escape(f"unzip it into {cache} ")):
        zoo.weights_folder(DEPTH.format("mono"))
    (cache / "mono_640x192").mkdir(parents=True)  # the release's files, unzipped by hand
    (cache / "mono_640x192" / "encoder.pth").write_bytes(b"")
    assert zoo.weights_folder(DEPTH.format("mono")) == cache / "mono_640x192"
    assert zoo.weights_folder("mono_640x192") == cache / "mono_640x192"


def test_folder_of_another_architecture_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = DEPTH.format("mono")
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps({"num_layers": 50}))
    with pytest.raises(WeightsFolderError, match="ResNet-50"):
        zoo.load(name)


def test_pose_name_loads_the_original_files(tmp_path, monkeypatch, reference_dir):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    name = POSE.format("mono")
    (tmp_path / name).symlink_to(reference_dir)
    config, depth, pose = zoo.load(name)
    assert pose is not None and (config.height, config.width) == (192, 640)
    forward = load_npz(reference_dir, "forward.npz")
    disp = depth(tf.constant(nhwc(forward["full/input"])), training=False)[0]
    scaled, _ = disp_to_depth(disp, 0.1, 100.0)
    # the reference is float32-limited: 1e-4 in disparity is ~1e-3 in scaled disparity
    np.testing.assert_allclose(scaled.numpy(), nhwc(forward["full/scaled_disp"]), atol=1e-3)
    axisangle, _ = pose(tf.constant(nhwc(forward["eval/pose_input"])), training=False)
    np.testing.assert_allclose(axisangle.numpy(), forward["eval/axisangle"], atol=1e-4)


# ---- the original's releases, downloaded from a local server ----------------------------------

MONO = "mono_640x192"


def cache_entries(cache):
    """What a failed download leaves in the cache: only the lock file may remain."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) \
        if cache.exists() else []


@pytest.fixture(scope="module")
def mono_zip(reference_dir):
    """The reference checkpoints as the original zips a release: one folder mono_640x192/."""
    return release_zip(reference_dir, MONO)


@pytest.fixture(scope="module")
def converted_by_tool(reference_dir, tmp_path_factory):
    """bin/convert_weights's folder of the same checkpoints."""
    out = tmp_path_factory.mktemp("tool") / "r18"
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "convert_weights"),
                             "--pytorch_dir", str(reference_dir), "--output_dir", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def downloaded(mono_zip, tmp_path_factory):
    """mono_640x192 fetched once from a mirror serving the zip and its .md5:
    ``(cache folder, server, messages printed)``."""
    import io

    cache = tmp_path_factory.mktemp("zoo")
    files = {f"{MONO}.zip": mono_zip, f"{MONO}.zip.md5": f"{md5_of(mono_zip)}  x\n".encode()}
    with FileServer(files) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MONODEPTH_ZOO_DIR", str(cache))
        patch.setenv("MONODEPTH_ZOO_URL", server.url)
        log = io.StringIO()
        assert zoo.weights_folder(MONO, stream=log) == cache / MONO
        yield cache, server, log.getvalue()


@pytest.fixture
def mirror(downloaded, monkeypatch):
    """The environment of :func:`downloaded` for one test."""
    cache, server, _ = downloaded
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    monkeypatch.setenv("MONODEPTH_ZOO_URL", server.url)
    return cache, server


def read_release_table(shared):
    """``{name: (mode, imagenet, size, abs_rel, a1, md5)}`` and the names listed without a
    checksum, as /work/shared/docs/pretrained-models.md states them."""
    text = (shared / "docs" / "pretrained-models.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[0-9a-f]{32}", cells[5]):
            abs_rel, a1 = (float(v) for v in cells[4].split("/"))
            rows[cells[0]] = (cells[1].replace("+", "_"), cells[2] == "yes", cells[3], abs_rel,
                              a1, cells[5])
    others = re.findall(r"`([a-z0-9_+]+_640x192)`", text.split("without a published checksum")[1])
    return rows, others


def test_releases_are_the_documented_ones(shared):
    rows, others = read_release_table(shared)
    assert len(rows) == 9 and len(others) == 4
    ours = {r.name: (r.mode, r.imagenet, f"{r.width}x{r.height}", r.abs_rel, r.a1, r.md5)
            for r in zoo.RELEASES.values() if r.md5}
    assert ours == rows
    assert sorted(r.name for r in zoo.RELEASES.values() if not r.md5) == sorted(others)
    assert zoo.RELEASES["mono_resnet50_640x192"].num_layers == 50
    assert not zoo.RELEASES["stereo_640x192"].has_pose and zoo.RELEASES[MONO].has_pose


def test_release_addresses(monkeypatch):
    monkeypatch.delenv("MONODEPTH_ZOO_URL", raising=False)
    assert zoo.release_url("mono+stereo_640x192") == ("https://storage.googleapis.com/niantic-"
                                                      "lon-static/research/monodepth2/"
                                                      "mono%2Bstereo_640x192.zip")
    monkeypatch.setenv("MONODEPTH_ZOO_URL", "http://mirror.example/md2")
    assert zoo.release_url(MONO) == "http://mirror.example/md2/mono_640x192.zip"


def test_download_is_converted_once_as_bin_convert_weights_does(downloaded, converted_by_tool,
                                                               reference_dir, mono_zip):
    cache, server, log = downloaded
    folder = cache / MONO
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "depth.weights.h5", "encoder.weights.h5", "pose.weights.h5",
        "pose_encoder.weights.h5"]
    assert cache_entries(cache) == [MONO]
    config = json.loads((folder / "config.json").read_text())
    assert (config["release"], config["md5"], config["converted_from"]) == \
        (MONO, md5_of(mono_zip), f"{server.url}{MONO}.zip")
    assert zoo.LICENCE_URL in log and "non-commercial" in log
    assert f"MD5 {md5_of(mono_zip)} checked" in log
    assert server.requests == [(f"{MONO}.zip", None), (f"{MONO}.zip.md5", None)]
    forward = load_npz(reference_dir, "forward.npz")
    image = tf.constant(nhwc(forward["full/input"]))
    pair = tf.constant(nhwc(forward["eval/pose_input"]))
    outputs = []
    for source in (folder, converted_by_tool):
        _, depth, pose = load_networks(source)
        outputs.append([depth(image, training=False)[0].numpy(),
                        pose(pair, training=False)[0].numpy()])
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])  # bitwise
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
    scaled, _ = disp_to_depth(outputs[0][0], 0.1, 100.0)  # and it is the original's model
    np.testing.assert_allclose(np.asarray(scaled), nhwc(forward["full/scaled_disp"]), atol=1e-3)


def test_cached_model_is_not_downloaded_again(mirror):
    cache, server = mirror
    before = len(server.requests)
    assert zoo.weights_folder(MONO) == cache / MONO
    assert zoo.find_weights(MONO) == cache / MONO
    assert zoo.weights_folder(POSE.format("mono")) == cache / MONO  # GluonCV -> the release
    config, depth, pose = zoo.load(POSE.format("mono"))
    assert pose is not None and (config.width, config.height) == (640, 192)
    assert len(server.requests) == before


def test_tools_take_a_release_name(mirror):
    from types import SimpleNamespace

    from monodepth_tf.cli.common import load_networks_from_flags, weights_folder_from_flags
    from monodepth_tf.cli.predict import NAME_FLAGS, PredictArgs
    from monodepth_tf.cli.train import with_weights_folder
    from monodepth_tf.training.options import TrainOptions

    cache, _ = mirror
    for args in (PredictArgs(model_name=MONO), PredictArgs(load_weights_folder=MONO),
                 PredictArgs(model_zoo=MONO)):
        assert weights_folder_from_flags(args, name_flags=NAME_FLAGS) == cache / MONO
    pose_tool = SimpleNamespace(load_weights_folder=MONO, model_zoo=None)  # bin/evaluate_pose
    loaded = load_networks_from_flags(pose_tool, with_depth=False, with_pose=True)
    assert loaded.pose is not None and loaded.depth is None and loaded.folder == cache / MONO
    tuned = with_weights_folder(TrainOptions(load_weights_folder=MONO))  # bin/train fine-tuning
    assert tuned.load_weights_folder == str(cache / MONO)
    with pytest.raises(ValueError, match="exactly one of --load_weights_folder, --model_zoo and "
                                         "--model_name, not --model_zoo and --model_name"):
        weights_folder_from_flags(PredictArgs(model_zoo=MONO, model_name=MONO),
                                  name_flags=NAME_FLAGS)
    with pytest.raises(ValueError, match="--model_name: unknown model-zoo name 'mono_320x96'"):
        weights_folder_from_flags(PredictArgs(model_name="mono_320x96"), name_flags=NAME_FLAGS)
    with pytest.raises(ValueError, match="--load_weights_folder nowhere does not exist, and is "
                                         "not a model name"):
        with_weights_folder(TrainOptions(load_weights_folder="nowhere"))


def test_existing_folder_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path / "zoo"))
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())  # a download would fail
    monkeypatch.chdir(tmp_path)
    (tmp_path / MONO).mkdir()
    assert zoo.find_weights(MONO).resolve() == tmp_path / MONO
    from monodepth_tf.cli.common import weights_folder_from_flags
    from monodepth_tf.cli.predict import NAME_FLAGS, PredictArgs

    assert weights_folder_from_flags(PredictArgs(model_name=MONO),
                                     name_flags=NAME_FLAGS).resolve() == tmp_path / MONO


def test_offline_is_one_line_naming_address_cause_and_folder(tmp_path, monkeypatch):
    cache, url = tmp_path / "zoo", closed_port_url()
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    monkeypatch.setenv("MONODEPTH_ZOO_URL", url)
    with pytest.raises(zoo.ZooDownloadError) as error:
        zoo.weights_folder("mono+stereo_640x192")
    zip_url = f"{url}mono%2Bstereo_640x192.zip"
    assert str(error.value) == (
        f"cannot download model mono+stereo_640x192: {zip_url}: Connection refused -- to "
        f"install it by hand, fetch {zip_url} and unzip it into {cache} (giving "
        f"{cache / 'mono+stereo_640x192'}/encoder.pth)")
    assert cache_entries(cache) == []


def test_imagenet_download_failure_names_the_cause(tmp_path, monkeypatch):
    from monodepth_tf.training import checkpoints

    url = closed_port_url()
    monkeypatch.setattr(checkpoints, "IMAGENET_URL", url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ValueError) as error:
        checkpoints.imagenet_checkpoint(18)
    assert f"could not be downloaded ({url}resnet18-5c106cde.pth: Connection refused)" in \
        str(error.value)
    assert list((tmp_path / "models").iterdir()) == []


FAKE = {name: bytes([i]) * 1000 for i, name in enumerate(
    ("encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth"))}


def corrupt(data: bytes) -> bytes:
    """A zip whose encoder.pth data has one byte changed (its CRC no longer matches)."""
    at = data.index(FAKE["encoder.pth"])
    return data[:at] + b"\xff" + data[at + 1:]


FAILURES = {
    "wrong md5 from the mirror": (
        lambda: {f"{MONO}.zip": make_zip(FAKE), f"{MONO}.zip.md5": b"0" * 32},
        zoo.ZooDownloadError, r"MD5 [0-9a-f]{32} differs from the expected 0{32}"),
    "not found": (lambda: {}, zoo.ZooDownloadError, f"{MONO}.zip: HTTP 404 Not Found -- "),
    "interrupted": (lambda: {f"{MONO}.zip": make_zip(FAKE)}, zoo.ZooDownloadError,
                    r"interrupted after 2000 of \d+ bytes"),
    "missing files": (
        lambda: {f"{MONO}.zip": make_zip({f"{MONO}/encoder.pth": FAKE["encoder.pth"]})},
        zoo.ZooArchiveError, f"lacks depth.pth, pose_encoder.pth, pose.pth: a {MONO} zip holds "
        f"encoder.pth, depth.pth, pose_encoder.pth, pose.pth"),
    "corrupt zip": (lambda: {f"{MONO}.zip": corrupt(make_zip(FAKE))}, zoo.ZooArchiveError,
                    "is not a valid zip file \\(Bad CRC-32 for file 'encoder.pth'\\)"),
    "not a zip": (lambda: {f"{MONO}.zip": b"<html>moved</html>"}, zoo.ZooArchiveError,
                  "is not a valid zip file"),
    "files twice": (
        lambda: {f"{MONO}.zip": make_zip({**FAKE, f"{MONO}/encoder.pth": b"x"})},
        zoo.ZooArchiveError, f"holds encoder.pth twice \\(encoder.pth and {MONO}/encoder.pth\\)"),
    "unreadable checkpoints": (lambda: {f"{MONO}.zip": make_zip(FAKE)}, zoo.ZooArchiveError,
                               "its checkpoints cannot be read"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failures_leave_a_clean_cache(case, tmp_path, monkeypatch):
    files, error_type, pattern = FAILURES[case]
    cache = tmp_path / "zoo"
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    with FileServer(files()) as server:
        if case == "interrupted":
            server.cut[f"{MONO}.zip"] = 2000
        monkeypatch.setenv("MONODEPTH_ZOO_URL", server.url)
        with pytest.raises(error_type, match=pattern):
            zoo.weights_folder(MONO)
    assert cache_entries(cache) == []


def test_official_address_checks_the_built_in_md5(tmp_path, monkeypatch):
    cache = tmp_path / "zoo"
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    monkeypatch.delenv("MONODEPTH_ZOO_URL", raising=False)
    data = make_zip(FAKE)
    with FileServer({"stereo_640x192.zip": data}) as server:
        monkeypatch.setattr(zoo, "OFFICIAL_URL", server.url)
        with pytest.raises(zoo.ZooDownloadError) as error:
            zoo.weights_folder(DEPTH.format("stereo"))
    assert f"MD5 {md5_of(data)} differs from the expected 3dfb76bcff0786e4ec07ac00f658dd07" in \
        str(error.value)
    assert server.requests == [("stereo_640x192.zip", None)]  # no .md5 asked of the official
    assert cache_entries(cache) == []


def test_zip_of_another_model_is_refused(reference_dir, tmp_path, monkeypatch):
    cache = tmp_path / "zoo"
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    data = release_zip(reference_dir, "stereo_1024x320", ("encoder.pth", "depth.pth"))
    with FileServer({"stereo_1024x320.zip": data}) as server:
        monkeypatch.setenv("MONODEPTH_ZOO_URL", server.url)
        with pytest.raises(zoo.ZooArchiveError, match="stereo_1024x320.zip holds a ResNet-18 at "
                           "640x192, but stereo_1024x320 is a ResNet-18 at 1024x320"):
            zoo.weights_folder("stereo_1024x320")
    assert cache_entries(cache) == []


def test_after_an_interruption_the_next_run_starts_clean(reference_dir, tmp_path, monkeypatch):
    name = "mono_no_pt_640x192"  # no built-in checksum is used at a mirror; files at the root
    cache = tmp_path / "zoo"
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    with FileServer({f"{name}.zip": release_zip(reference_dir)}) as server:
        monkeypatch.setenv("MONODEPTH_ZOO_URL", server.url)
        server.cut[f"{name}.zip"] = 10_000_000
        with pytest.raises(zoo.ZooDownloadError, match="interrupted after 10000000 of"):
            zoo.weights_folder(name)
        assert cache_entries(cache) == []
        (cache / f".{name}.tmpkilled").mkdir()  # what a killed run leaves
        del server.cut[f"{name}.zip"]
        assert zoo.weights_folder(name) == cache / name
    assert cache_entries(cache) == [name]
    assert server.requests[-1] == (f"{name}.zip.md5", None)
    assert json.loads((cache / name / "config.json").read_text())["md5"] is None


def test_bin_predict_model_name_end_to_end(mono_zip, converted_by_tool, tmp_path):
    import cv2

    from monodepth_tf.cli.predict import PredictArgs, predict

    image = next((PROJECT_ROOT.parent / "shared" / "kitti" / "raw").rglob("image_02/data/*.png"))
    street = tmp_path / "street.png"
    street.write_bytes(image.read_bytes())
    cache = tmp_path / "zoo"
    with FileServer({f"{MONO}.zip": mono_zip}) as server:
        env = dict(__import__("os").environ, MONODEPTH_ZOO_URL=server.url,
                   MONODEPTH_ZOO_DIR=str(cache), PYTHONPATH=str(PROJECT_ROOT))
        result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "predict"),
                                 "--model_name", MONO, "--image_path", str(street)],
                                capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert zoo.LICENCE_URL in result.stderr and "not checked" in result.stderr
    assert f"from {cache / MONO}" in result.stderr
    assert cache_entries(cache) == [MONO]
    (tmp_path / "tool").mkdir()
    predict(PredictArgs(image_path=str(street), load_weights_folder=str(converted_by_tool),
                        output_dir=str(tmp_path / "tool")))
    np.testing.assert_array_equal(np.load(tmp_path / "street_disp.npy"),
                                  np.load(tmp_path / "tool" / "street_disp.npy"))
    assert cv2.imread(str(tmp_path / "street_disp.jpeg")).shape == cv2.imread(str(street)).shape
