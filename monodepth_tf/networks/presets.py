"""Networks of the released models by name (keras-hub's ``from_preset`` convention): what
``DepthNet.from_preset`` and ``PoseNet.from_preset`` return.

A preset is a model-zoo name (``mono_640x192``, ``stereo_1024x320``, the GluonCV names, ...:
:func:`monodepth_tf.weights.zoo.names`), downloaded, checked, converted and cached on first use
by :mod:`monodepth_tf.weights.zoo` (``$MONODEPTH_ZOO_URL``, ``$MONODEPTH_ZOO_DIR``). The
returned network carries its weights folder's :class:`~monodepth_tf.config.ModelConfig` as
``config``: the feed size (``config.height``, ``config.width``) and the depth range
(``config.min_depth``, ``config.max_depth``).

The zoo sits above the networks (it builds them), so it is imported when a preset is loaded,
not with this module: the one import from the networks up to the weights, allowed by
tests/test_architecture.py.
"""

from typing import Tuple

from monodepth_tf.config import ModelConfig


def load_preset(name: str, pose: bool = False) -> Tuple[ModelConfig, object]:
    """``(config, network)`` of a released model: its depth network, or with ``pose`` its pose
    network.

    Raises:
        ValueError: an unknown name (the message lists the known ones), or ``pose`` for a model
            without a pose network (stereo-only models: the message lists those with one);
            the zoo's download and archive errors.
    """
    from monodepth_tf.weights import zoo  # see the module docstring

    preset = zoo.resolve(name)
    if pose and not zoo.RELEASES[preset.original_name].has_pose:
        with_pose = [n for n in zoo.names() if zoo.RELEASES[zoo.resolve(n).original_name].has_pose]
        raise ValueError(f"preset {name!r} has no pose network (a stereo-only model); presets "
                         f"with one: {', '.join(with_pose)}")
    config, depth, pose_net = zoo.load(preset, with_pose=pose, with_depth=not pose)
    network = pose_net if pose else depth
    network.config = config
    return config, network
