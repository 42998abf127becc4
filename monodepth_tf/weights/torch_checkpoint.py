"""Reading PyTorch ``.pth`` checkpoints with NumPy alone (PyTorch is neither needed nor imported).

PyTorch has written two formats:

* the legacy stream (PyTorch < 1.6, and later with ``_use_new_zipfile_serialization=False``):
  five pickles back to back -- the magic number, the protocol version (1001), a dict of system
  info, the object itself (each storage appears as a *persistent id*), and the list of storage
  keys -- followed, for each key in that list's order, by the storage's element count as a
  little-endian int64 and then its raw little-endian elements;
* the zip archive (PyTorch >= 1.6): ``<folder>/data.pkl`` holds the object (again with
  persistent ids for storages) and the member ``<folder>/data/<key>`` holds each storage's raw
  bytes, in the byte order named by ``<folder>/byteorder`` (little when that member is absent).
  The folder is ``archive`` or the file's stem, depending on the PyTorch version.

In both, a tensor is pickled as a call to ``torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)``; here that call yields a placeholder, and once every storage's bytes are known
the placeholder becomes the strided view of its storage, copied into a contiguous array.

Safety: the unpickler resolves only the handful of globals a state dict needs (the tensor and
parameter rebuilders, the storage and dtype names, ``collections.OrderedDict``); any other global
raises :class:`CheckpointError`, so loading a checkpoint never runs code it carries.  The
header pickles are read with an unpickler that refuses every global.
"""

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Mapping, Optional, Tuple, Union

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
ZIP_SIGNATURE = b"PK\x03\x04"

# torch element types -> NumPy type of their stored elements (bfloat16 is kept as its bit
# pattern, uint16, and widened to float32 when a tensor is materialized).
_ELEMENT_TYPES: Dict[str, np.dtype] = {
    "float32": np.dtype(np.float32), "float64": np.dtype(np.float64),
    "float16": np.dtype(np.float16), "bfloat16": np.dtype(np.uint16),
    "int64": np.dtype(np.int64), "int32": np.dtype(np.int32), "int16": np.dtype(np.int16),
    "int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8), "bool": np.dtype(np.bool_),
}
# torch's other spellings of the same dtype objects (``torch.float`` is ``torch.float32`` ...).
_DTYPE_ALIASES: Dict[str, str] = {
    **{name: name for name in _ELEMENT_TYPES},
    "float": "float32", "double": "float64", "half": "float16", "long": "int64",
    "int": "int32", "short": "int16",
}
# storage classes named in persistent ids -> element type.
_STORAGE_CLASSES: Dict[str, str] = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8",
}

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A file is not a PyTorch checkpoint this reader can (or may safely) load."""


# --- placeholders the unpickler builds -------------------------------------------------------

class _ElementType:
    """Stands for a storage class (``torch.FloatStorage``) or a dtype (``torch.float32``) in the
    pickle; all it carries is the torch name of the element type."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Storage:
    """One storage named by a persistent id: its key, element type and element count.  Its
    elements (a flat NumPy array, still in the file's byte order) arrive after unpickling."""

    def __init__(self, key: str, element_type: str, numel: int):
        self.key = key
        self.element_type = element_type
        self.numel = numel
        self.elements: Optional[np.ndarray] = None

    @property
    def nbytes(self) -> int:
        return self.numel * _ELEMENT_TYPES[self.element_type].itemsize

    def fill(self, raw: bytes, byteorder: str, source: str) -> None:
        """Takes the storage's elements from ``raw`` (``byteorder`` is ``"<"`` or ``">"``)."""
        if len(raw) < self.nbytes:
            raise CheckpointError(f"{source}: truncated: storage {self.key} needs {self.nbytes} "
                                  f"bytes, only {len(raw)} are there")
        dtype = _ELEMENT_TYPES[self.element_type].newbyteorder(byteorder)
        self.elements = np.frombuffer(raw, dtype=dtype, count=self.numel)


class _StorageView:
    """What a persistent id stands for: ``numel`` elements of a storage from ``start`` on (the
    whole storage, except for the storage views of very old legacy files)."""

    def __init__(self, storage: _Storage, start: int, numel: int):
        self.storage, self.start, self.numel = storage, start, numel


class _TensorRef:
    """A tensor as pickled: a strided view of a storage, materialized once its bytes are read."""

    def __init__(self, view: _StorageView, offset: Any, size: Any, stride: Any):
        self.view, self.offset, self.size, self.stride = view, offset, size, stride


# --- unpicklers ------------------------------------------------------------------------------

class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data (numbers, strings, lists, dicts) and refuses every global."""

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        raise CheckpointError(
            f"{self.source}: refusing to load {module}.{name}: only tensors, storages, dtypes "
            "and collections.OrderedDict may appear in a checkpoint read here")

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(f"{self.source}: unexpected persistent id {pid!r}")


class _StateDictUnpickler(_PlainUnpickler):
    """Unpickles a checkpoint's object: tensors become ``_TensorRef`` placeholders on the
    ``_Storage`` objects collected in ``self.storages`` (key -> storage)."""

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file, source)
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter",
                                                 "_rebuild_parameter_with_state"):
            return self._rebuild_parameter
        if module in ("torch", "torch.storage") and name in _STORAGE_CLASSES:
            return _ElementType(_STORAGE_CLASSES[name])
        if module == "torch" and name in _DTYPE_ALIASES:
            return _ElementType(_DTYPE_ALIASES[name])
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> _StorageView:
        """``('storage', type, key, location, numel)`` in zip files; legacy files append the
        view metadata, ``None`` or ``(view_key, start, numel)``."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            return super().persistent_load(pid)
        element_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(element_type, _ElementType) or not _is_count(numel):
            raise CheckpointError(f"{self.source}: malformed storage reference {pid!r}")
        storage = self._storage(str(key), element_type.name, numel)
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _StorageView(storage, 0, numel)
        if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1])
                and _is_count(view[2]) and view[1] + view[2] <= numel):
            raise CheckpointError(f"{self.source}: malformed storage view {view!r}")
        return _StorageView(storage, view[1], view[2])

    def _storage(self, key: str, element_type: str, numel: int) -> _Storage:
        """The storage ``key``, created on its first mention."""
        storage = self.storages.setdefault(key, _Storage(key, element_type, numel))
        if (storage.element_type, storage.numel) != (element_type, numel):
            raise CheckpointError(f"{self.source}: storage {key} is referenced both as "
                                  f"{storage.numel} {storage.element_type} and as {numel} "
                                  f"{element_type} elements")
        return storage

    def _rebuild_tensor(self, view: Any, offset: Any, size: Any, stride: Any,
                        *unused: Any) -> _TensorRef:
        """Stands for ``_rebuild_tensor`` and ``_rebuild_tensor_v2`` (whose further arguments,
        requires_grad, backward hooks and metadata, do not matter for the values)."""
        if not isinstance(view, _StorageView):
            raise CheckpointError(f"{self.source}: a tensor is built on {view!r}, not a storage")
        return _TensorRef(view, offset, size, stride)

    def _rebuild_parameter(self, data: Any, *unused: Any) -> Any:
        """An ``nn.Parameter`` is its tensor."""
        return data


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- from placeholders to arrays --------------------------------------------------------------

def _as_shape(values: Any, what: str, source: str) -> Tuple[int, ...]:
    if not (isinstance(values, (tuple, list)) and all(_is_count(v) for v in values)):
        raise CheckpointError(f"{source}: a tensor has the invalid {what} {values!r}")
    return tuple(values)


def _materialize(tensor: _TensorRef, source: str) -> np.ndarray:
    """The tensor's values: a C-contiguous array of its own, in native byte order."""
    view = tensor.view
    storage = view.storage
    size = _as_shape(tensor.size, "size", source)
    stride = _as_shape(tensor.stride, "stride", source)
    if len(size) != len(stride) or not _is_count(tensor.offset):
        raise CheckpointError(f"{source}: a tensor on storage {storage.key} has offset "
                              f"{tensor.offset!r}, size {size} and stride {stride}")
    stored = _ELEMENT_TYPES[storage.element_type]
    if 0 in size:
        values = np.empty(size, dtype=stored)
    else:
        last = tensor.offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= view.numel:
            raise CheckpointError(f"{source}: a tensor reaches element {last} of storage "
                                  f"{storage.key}, which holds {view.numel}")
        flat = storage.elements[view.start + tensor.offset:]
        values = np.lib.stride_tricks.as_strided(
            flat, shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False)
    return _to_native(values, storage.element_type)


def _to_native(values: np.ndarray, element_type: str) -> np.ndarray:
    """A contiguous native-order copy; bfloat16 bit patterns become float32 (they are its upper
    half)."""
    if element_type == "bfloat16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values.astype(values.dtype.newbyteorder("="), order="C", copy=True)


def _resolve(obj: Any, source: str, seen: Optional[set] = None) -> Any:
    """Replaces the placeholders inside ``obj`` (dicts and lists in place, so an OrderedDict
    keeps its ``_metadata``; tuples rebuilt): tensors by arrays, bare storages by their flat
    elements, dtypes by NumPy dtypes."""
    seen = set() if seen is None else seen
    if isinstance(obj, _TensorRef):
        return _materialize(obj, source)
    if isinstance(obj, _StorageView):
        flat = obj.storage.elements[obj.start:obj.start + obj.numel]
        return _to_native(flat, obj.storage.element_type)
    if isinstance(obj, _ElementType):
        return np.dtype(np.float32) if obj.name == "bfloat16" else _ELEMENT_TYPES[obj.name]
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in seen:
            return obj
        seen.add(id(obj))
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _resolve(obj[key], source, seen)
    elif isinstance(obj, list):
        obj[:] = [_resolve(item, source, seen) for item in obj]
    elif isinstance(obj, tuple):
        return tuple(_resolve(item, source, seen) for item in obj)
    return obj


# --- the two formats ---------------------------------------------------------------------------

def _zip_folder(archive: zipfile.ZipFile, source: str) -> str:
    """The folder (with its trailing slash) that holds ``data.pkl``: the shallowest one."""
    pickles = [name for name in archive.namelist()
               if name == "data.pkl" or name.endswith("/data.pkl")]
    if not pickles:
        raise CheckpointError(f"{source}: a zip archive without data.pkl, not a checkpoint")
    shallowest = min(pickles, key=lambda name: (name.count("/"), name))
    return shallowest[: -len("data.pkl")]


def _zip_byteorder(archive: zipfile.ZipFile, folder: str, source: str) -> str:
    """``"<"`` or ``">"`` from the ``byteorder`` member (files without it are little-endian)."""
    try:
        order = archive.read(folder + "byteorder").decode("ascii", "replace").strip()
    except KeyError:
        return "<"
    if order not in ("little", "big"):
        raise CheckpointError(f"{source}: unknown byte order {order!r}")
    return "<" if order == "little" else ">"


def _read_zip(path: Path, source: str) -> Any:
    """The object in a zip-format checkpoint, with its storages filled."""
    with zipfile.ZipFile(path) as archive:
        folder = _zip_folder(archive, source)
        byteorder = _zip_byteorder(archive, folder, source)
        unpickler = _StateDictUnpickler(io.BytesIO(archive.read(folder + "data.pkl")), source)
        obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            try:
                raw = archive.read(f"{folder}data/{key}")
            except KeyError:
                raise CheckpointError(f"{source}: storage {key} is missing from the archive "
                                      f"(no member {folder}data/{key})") from None
            storage.fill(raw, byteorder, source)
    return obj


def _read_plain(file: BinaryIO, source: str, what: str) -> Any:
    """One header pickle of a legacy file."""
    try:
        return _PlainUnpickler(file, source).load()
    except EOFError:
        raise CheckpointError(f"{source}: truncated before the {what}") from None


def _read_legacy_header(file: BinaryIO, source: str) -> None:
    """Checks the magic number, protocol version and system info that open a legacy file."""
    try:
        magic = _PlainUnpickler(file, source).load()
    except CheckpointError:
        raise
    except Exception as error:  # random bytes make pickle fail in many ways
        raise CheckpointError(f"{source}: neither a zip archive nor a legacy PyTorch checkpoint "
                              f"(its start is not a pickle: {type(error).__name__})") from None
    if magic != LEGACY_MAGIC:
        raise CheckpointError(f"{source}: neither a zip archive nor a legacy PyTorch checkpoint "
                              "(no magic number)")
    protocol = _read_plain(file, source, "protocol version")
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"{source}: unknown legacy protocol version {protocol!r}")
    if not isinstance(_read_plain(file, source, "system info"), dict):
        raise CheckpointError(f"{source}: the system info of a legacy checkpoint is not a dict")


def _read_legacy_storage(file: BinaryIO, storage: _Storage, source: str) -> None:
    """One storage's data: its element count (little-endian int64), then its elements."""
    header = file.read(8)
    if len(header) < 8:
        raise CheckpointError(f"{source}: truncated before the data of storage {storage.key}")
    (count,) = struct.unpack("<q", header)
    if count != storage.numel:
        raise CheckpointError(f"{source}: storage {storage.key} should hold {storage.numel} "
                              f"elements, its data says {count}")
    storage.fill(file.read(storage.nbytes), "<", source)


def _read_legacy(path: Path, source: str) -> Any:
    """The object in a legacy-format checkpoint, with its storages filled."""
    with open(path, "rb") as file:
        _read_legacy_header(file, source)
        unpickler = _StateDictUnpickler(file, source)
        try:
            obj = unpickler.load()
        except EOFError:
            raise CheckpointError(f"{source}: truncated inside the pickled object") from None
        keys = _read_plain(file, source, "list of storage keys")
        if not isinstance(keys, list):
            raise CheckpointError(f"{source}: the storage key list is a {type(keys).__name__}")
        for key in keys:
            storage = unpickler.storages.get(str(key))
            if storage is None:
                raise CheckpointError(f"{source}: data for storage {key}, which no tensor uses")
            _read_legacy_storage(file, storage, source)
        missing = sorted(set(unpickler.storages) - {str(key) for key in keys})
        if missing:
            raise CheckpointError(f"{source}: no data for storages {missing}")
    return obj


def _read(path: Path, source: str) -> Any:
    """Dispatches on the first bytes, as PyTorch does; returns the resolved object."""
    with open(path, "rb") as file:
        start = file.read(len(ZIP_SIGNATURE))
    if not start:
        raise CheckpointError(f"{source}: the file is empty")
    if start == ZIP_SIGNATURE:
        try:
            obj = _read_zip(path, source)
        except zipfile.BadZipFile as error:
            raise CheckpointError(f"{source}: a truncated or damaged zip archive "
                                  f"({error})") from None
    else:
        obj = _read_legacy(path, source)
    return _resolve(obj, source)


def load_state_dict(path: PathLike) -> Dict[str, Any]:
    """Reads a ``.pth`` file of either format without PyTorch.

    Returns:
        The top-level dict as stored (usually a ``collections.OrderedDict``): each tensor as a
        C-contiguous ``numpy.ndarray`` of the stored dtype (bfloat16 widened to float32; 0-d
        arrays for scalars such as ``num_batches_tracked``), other entries as plain Python
        values.  Checkpoints that wrap the state dict go through :func:`unwrap_state_dict`.

    Raises:
        CheckpointError: naming the file, when it is missing, empty, truncated, in neither
            format, holds something other than a dict, or asks for a global outside the few
            a state dict needs.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CheckpointError(f"{source}: no such checkpoint file")
    try:
        obj = _read(path, source)
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"{source}: cannot be read ({error})") from None
    except Exception as error:  # malformed bytes fail pickle, zipfile and struct in many ways
        reason = "truncated" if "truncated" in str(error) else "unreadable"
        raise CheckpointError(f"{source}: {reason} checkpoint ({type(error).__name__}: "
                              f"{error})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: the checkpoint holds a {type(obj).__name__}, "
                              "not a dict of tensors")
    return obj


def unwrap_state_dict(obj: Mapping[str, Any]) -> Dict[str, Any]:
    """The state dict inside a training checkpoint that wraps it under ``"state_dict"`` or
    ``"model"`` (checked in that order); a plain state dict is returned as it is."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"a checkpoint's top level is a dict, not a {type(obj).__name__}")
    for key in ("state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, dict):
            return inner
    return obj
