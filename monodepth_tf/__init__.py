"""monodepth_tf: self-supervised monocular depth estimation (Monodepth2) in TensorFlow/Keras.

The public surface: the networks (``DepthNet``, ``PoseNet`` and their parts), the geometry
layers, the loss, and weights folders (``load_networks``, ``save_weights_folder``).

They are imported on first use (PEP 562), so the tools and modules that do not need
TensorFlow (``monodepth_tf.synthetic``, ``bin/make_synthetic_kitti`` and its worker
processes) start without importing it.
"""

import importlib
import os

__version__ = "0.1.0"

# TensorFlow's oneDNN kernels, which it turns on by itself only on CPUs with AVX-512 VNNI or
# BF16 or AMX. On an AVX2 CPU (Zen 3, 2026-12) a stereo training step took 2.98 s with them and
# 3.57 s without (the original's: 4.22 s), so they are on wherever TensorFlow is imported after
# this package (bin/, the tests and the benchmarks import it first); TF_ENABLE_ONEDNN_OPTS=0
# keeps them off. (Figures of single runs; train_step.jsonl has the steps before and after.)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

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
