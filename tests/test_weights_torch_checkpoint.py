"""Reading PyTorch checkpoints without PyTorch: the reference files and hand-made ones.

The four reference checkpoints were saved by the original Monodepth2 (two legacy files, two zip
files).  Their tensors are checked against torchvision's ResNet-18 layout and the original
decoders, and -- independently of the reader's unpickler -- against the raw storage bytes located
by a separate opcode-level scan of the pickles.  Their tensors are all contiguous at offset zero,
so views (transposed, offset, strided) and other dtypes are covered by checkpoints written here,
opcode by opcode, in both formats (no PyTorch involved).
"""

import collections
import io
import pickle
import pickletools
import struct
import zipfile
from typing import BinaryIO, Dict, Tuple

import numpy as np
import pytest

from monodepth_tf.weights.torch_checkpoint import (LEGACY_MAGIC, CheckpointError,
                                                   load_state_dict, unwrap_state_dict)
from tests.helpers import (pickle_dict, pickle_global, pickle_int, pickle_parameter,
                           pickle_protocol2, pickle_str, pickle_tensor, pickle_tuple,
                           with_metadata)

# --- the reference checkpoints -----------------------------------------------------------------

RESNET18_STAGES = (("layer1", 64, 64), ("layer2", 64, 128), ("layer3", 128, 256),
                   ("layer4", 256, 512))
BN_PARAMETERS = ("weight", "bias", "running_mean", "running_var")


def batch_norm_shapes(name: str, channels: int) -> Dict[str, Tuple[int, ...]]:
    shapes = {f"{name}.{p}": (channels,) for p in BN_PARAMETERS}
    shapes[f"{name}.num_batches_tracked"] = ()
    return shapes


def resnet18_shapes(in_channels: int, prefix: str = "encoder.") -> Dict[str, Tuple[int, ...]]:
    """Every tensor of torchvision's ResNet-18 state dict with its shape."""
    shapes = {f"{prefix}conv1.weight": (64, in_channels, 7, 7)}
    shapes.update(batch_norm_shapes(f"{prefix}bn1", 64))
    for stage, stage_in, channels in RESNET18_STAGES:
        for index in range(2):
            block = f"{prefix}{stage}.{index}."
            block_in = stage_in if index == 0 else channels
            shapes[f"{block}conv1.weight"] = (channels, block_in, 3, 3)
            shapes.update(batch_norm_shapes(f"{block}bn1", channels))
            shapes[f"{block}conv2.weight"] = (channels, channels, 3, 3)
            shapes.update(batch_norm_shapes(f"{block}bn2", channels))
            if index == 0 and stage_in != channels:
                shapes[f"{block}downsample.0.weight"] = (channels, stage_in, 1, 1)
                shapes.update(batch_norm_shapes(f"{block}downsample.1", channels))
    shapes[f"{prefix}fc.weight"] = (1000, 512)
    shapes[f"{prefix}fc.bias"] = (1000,)
    return shapes


# The depth decoder: upconv (i, 0) and (i, 1) for i = 4..0 as decoder.0..9 (ConvBlock, hence
# conv.conv), then the dispconvs of scales 0..3 as decoder.10..13 (Conv3x3, hence conv).
DECODER_CONVS = [(256, 512), (256, 512), (128, 256), (128, 256), (64, 128), (64, 128),
                 (32, 64), (32, 96), (16, 32), (16, 16)]
DISP_INPUTS = [16, 32, 64, 128]
DEPTH_SHAPES = {
    **{f"decoder.{i}.conv.conv.weight": (out, inp, 3, 3) for i, (out, inp) in
       enumerate(DECODER_CONVS)},
    **{f"decoder.{i}.conv.conv.bias": (out,) for i, (out, _) in enumerate(DECODER_CONVS)},
    **{f"decoder.{10 + s}.conv.weight": (1, inp, 3, 3) for s, inp in enumerate(DISP_INPUTS)},
    **{f"decoder.{10 + s}.conv.bias": (1,) for s in range(4)},
}
POSE_SHAPES = {"net.0.weight": (256, 512, 1, 1), "net.0.bias": (256,),
               "net.1.weight": (256, 256, 3, 3), "net.1.bias": (256,),
               "net.2.weight": (256, 256, 3, 3), "net.2.bias": (256,),
               "net.3.weight": (12, 256, 1, 1), "net.3.bias": (12,)}
REFERENCE_FILES = ["encoder.pth", "pose_encoder.pth", "depth.pth", "pose.pth"]


@pytest.fixture(scope="module")
def checkpoints(reference_dir):
    """The four reference checkpoints, each loaded once."""
    return {name: load_state_dict(reference_dir / name) for name in REFERENCE_FILES}


def tensor_shapes(state) -> Dict[str, Tuple[int, ...]]:
    return {k: v.shape for k, v in state.items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("name,channels,extras", [
    ("encoder.pth", 3, {"height": 192, "width": 640, "use_stereo": False}),
    ("pose_encoder.pth", 6, {}),
])
def test_encoders_hold_every_resnet18_tensor_with_torchvision_shapes(checkpoints, name,
                                                                     channels, extras):
    state = checkpoints[name]
    assert tensor_shapes(state) == resnet18_shapes(channels)
    assert len(tensor_shapes(state)) == 122
    plain = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    assert plain == extras
    assert all(type(v) is type(extras[k]) for k, v in plain.items())  # use_stereo is a bool


def test_decoders_have_the_original_module_layout(checkpoints):
    assert tensor_shapes(checkpoints["depth.pth"]) == DEPTH_SHAPES
    assert len(checkpoints["depth.pth"]) == 28  # tensors only, no plain entries
    assert tensor_shapes(checkpoints["pose.pth"]) == POSE_SHAPES
    assert list(checkpoints["pose.pth"]) == list(POSE_SHAPES)  # in module order


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reference_dtypes_and_batch_norm_statistics(checkpoints, name):
    state = checkpoints[name]
    assert isinstance(state, collections.OrderedDict)
    for key, value in tensor_shapes(state).items():
        array = state[key]
        if key.endswith("num_batches_tracked"):
            assert array.dtype == np.int64 and array.shape == () and array >= 0
        else:
            assert array.dtype == np.float32 and np.isfinite(array).all(), key
        assert array.flags.c_contiguous and array.flags.writeable
    running_vars = [v for k, v in state.items() if k.endswith("running_var")]
    assert len(running_vars) == (20 if "encoder" in name else 0)
    assert all((v > 0).all() for v in running_vars)


def test_encoder_statistics_are_randomized_not_trained(checkpoints):
    """The reference model has random weights: no BatchNorm saw a batch, yet its running
    statistics are randomized (not the initial zeros and ones)."""
    for name in ("encoder.pth", "pose_encoder.pth"):
        state = checkpoints[name]
        assert {int(v) for k, v in state.items() if k.endswith("num_batches_tracked")} == {0}
        means = [v for k, v in state.items() if k.endswith("running_mean")]
        variances = [v for k, v in state.items() if k.endswith("running_var")]
        assert len(means) == len(variances) == 20
        assert not any((m == 0).all() for m in means)
        assert not any((v == 1).all() for v in variances)


# --- an independent look at the same bytes -------------------------------------------------------

STRING_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "GLOBAL"}
PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
RAW_DTYPES = {"torch FloatStorage": "<f4", "torch LongStorage": "<i8"}


def storage_refs(stream: BinaryIO) -> Dict[str, Tuple[str, str]]:
    """``{state dict key: (storage class, storage key)}`` from one pickle's opcodes, consumed up
    to its STOP: the strings (memoized ones included) run ``key, rebuild function, 'storage',
    storage class, storage key, device`` for every tensor."""
    tokens, memo, last = [], {}, None
    for opcode, arg, _ in pickletools.genops(stream):
        if opcode.name in STRING_OPS:
            tokens.append(arg)
            last = arg
            continue
        if opcode.name in PUT_OPS and last is not None:
            memo[arg] = last
        elif opcode.name in GET_OPS and arg in memo:
            tokens.append(memo[arg])
        last = None
    refs = {}
    for i, token in enumerate(tokens):
        if token == "storage":
            assert tokens[i - 1] == "torch._utils _rebuild_tensor_v2"
            refs[tokens[i - 2]] = (tokens[i + 1], tokens[i + 2])
    return refs


def expect_raw_equal(state, refs, raws):
    """Every tensor equals its storage's raw bytes read with np.frombuffer."""
    assert set(refs) == set(tensor_shapes(state))
    for key, (storage_class, storage_key) in refs.items():
        raw = np.frombuffer(raws[storage_key], RAW_DTYPES[storage_class])
        np.testing.assert_array_equal(raw.reshape(state[key].shape), state[key], err_msg=key)
        assert raw.dtype.newbyteorder("=") == state[key].dtype


@pytest.mark.parametrize("name", ["depth.pth", "pose_encoder.pth"])
def test_zip_tensors_equal_the_archive_members_of_their_storage_keys(checkpoints,
                                                                     reference_dir, name):
    folder = name[: -len(".pth")]  # these files use the stem as their folder
    with zipfile.ZipFile(reference_dir / name) as archive:
        assert archive.read(f"{folder}/byteorder") == b"little"
        refs = storage_refs(io.BytesIO(archive.read(f"{folder}/data.pkl")))
        raws = {key: archive.read(f"{folder}/data/{key}") for _, key in refs.values()}
    expect_raw_equal(checkpoints[name], refs, raws)
    # a tensor picked by its storage key: torch numbers zip storages in order of appearance
    assert refs["decoder.7.conv.conv.weight" if name == "depth.pth"
                else "encoder.conv1.weight"][1] == ("14" if name == "depth.pth" else "0")


@pytest.mark.parametrize("name", ["encoder.pth", "pose.pth"])
def test_legacy_tensors_equal_the_storage_records_after_the_pickles(checkpoints,
                                                                    reference_dir, name):
    with open(reference_dir / name, "rb") as file:
        assert pickle.load(file) == LEGACY_MAGIC  # trusted file: plain pickle for the headers
        assert pickle.load(file) == 1001
        assert pickle.load(file)["little_endian"] is True
        refs = storage_refs(file)
        keys = pickle.load(file)
        raws = {}
        itemsizes = {key: np.dtype(RAW_DTYPES[cls]).itemsize for cls, key in refs.values()}
        for key in keys:
            (count,) = struct.unpack("<q", file.read(8))
            raws[key] = file.read(count * itemsizes[key])
        assert file.read() == b""  # nothing after the last storage
    assert sorted(keys) == sorted(key for _, key in refs.values())
    expect_raw_equal(checkpoints[name], refs, raws)


# --- hand-made checkpoints, written opcode by opcode ---------------------------------------------

BASE = np.arange(12, dtype=np.float32) * 0.5  # one float32 storage shared by four views
HALF = np.array([1.5, -2.25, 65504.0], dtype=np.float16)
BF16_SOURCE = np.array([1.5, -3.0, 0.15625, 1e30], dtype=np.float32)
BF16_BITS = (BF16_SOURCE.view(np.uint32) >> 16).astype(np.uint16)  # bfloat16 = upper half
BF16 = (BF16_BITS.astype(np.uint32) << 16).view(np.float32)
FLAGS = np.array([True, False, True])
INT32 = np.array([-7, 0, 2**31 - 1], dtype=np.int32)
STORAGES = {  # key: (class, elements)
    "0": ("FloatStorage", BASE), "1": ("HalfStorage", HALF), "2": ("LongStorage",
                                                                  np.array([7], np.int64)),
    "3": ("BFloat16Storage", BF16_BITS), "4": ("BoolStorage", FLAGS),
    "5": ("IntStorage", INT32),
}
LEGACY_KEY_ORDER = ["2", "0", "5", "1", "4", "3"]  # data follows the key list, not key order


def made_entries(legacy_pid: bool = False) -> Dict[str, bytes]:
    def tensor(key, offset, size, stride):
        storage_class, elements = STORAGES[key]
        return pickle_tensor(key, storage_class, elements.size, offset, size, stride, legacy_pid)
    return {
        "matrix": tensor("0", 0, (3, 4), (4, 1)),
        "transposed": tensor("0", 0, (4, 3), (1, 4)),
        "offset_view": tensor("0", 5, (2, 3), (3, 1)),
        "stepped": tensor("0", 1, (2, 2), (6, 2)),
        "half": tensor("1", 0, (3,), (1,)),
        "count": tensor("2", 0, (), ()),
        "bf16": tensor("3", 0, (4,), (1,)),
        "flags": tensor("4", 0, (3,), (1,)),
        "ints": tensor("5", 1, (2,), (1,)),
        "param": pickle_parameter(tensor("0", 2, (2,), (1,))),
        "height": pickle_int(192),
        "use_stereo": b"\x89",
    }


def expect_made_state(state):
    """The exact values of ``made_entries``."""
    assert list(state) == list(made_entries())
    np.testing.assert_array_equal(state["matrix"], BASE.reshape(3, 4))
    np.testing.assert_array_equal(state["transposed"], BASE.reshape(3, 4).T)
    np.testing.assert_array_equal(state["offset_view"], BASE[5:11].reshape(2, 3))
    np.testing.assert_array_equal(state["stepped"], [[BASE[1], BASE[3]], [BASE[7], BASE[9]]])
    assert all(state[k].dtype == np.float32 and state[k].flags.c_contiguous
               for k in ("matrix", "transposed", "offset_view", "stepped"))
    assert state["half"].dtype == np.float16
    np.testing.assert_array_equal(state["half"], HALF)
    assert state["count"].dtype == np.int64 and state["count"].shape == () and state["count"] == 7
    assert state["bf16"].dtype == np.float32
    np.testing.assert_array_equal(state["bf16"], BF16)
    np.testing.assert_array_equal(state["bf16"][:3], [1.5, -3.0, 0.15625])  # exact in bfloat16
    assert state["flags"].dtype == np.bool_ and state["flags"].tolist() == [True, False, True]
    assert state["ints"].dtype == np.int32 and state["ints"].tolist() == [0, 2**31 - 1]
    assert state["param"].dtype == np.float32 and state["param"].tolist() == [1.0, 1.5]
    assert state["height"] == 192 and state["use_stereo"] is False
    state["matrix"][0, 0] = 99.0  # an array of its own: no other view changes
    assert state["transposed"][0, 0] == 0.0


def raw_bytes(key: str, byteorder: str = "<") -> bytes:
    elements = STORAGES[key][1]
    return elements.astype(elements.dtype.newbyteorder(byteorder)).tobytes()


def write_zip(path, folder: str = "archive", byteorder: str = "little", body: bytes = None):
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/data.pkl",
                         pickle_protocol2(body or with_metadata(pickle_dict(made_entries()))))
        archive.writestr(f"{folder}/byteorder", byteorder)
        for key in STORAGES:
            archive.writestr(f"{folder}/data/{key}", raw_bytes(key, order))
        archive.writestr(f"{folder}/version", "3\n")


def write_legacy(path, body: bytes = None):
    out = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    out.write(pickle_protocol2(body or with_metadata(pickle_dict(made_entries(legacy_pid=True)))))
    pickle.dump(LEGACY_KEY_ORDER, out, protocol=2)
    for key in LEGACY_KEY_ORDER:
        out.write(struct.pack("<q", STORAGES[key][1].size) + raw_bytes(key))
    path.write_bytes(out.getvalue())


@pytest.mark.parametrize("writer", [
    write_legacy,
    write_zip,
    lambda path: write_zip(path, folder=path.stem),  # the folder name of torch >= 2.x
    lambda path: write_zip(path, byteorder="big"),
], ids=["legacy", "zip-archive", "zip-stem", "zip-big-endian"])
def test_hand_made_checkpoint_views_dtypes_and_values(tmp_path, writer):
    path = tmp_path / "made.pth"
    writer(path)
    state = load_state_dict(path)
    expect_made_state(state)
    assert isinstance(state, collections.OrderedDict)
    assert state._metadata == {"": {"version": 1}}


def test_wrapped_state_dicts_are_kept_until_unwrapped(tmp_path):
    inner = pickle_dict({"w": pickle_tensor("0", "FloatStorage", 12, 0, (12,), (1,))})
    for wrapper in ("state_dict", "model"):
        path = tmp_path / f"{wrapper}.pth"
        write_zip(path, body=pickle_dict({"epoch": pickle_int(3), wrapper: inner}, ordered=False))
        stored = load_state_dict(path)
        assert type(stored) is dict and set(stored) == {"epoch", wrapper}
        state = unwrap_state_dict(stored)
        assert list(state) == ["w"]
        np.testing.assert_array_equal(state["w"], BASE)
    plain = load_state_dict(path)[wrapper]
    assert unwrap_state_dict(plain) is plain


# --- refusals ------------------------------------------------------------------------------------

def test_truncated_legacy_checkpoints_are_named(tmp_path, reference_dir):
    data = (reference_dir / "pose.pth").read_bytes()
    for cut in (100_000, 500):  # inside the storage data, inside the pickled object
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.pth.*truncated"):
            load_state_dict(path)


def test_truncated_zip_checkpoint_is_named(tmp_path, reference_dir):
    path = tmp_path / "half.pth"
    path.write_bytes((reference_dir / "depth.pth").read_bytes()[:6_000_000])
    with pytest.raises(CheckpointError, match="half.pth.*truncated or damaged zip"):
        load_state_dict(path)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match="noise.pth.*neither a zip archive nor a legacy"):
        load_state_dict(path)


def test_empty_and_missing_files_are_named(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pth: the file is empty"):
        load_state_dict(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="absent.pth: no such checkpoint file"):
        load_state_dict(tmp_path / "absent.pth")


def _os_system(marker) -> bytes:
    return pickle_global("os", "system") + pickle_tuple([pickle_str(f"touch {marker}")]) + b"R"


@pytest.mark.parametrize("where", ["zip", "legacy object", "legacy header"])
def test_a_pickle_that_calls_os_system_is_refused(tmp_path, where):
    path, marker = tmp_path / "evil.pth", tmp_path / "pwned"
    evil = pickle_dict({"x": _os_system(marker)})
    if where == "zip":
        write_zip(path, body=evil)
    elif where == "legacy object":
        write_legacy(path, body=evil)
    else:
        path.write_bytes(pickle_protocol2(_os_system(marker)))
    with pytest.raises(CheckpointError, match=r"evil.pth.*os\.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_a_non_dict_top_level_is_refused(tmp_path):
    path = tmp_path / "listed.pth"
    write_zip(path, body=b"](" + pickle_tensor("0", "FloatStorage", 12, 0, (12,), (1,)) + b"e")
    with pytest.raises(CheckpointError, match="listed.pth.*holds a list, not a dict"):
        load_state_dict(path)


def test_a_tensor_beyond_its_storage_is_refused(tmp_path):
    path = tmp_path / "overrun.pth"
    overrun = pickle_tensor("0", "FloatStorage", 12, 6, (3, 4), (4, 1))
    write_zip(path, body=pickle_dict({"w": overrun}))
    with pytest.raises(CheckpointError, match="overrun.pth.*element 17 of storage 0"):
        load_state_dict(path)


def test_a_missing_storage_member_is_named(tmp_path):
    path = tmp_path / "hollow.pth"
    write_zip(path, body=pickle_dict({"w": pickle_tensor("9", "FloatStorage", 12, 0, (12,), (1,))}))
    with pytest.raises(CheckpointError, match="hollow.pth: storage 9 is missing"):
        load_state_dict(path)
