"""Reading PyTorch ``.pth`` checkpoints with NumPy alone (PyTorch is not needed).

Two formats exist:

* the legacy stream (PyTorch < 1.6, the format of the original's released models): five pickles
  back to back -- a magic number, the protocol version, system info, the object itself (storages
  appear as persistent ids), and the list of storage keys -- followed by each storage's data in
  that order, every one prefixed by its element count as a little-endian int64;
* the zip archive (PyTorch >= 1.6): ``<folder>/data.pkl`` holds the object, and each storage's
  raw bytes are the member ``<folder>/data/<key>``.

The unpickler here resolves only the few globals a state dict needs (tensor rebuilders, storage
types, OrderedDict); anything else is refused, so a checkpoint cannot run code.
"""

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Callable, Dict

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
DTYPE_NAMES = {"float32": np.float32, "float": np.float32, "float64": np.float64,
               "double": np.float64, "float16": np.float16, "half": np.float16,
               "bfloat16": "bfloat16", "int64": np.int64, "long": np.int64, "int32": np.int32,
               "int": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
               "bool": np.bool_}


class CheckpointError(ValueError):
    """A file is not a readable PyTorch checkpoint."""


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co. in the pickle: it only carries the dtype."""

    def __init__(self, dtype):
        self.dtype = dtype


class _Storage:
    """A storage's elements as a flat NumPy array (filled in after unpickling for the legacy
    format, whose data follows the pickles)."""

    def __init__(self, dtype, count: int):
        self.dtype = dtype
        self.count = count
        self.array = None


class _LazyTensor:
    """A tensor view on a storage, materialized once the storage's data is known."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        data = self.storage.array
        if not self.size:
            return np.array(data[self.offset])  # a 0-d array, as torch keeps scalars
        span = 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
        if self.offset + span > data.size:
            raise ValueError("a tensor reaches beyond its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size,
            strides=[s * data.itemsize for s in self.stride], writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, *unused):
    return data


class _Dtype:
    def __init__(self, name):
        self.name = name


def _numpy_dtype(dtype):
    """bfloat16 is read as uint16 and widened to float32 afterwards."""
    return np.uint16 if dtype == "bfloat16" else dtype


def _fill(storage: _Storage, raw: bytes) -> None:
    array = np.frombuffer(raw, dtype=np.dtype(_numpy_dtype(storage.dtype)).newbyteorder("<"))
    if storage.dtype == "bfloat16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    storage.array = array


class _Unpickler(pickle.Unpickler):
    """Resolves a state dict's globals only; storages become ``_Storage`` placeholders."""

    def __init__(self, file, source: str, storages: Dict[str, _Storage], make_storage: Callable):
        super().__init__(file)
        self.source = source
        self.storages = storages
        self.make_storage = make_storage

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if module == "torch" and name in DTYPE_NAMES:
            return _Dtype(name)
        if module == "torch.storage" and name in ("UntypedStorage", "TypedStorage"):
            return _StorageType(np.uint8)
        raise CheckpointError(f"{self.source}: the checkpoint asks for {module}.{name}, which a "
                              "state dict never needs; refusing to load it")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"{self.source}: unexpected persistent id {pid!r}")
        storage_type, key, count = pid[1], str(pid[2]), pid[4]  # pid[3]: device, unused
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else \
            DTYPE_NAMES.get(getattr(storage_type, "name", ""), None)
        if dtype is None:
            raise CheckpointError(f"{self.source}: unknown storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = self.make_storage(key, dtype, count)
        return self.storages[key]


def _resolve(obj):
    """Replaces lazy tensors by arrays throughout a nested structure."""
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def _load_zip(path: Path, source: str):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise CheckpointError(f"{source}: a zip file without data.pkl is not a checkpoint")
        folder = pickles[0][: -len("data.pkl")]

        def make_storage(key, dtype, count):
            storage = _Storage(dtype, count)
            member = f"{folder}data/{key}"
            if member not in names:
                raise CheckpointError(f"{source}: storage {key} is missing from the archive")
            _fill(storage, archive.read(member))
            return storage

        obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), source, {}, make_storage).load()
    return obj


def _load_legacy(path: Path, source: str):
    storages: Dict[str, _Storage] = {}
    with open(path, "rb") as file:
        for what in ("magic number", "protocol version", "system info"):
            header = pickle.load(file)
            if what == "magic number" and header != LEGACY_MAGIC:
                raise CheckpointError(f"{source}: not a PyTorch checkpoint (bad magic number)")
        obj = _Unpickler(file, source, storages, lambda key, dtype, count: _Storage(dtype, count)
                         ).load()
        keys = pickle.load(file)
        for key in keys:
            storage = storages[str(key)]
            (count,) = struct.unpack("<q", file.read(8))
            size = count * np.dtype(_numpy_dtype(storage.dtype)).itemsize
            raw = file.read(size)
            if len(raw) != size:
                raise CheckpointError(f"{source}: truncated (storage {key} needs {size} bytes, "
                                      f"{len(raw)} remain)")
            _fill(storage, raw)
    return obj


def load_state_dict(path) -> "collections.OrderedDict":
    """Reads a ``.pth`` file (either format) into ``{key: numpy array or plain value}``.

    Raises:
        CheckpointError: the file is missing, truncated, not a checkpoint, not a dict, or asks
            for code a state dict does not need.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CheckpointError(f"{source}: no such checkpoint file")
    try:
        obj = _load_zip(path, source) if zipfile.is_zipfile(path) else _load_legacy(path, source)
        obj = _resolve(obj)
    except CheckpointError:
        raise
    except Exception as error:  # any malformed byte stream: pickle, struct, zip errors
        raise CheckpointError(f"{source}: unreadable checkpoint ({type(error).__name__}: "
                              f"{error})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    return obj


def unwrap_state_dict(obj: Dict) -> Dict:
    """The state dict inside a training checkpoint that wraps it under ``state_dict`` or
    ``model``; a plain state dict is returned as it is."""
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), dict):
            return obj[key]
    return obj
