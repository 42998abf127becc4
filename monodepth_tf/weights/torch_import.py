"""Loading the original's PyTorch state dicts (and torchvision ResNets) into the Keras networks.

Every network lists the PyTorch module prefix of each of its layers (``torch_modules()``); a
convolution takes ``<prefix>.weight`` (``[O, I, kh, kw]`` -> Keras ``[kh, kw, I, O]``) and
``<prefix>.bias``; a BatchNorm takes ``weight``, ``bias``, ``running_mean``, ``running_var``.
Every key a layer needs must be present with the right shape, or a ``WeightImportError`` names
it; tensors no layer consumes are an error too, except the classifier ``fc`` and the
bookkeeping ``num_batches_tracked``.
"""

import re
from typing import Dict, Mapping, Optional, Tuple

import keras
import numpy as np

from monodepth_tf.weights.torch_checkpoint import load_state_dict, unwrap_state_dict

IGNORED_KEYS = re.compile(r"(^|\.)(fc\.(weight|bias)|num_batches_tracked)$")


class WeightImportError(ValueError):
    """A checkpoint does not fit the network it is loaded into."""


def _conv_arrays(layer, state: Mapping, prefix: str):
    arrays = [(layer.kernel, np.transpose(_take(state, f"{prefix}.weight"), (2, 3, 1, 0)),
               f"{prefix}.weight")]
    if layer.use_bias:
        arrays.append((layer.bias, _take(state, f"{prefix}.bias"), f"{prefix}.bias"))
    return arrays


def _bn_arrays(layer, state: Mapping, prefix: str):
    names = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
             ("moving_variance", "running_var"))
    return [(getattr(layer, ours), _take(state, f"{prefix}.{theirs}"), f"{prefix}.{theirs}")
            for ours, theirs in names]


def _take(state: Mapping, key: str) -> np.ndarray:
    if key not in state:
        raise KeyError(key)
    return np.asarray(state[key])


def assign_state_dict(model: keras.Model, state: Mapping, source: str = "checkpoint",
                      prefix: Optional[str] = None, strict: bool = True) -> None:
    """Copies a PyTorch state dict into a built Keras network.

    Args:
        model: a built network with a ``torch_modules(prefix)`` method.
        state: ``{key: array}``; non-array entries (e.g. ``height``) are ignored.
        source: the checkpoint's name, for error messages.
        prefix: the PyTorch prefix of the network (defaults to the network's own).
        strict: reject tensors that no layer consumes.

    Raises:
        WeightImportError: a key is missing, a shape differs, or a tensor is left over.
    """
    if not model.built:
        raise ValueError(f"build {model.name} (call it once) before loading {source}")
    pairs = model.torch_modules() if prefix is None else model.torch_modules(prefix)
    assignments, used = [], set()
    for module_prefix, layer in pairs:
        reader = _bn_arrays if isinstance(layer, keras.layers.BatchNormalization) else _conv_arrays
        try:
            entries = reader(layer, state, module_prefix)
        except KeyError as missing:
            raise WeightImportError(f"{source}: missing key {missing.args[0]!r} "
                                    f"(needed by layer {layer.name})") from None
        for variable, array, key in entries:
            if tuple(variable.shape) != array.shape:
                raise WeightImportError(
                    f"{source}: {key!r} has shape {tuple(np.shape(state[key]))}, but the network "
                    f"needs {_torch_layout(tuple(variable.shape))} "
                    f"(wrong architecture: check num_layers, the number of input frames, scales)")
            assignments.append((variable, array))
            used.add(key)
    if strict:
        leftover = sorted(k for k, v in state.items() if isinstance(v, np.ndarray)
                          and k not in used and not IGNORED_KEYS.search(k))
        if leftover:
            shown = ", ".join(leftover[:5]) + (" ..." if len(leftover) > 5 else "")
            raise WeightImportError(f"{source}: {len(leftover)} tensors fit no layer of "
                                    f"{model.name}: {shown} (wrong architecture?)")
    for variable, array in assignments:
        variable.assign(array.astype(variable.dtype))


def _torch_layout(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """A Keras kernel shape ``(kh, kw, I, O)`` in PyTorch's ``(O, I, kh, kw)`` order."""
    if len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    return shape


def load_torch_file(model: keras.Model, path, prefix: Optional[str] = None) -> Dict:
    """Loads a ``.pth`` file into ``model``; returns the file's extra non-tensor entries."""
    state = unwrap_state_dict(load_state_dict(path))
    assign_state_dict(model, state, source=str(path), prefix=prefix)
    return {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}


def assign_imagenet_resnet(encoder: keras.Model, state: Mapping, source: str = "checkpoint"):
    """Initializes a ResnetEncoder from a torchvision ImageNet state dict (keys without the
    ``encoder.`` prefix). For a multi-frame encoder the first convolution's weights are repeated
    for every frame and divided by their number, as the original does."""
    state = dict(state)
    frames = encoder.num_input_images
    if frames > 1 and "conv1.weight" in state:
        state["conv1.weight"] = np.concatenate([state["conv1.weight"]] * frames, axis=1) / frames
    assign_state_dict(encoder, state, source=source, prefix="")


def load_imagenet_resnet(encoder: keras.Model, path) -> None:
    """:func:`assign_imagenet_resnet` from a torchvision ``.pth`` file."""
    assign_imagenet_resnet(encoder, unwrap_state_dict(load_state_dict(path)), str(path))
