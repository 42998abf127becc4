"""DepthNet.from_preset / PoseNet.from_preset: the released model's networks through the model
zoo (downloaded from a local HTTP server), equal to load_networks' on the same folder, with the
preset's feed size and depth range; unknown names and pose-less models refused; the README's
from_preset example runs."""

import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import DepthNet, PoseNet
from monodepth_tf.weights import zoo
from monodepth_tf.weights.folder import load_networks
from monodepth_tf.data.images import load_rgb
from tests.helpers import PROJECT_ROOT, direct_disparities
from tests.http_server import FileServer, closed_port_url
from tests.reference import load_npz, nhwc
from tests.zoo_server import md5_of, release_zip

MONO = "mono_640x192"


@pytest.fixture(scope="module")
def mirror(reference_dir, tmp_path_factory):
    """A local server holding mono_640x192.zip (the reference checkpoints) and its .md5:
    ``(server, empty cache folder)``."""
    archive = release_zip(reference_dir, MONO)
    files = {f"{MONO}.zip": archive, f"{MONO}.zip.md5": f"{md5_of(archive)}  x\n".encode()}
    with FileServer(files) as server:
        yield server, tmp_path_factory.mktemp("zoo")


@pytest.fixture
def zoo_env(mirror, monkeypatch):
    server, cache = mirror
    monkeypatch.setenv("MONODEPTH_ZOO_URL", server.url)
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(cache))
    return server, cache


def test_presets_equal_load_networks_on_the_same_folder(zoo_env, reference_dir):
    server, cache = zoo_env
    depth = DepthNet.from_preset(MONO)
    pose = PoseNet.from_preset(MONO)
    assert isinstance(depth, DepthNet) and isinstance(pose, PoseNet)
    assert [r[0] for r in server.requests].count(f"{MONO}.zip") == 1  # downloaded once
    for net in (depth, pose):
        config = net.config
        assert (config.height, config.width) == (192, 640)
        assert (config.min_depth, config.max_depth) == (0.1, 100.0)
    _, folder_depth, folder_pose = load_networks(cache / MONO)
    forward = load_npz(reference_dir, "forward.npz")
    image = tf.constant(nhwc(forward["full/input"]))
    pair = tf.constant(nhwc(forward["eval/pose_input"]))
    for ours, theirs in zip(depth(image, training=False), folder_depth(image, training=False)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for ours, theirs in zip(pose(pair, training=False), folder_pose(pair, training=False)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # and it is the original's network
    scaled = 0.01 + (10 - 0.01) * depth(image, training=False)[0].numpy()
    np.testing.assert_allclose(scaled, nhwc(forward["full/scaled_disp"]), atol=1e-3)
    assert DepthNet(18).config is None  # a network not from a preset has none


def test_unknown_preset_lists_the_known_names(monkeypatch):
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())
    for load in (DepthNet.from_preset, PoseNet.from_preset):
        with pytest.raises(ValueError, match="unknown model-zoo name 'mono_320x96'") as error:
            load("mono_320x96")
        assert all(name in str(error.value) for name in zoo.names())


def test_stereo_only_preset_has_no_pose_network(tmp_path, monkeypatch):
    """Refused from the release table, before any download (the server is offline)."""
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=re.escape(
            "preset 'stereo_640x192' has no pose network (a stereo-only model); presets with "
            "one: ")) as error:
        PoseNet.from_preset("stereo_640x192")
    listed = str(error.value).split("presets with one: ")[1].split(", ")
    assert MONO in listed and "mono+stereo_1024x320" in listed
    assert not {"stereo_640x192", "stereo_1024x320", "stereo_no_pt_640x192"} & set(listed)
    assert list(tmp_path.iterdir()) == []


def library_example(text: str) -> str:
    """The README's python block that calls ``DepthNet.from_preset``."""
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    found = [block for block in blocks if "DepthNet.from_preset" in block]
    assert len(found) == 1, "README.md shows no (or several) DepthNet.from_preset examples"
    return found[0]


def test_readme_example_predicts_one_image(zoo_env, shared, tmp_path, monkeypatch):
    _, cache = zoo_env
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared / "reference" / "test_image.jpg", tmp_path / "street.jpg")
    source = library_example((PROJECT_ROOT / "README.md").read_text())
    lines = [line for line in source.splitlines() if line and not line.startswith("from ")]
    assert len(lines) <= 5  # one image in five lines (after the imports)
    namespace = {}
    exec(compile(source, "README from_preset example", "exec"), namespace)
    # the network straight from load_networks on the same folder, NumPy's Lanczos resize
    expected = direct_disparities(cache / MONO, [load_rgb(tmp_path / "street.jpg")])
    scaled = np.asarray(namespace["scaled_disp"])
    assert scaled.shape == (1, 192, 640, 1)
    np.testing.assert_allclose(scaled[..., 0], expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(namespace["depth"]), 1.0 / scaled, rtol=1e-6)
