"""monodepth_tf: self-supervised monocular depth estimation (Monodepth2) in TensorFlow/Keras.

The public surface: the networks (``DepthNet``, ``PoseNet`` and their parts), the geometry
layers, the loss, and weights folders (``load_networks``, ``save_weights_folder``).

They are imported on first use (PEP 562), so the tools and modules that do not need
TensorFlow (``monodepth_tf.synthetic``, ``bin/make_synthetic_kitti`` and its worker
processes) start without importing it.
"""

import importlib

__version__ = "0.1.0"

# public name -> the module defining it
_EXPORTS = {
    "BackprojectDepth": "geometry", "BilinearSampler": "geometry", "Project3D": "geometry",
    "bilinear_sample": "geometry", "disp_to_depth": "geometry",
    "transformation_from_parameters": "geometry",
    "SSIM": "losses", "LossOptions": "losses", "compute_losses": "losses",
    "DepthNet": "networks", "PoseNet": "networks",
    "DepthDecoder": "networks", "PoseCNN": "networks", "PoseDecoder": "networks",
    "ResnetEncoder": "networks",
    "load_networks": "weights.folder", "save_weights_folder": "weights.folder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """``monodepth_tf.<name>``: a public name (imported from its module on first use), or a
    submodule (``monodepth_tf.geometry``)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
