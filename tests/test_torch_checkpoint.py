"""Reading PyTorch checkpoints without PyTorch: the reference files and hand-made ones."""

import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

from monodepth_tf.weights.torch_checkpoint import LEGACY_MAGIC, CheckpointError, load_state_dict

RESNET18_BLOCKS = {"layer1": 2, "layer2": 2, "layer3": 2, "layer4": 2}


def resnet18_keys(prefix="encoder."):
    keys = {f"{prefix}conv1.weight"} | {f"{prefix}bn1.{p}" for p in
                                        ("weight", "bias", "running_mean", "running_var",
                                         "num_batches_tracked")}
    for stage, count in RESNET18_BLOCKS.items():
        for i in range(count):
            block = f"{prefix}{stage}.{i}."
            keys |= {f"{block}conv1.weight", f"{block}conv2.weight"}
            for bn in ("bn1", "bn2"):
                keys |= {f"{block}{bn}.{p}" for p in ("weight", "bias", "running_mean",
                                                      "running_var", "num_batches_tracked")}
            if i == 0 and stage != "layer1":
                keys |= {f"{block}downsample.0.weight"} | {
                    f"{block}downsample.1.{p}" for p in ("weight", "bias", "running_mean",
                                                         "running_var", "num_batches_tracked")}
    return keys | {f"{prefix}fc.weight", f"{prefix}fc.bias"}


@pytest.mark.parametrize("name,channels", [("encoder.pth", 3), ("pose_encoder.pth", 6)])
def test_encoders_have_every_resnet18_tensor(reference_dir, name, channels):
    state = load_state_dict(reference_dir / name)
    tensors = {k for k, v in state.items() if isinstance(v, np.ndarray)}
    assert tensors == resnet18_keys()
    assert state["encoder.conv1.weight"].shape == (64, channels, 7, 7)
    assert state["encoder.layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert state["encoder.layer3.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert state["encoder.conv1.weight"].dtype == np.float32
    assert state["encoder.bn1.num_batches_tracked"].dtype == np.int64
    assert state["encoder.bn1.num_batches_tracked"].shape == ()
    assert all((v > 0).all() for k, v in state.items() if k.endswith("running_var"))


def test_legacy_encoder_keeps_the_feed_size_entries(reference_dir):
    state = load_state_dict(reference_dir / "encoder.pth")
    assert (state["height"], state["width"], state["use_stereo"]) == (192, 640, False)


def test_decoders_have_the_original_module_layout(reference_dir):
    depth = load_state_dict(reference_dir / "depth.pth")  # zip format
    assert depth["decoder.0.conv.conv.weight"].shape == (256, 512, 3, 3)
    assert depth["decoder.7.conv.conv.weight"].shape == (32, 96, 3, 3)
    assert [depth[f"decoder.{10 + s}.conv.weight"].shape[1] for s in range(4)] == [16, 32, 64, 128]
    pose = load_state_dict(reference_dir / "pose.pth")  # legacy format
    assert {k: v.shape for k, v in pose.items()} == {
        "net.0.weight": (256, 512, 1, 1), "net.0.bias": (256,),
        "net.1.weight": (256, 256, 3, 3), "net.1.bias": (256,),
        "net.2.weight": (256, 256, 3, 3), "net.2.bias": (256,),
        "net.3.weight": (12, 256, 1, 1), "net.3.bias": (12,)}


def test_zip_tensors_equal_the_raw_storage_bytes(reference_dir):
    """Independently of the unpickler: every storage member of depth.pth, read with zipfile and
    np.frombuffer, appears among the loaded tensors."""
    state = load_state_dict(reference_dir / "depth.pth")
    loaded = {v.tobytes() for v in state.values() if isinstance(v, np.ndarray)}
    with zipfile.ZipFile(reference_dir / "depth.pth") as archive:
        members = [n for n in archive.namelist() if "/data/" in n and not n.endswith("/")]
        raws = [np.frombuffer(archive.read(n), "<f4").tobytes() for n in members]
    assert len(members) == 28
    assert all(raw in loaded for raw in raws)


# --- Hand-made checkpoints, written opcode by opcode (no PyTorch involved) --------------------

def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _ordered_dict():
    return _global("collections", "OrderedDict") + b")R"


def _tensor(storage_key, storage_type, count, offset, size, stride):
    pid = _tuple([_str("storage"), _global("torch", storage_type), _str(storage_key),
                  _str("cpu"), _int(count)]) + b"Q"
    args = _tuple([pid, _int(offset), _tuple([_int(n) for n in size]),
                   _tuple([_int(n) for n in stride]), b"\x89", _ordered_dict()])
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_pickle(entries):
    """A protocol-2 pickle of an OrderedDict ``{key: opcode bytes}``."""
    body = b"".join(_str(k) + v for k, v in entries.items())
    return b"\x80\x02" + _ordered_dict() + b"(" + body + b"u."


BASE = np.arange(12, dtype=np.float32) * 0.5  # one float32 storage shared by three views
HALF = np.array([1.5, -2.25, 65504.0], dtype=np.float16)
ENTRIES = {
    "matrix": _tensor("0", "FloatStorage", 12, 0, (3, 4), (4, 1)),
    "transposed": _tensor("0", "FloatStorage", 12, 0, (4, 3), (1, 4)),
    "offset_view": _tensor("0", "FloatStorage", 12, 5, (2, 3), (3, 1)),
    "half": _tensor("1", "HalfStorage", 3, 0, (3,), (1,)),
    "count": _tensor("2", "LongStorage", 1, 0, (), ()),
    "height": _int(192),
}
STORAGES = {"0": BASE.tobytes(), "1": HALF.tobytes(), "2": np.int64(7).tobytes()}


def write_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", _state_pickle(ENTRIES))
        for key, raw in STORAGES.items():
            archive.writestr(f"model/data/{key}", raw)
        archive.writestr("model/version", "3\n")


def write_legacy(path):
    out = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(_state_pickle(ENTRIES))
    pickle.dump(list(STORAGES), out, protocol=2)
    for key, raw in STORAGES.items():
        itemsize = {"0": 4, "1": 2, "2": 8}[key]
        out.write(struct.pack("<q", len(raw) // itemsize) + raw)
    path.write_bytes(out.getvalue())


@pytest.mark.parametrize("writer", [write_zip, write_legacy])
def test_hand_made_checkpoint_views_dtypes_and_values(tmp_path, writer):
    path = tmp_path / "made.pth"
    writer(path)
    state = load_state_dict(path)
    np.testing.assert_array_equal(state["matrix"], BASE.reshape(3, 4))
    np.testing.assert_array_equal(state["transposed"], BASE.reshape(3, 4).T)
    np.testing.assert_array_equal(state["offset_view"], BASE[5:11].reshape(2, 3))
    assert state["half"].dtype == np.float16
    np.testing.assert_array_equal(state["half"], HALF)
    assert state["count"].dtype == np.int64 and state["count"] == 7
    assert state["height"] == 192
    assert list(state) == list(ENTRIES)


def test_truncated_checkpoint_is_named(tmp_path, reference_dir):
    path = tmp_path / "cut.pth"
    path.write_bytes((reference_dir / "pose.pth").read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="cut.pth.*truncated"):
        load_state_dict(path)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match="noise.pth"):
        load_state_dict(path)


def test_a_pickle_that_calls_os_system_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", b"\x80\x02" + _global("os", "system")
                         + _tuple([_str("echo pwned")]) + b"R.")
    with pytest.raises(CheckpointError, match=r"evil.pth.*os\.system"):
        load_state_dict(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="absent.pth: no such checkpoint file"):
        load_state_dict(tmp_path / "absent.pth")
