"""Writes a float32 state dict as a PyTorch (>= 1.6) zip checkpoint, for tests that need a
torchvision-style file (no PyTorch here): the pickle is assembled opcode by opcode with the
helpers of test_torch_checkpoint."""

import zipfile
from typing import Dict

import numpy as np

from tests.test_torch_checkpoint import _dict, _pickle, _tensor, _with_metadata


def write_state_dict(path, state: Dict[str, np.ndarray]) -> None:
    """``{key: array}`` -> ``path``, every tensor float32 on a storage of its own."""
    entries, storages = {}, {}
    for index, (key, array) in enumerate(state.items()):
        array = np.ascontiguousarray(array, np.float32)
        stride = tuple(s // array.itemsize for s in array.strides)
        entries[key] = _tensor(str(index), "FloatStorage", array.size, 0, array.shape, stride)
        storages[str(index)] = array.tobytes()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _pickle(_with_metadata(_dict(entries))))
        archive.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")
