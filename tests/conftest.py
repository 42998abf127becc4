"""Shared test fixtures: where ../shared lives, TensorFlow kept quiet and small, and the
process-wide settings a test changes put back before the next test runs."""

import os
import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# hermetic: a test without its local server gets "Connection refused" (port 9), never the internet
os.environ.setdefault("MONODEPTH_ZOO_URL", "http://127.0.0.1:9/")
os.environ.setdefault("MONODEPTH_KITTI_URL", "http://127.0.0.1:9/")
os.environ.setdefault("MONODEPTH_SPLITS_URL", "http://127.0.0.1:9/")

import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

pytest_plugins = ["pytester"]  # tests/test_process_settings.py runs pytest sessions in-process

from tests.helpers import PROJECT_ROOT, shared_dir  # noqa: E402,F401  (re-exported)
import numpy as np  # noqa: E402

from monodepth_tf import export  # noqa: E402
from monodepth_tf.weights.folder import load_networks  # noqa: E402
from tests.helpers import SMALL, random_depth_weights, real_image_paths  # noqa: E402


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def reference_dir(shared) -> Path:
    return shared / "reference" / "monodepth2_r18_seed0"


@pytest.fixture(scope="session")
def kitti_dir(shared) -> Path:
    return shared / "kitti"


# ---- a small network and real images at its feed size, for the converted models' tests ------

@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """A weights folder of a freshly initialized ResNet-18 depth network at 64x192."""
    return random_depth_weights(tmp_path_factory.mktemp("converted") / "small", seed=5)


@pytest.fixture(scope="module")
def small(small_folder):
    """``(config, depth network)`` of :func:`small_folder`."""
    config, depth, _ = load_networks(small_folder, with_pose=False)
    return config, depth


@pytest.fixture(scope="module")
def feed_images(shared):
    """The test photo and the KITTI raw frame's two cameras at 64x192: float32 in [0, 1]."""
    images = export.feed_size_images(real_image_paths(shared), SMALL["height"], SMALL["width"])
    return images.astype(np.float32) / 255.0


# ----------------------------------------------------------------------------------------------
# Process-wide settings. Each entry: a name, a function reading the setting and a function
# putting a value read earlier back.

def _tf_seed_state() -> Tuple[Any, Any, Any]:
    """TensorFlow's global seed: the eager context's seed and the state of the generator it
    draws op seeds from (private: TensorFlow has no public getter), and the graph's seed."""
    import tensorflow as tf
    from tensorflow.python.eager import context

    ctx = context.context()
    rng = getattr(ctx, "_rng", None)  # only drawn from while a seed is set
    return ctx._seed, rng.getstate() if ctx._seed is not None else None, \
        tf.compat.v1.get_default_graph().seed


def _set_tf_seed_state(state: Tuple[Any, Any, Any]) -> None:
    import tensorflow as tf
    from tensorflow.python.eager import context

    seed, rng_state, graph_seed = state
    ctx = context.context()
    context.set_global_seed(seed)
    if rng_state is not None:
        ctx._rng.setstate(rng_state)
    tf.compat.v1.get_default_graph().seed = graph_seed


def _keras_seed_state() -> Tuple[Any, Any, Any]:
    """The seed keras.utils.set_random_seed records, Keras's global seed generator and that
    generator's state (private: Keras has no public getter)."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    return (global_state.get_global_attribute("global_random_seed"), generator,
            None if generator is None else generator.state.numpy().copy())


def _set_keras_seed_state(state: Tuple[Any, Any, Any]) -> None:
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    seed, generator, generator_state = state
    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, generator)
    if generator is not None:
        generator.state.assign(generator_state)


def _op_determinism() -> bool:
    """Whether op determinism is on (its getter and ``disable`` are not exported as tf.*)."""
    from tensorflow.python.framework import config
    return config.is_op_determinism_enabled()


def _set_op_determinism(enabled: bool) -> None:
    from tensorflow.python.framework import config
    if enabled:
        config.enable_op_determinism()
    else:
        config.disable_op_determinism()


def _settings() -> List[Tuple[str, Callable[[], Any], Callable[[Any], None]]]:
    """(name, read, restore) of every process-wide setting tests or the library change."""
    import keras
    import numpy as np
    import tensorflow as tf

    from monodepth_tf.training.step import restore_grappler_options

    return [
        ("grappler options", tf.config.optimizer.get_experimental_options,
         restore_grappler_options),
        ("XLA auto-clustering", tf.config.optimizer.get_jit, tf.config.optimizer.set_jit),
        ("tf.functions run eagerly", tf.config.functions_run_eagerly,
         tf.config.run_functions_eagerly),
        ("op determinism", _op_determinism, _set_op_determinism),
        ("Keras dtype policy", lambda: keras.config.dtype_policy().name,
         keras.config.set_dtype_policy),
        ("Keras floatx", keras.config.floatx, keras.config.set_floatx),
        ("Keras image data format", keras.config.image_data_format,
         keras.config.set_image_data_format),
        ("Python random state", random.getstate, random.setstate),
        ("NumPy random state", np.random.get_state, np.random.set_state),
        ("TensorFlow global seed", _tf_seed_state, _set_tf_seed_state),
        ("Keras random seed", _keras_seed_state, _set_keras_seed_state),
    ]


def snapshot_settings() -> Dict[str, Any]:
    """``{name: value}`` of every process-wide setting in :func:`_settings`."""
    return {name: read() for name, read, _ in _settings()}


def restore_settings(snapshot: Dict[str, Any]) -> List[str]:
    """Puts back every setting that differs from ``snapshot``; returns the names put back."""
    restored = []
    for name, read, restore in _settings():
        if not _same(read(), snapshot[name]):
            restore(snapshot[name])
            restored.append(name)
    return restored


def _same(a: Any, b: Any) -> bool:
    """Equality that also compares NumPy's random state (a tuple holding an array)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        import numpy as np
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return np.array_equal(a, b)
    except ImportError:  # pragma: no cover
        pass
    return a is b or a == b


@pytest.fixture(scope="module", autouse=True)
def module_process_settings():
    """The same for module-scoped fixtures (set up before a module's first test, before the
    per-test snapshot): what they change is put back after the module's last test."""
    before = snapshot_settings()
    yield before
    restore_settings(before)


@pytest.fixture(autouse=True)
def process_settings(request):
    """Each test starts with the process-wide settings the previous one started with (grappler
    options, XLA, op determinism, Keras dtype policy, random seeds):
    whatever a test changes is put back after it, so no result depends on the tests that ran
    before. The names put back are kept on the test's node (``restored_settings``)."""
    before = snapshot_settings()
    yield before
    request.node.restored_settings = restore_settings(before)


# ----------------------------------------------------------------------------------------------
# Parallel runs (setup.cfg asks pytest-xdist for ``-n auto``).

GIB_PER_WORKER = 6  # a training test's process and its bin/train child take up to ~5 GiB


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per core this process may use, at most one per
    GIB_PER_WORKER GiB of memory. A serial run keeps about one core busy (much of it tracing,
    importing and starting tools); on this project's 2-core machine two workers took the
    whole suite from 43-47 minutes to 30-32."""
    cores = len(os.sched_getaffinity(0))
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(cores, int(memory_gib // GIB_PER_WORKER)))


def pytest_collection_modifyitems(config, items) -> None:
    """The slow tests first, the longest first (``@pytest.mark.slow(seconds=N)``: about N
    seconds alone; 60 unless given), file order otherwise (a stable sort). pytest-xdist hands
    out the first tests in this order, so the longest start at once rather than leave one
    worker running a long test at the end while the other idles: in file order the README's
    demo (11-12 minutes beside the other worker) started 18 minutes into a 43-minute run."""
    def order(item):
        marker = item.get_closest_marker("slow")
        return (0, -marker.kwargs.get("seconds", 60)) if marker else (1, 0)
    items.sort(key=order)
