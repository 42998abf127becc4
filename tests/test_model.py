"""Every network configuration of the original trains: its loss reaches every weight."""

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.batch import Batch
from monodepth_tf.data.frames import frame_key
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.model import Monodepth2

HEIGHT, WIDTH, SCALES = 64, 96, (0, 1, 2, 3)


def random_batch(frame_ids, batch=2, seed=0) -> Batch:
    rng = np.random.default_rng(seed)
    color = {}
    for f in frame_ids:
        full = rng.random((batch, HEIGHT, WIDTH, 3)).astype(np.float32)
        color[frame_key(f)] = tuple(
            tf.image.resize(full, (HEIGHT // 2 ** s, WIDTH // 2 ** s), antialias=True)
            for s in SCALES)
    Ks, inv_Ks = [], []
    for s in SCALES:
        K = np.eye(4, dtype=np.float32)
        K[0, 0], K[1, 1] = 0.58 * WIDTH / 2 ** s, 1.92 * HEIGHT / 2 ** s
        K[0, 2], K[1, 2] = 0.5 * WIDTH / 2 ** s, 0.5 * HEIGHT / 2 ** s
        Ks.append(tf.constant(np.repeat(K[None], batch, 0)))
        inv_Ks.append(tf.constant(np.repeat(np.linalg.inv(K)[None], batch, 0)))
    stereo_T = np.repeat(np.eye(4, dtype=np.float32)[None], batch, 0)
    stereo_T[:, 0, 3] = 0.1
    return Batch(color=color, color_aug={k: v[0] for k, v in color.items()}, K=tuple(Ks),
                 inv_K=tuple(inv_Ks), stereo_T=tf.constant(stereo_T))


CONFIGS = {
    "mono": dict(frame_ids=(0, -1, 1)),
    "stereo": dict(frame_ids=(0, "s")),
    "mono_stereo": dict(frame_ids=(0, -1, 1, "s")),
    "posecnn": dict(frame_ids=(0, -1, 1), pose_model_type="posecnn"),
    "shared": dict(frame_ids=(0, -1, 1), pose_model_type="shared"),
    "all_frames": dict(frame_ids=(0, -1, 1), pose_model_input="all"),
    "predictive_mask": dict(frame_ids=(0, -1, 1), predictive_mask=True),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loss_gradient_reaches_every_network(name):
    config = CONFIGS[name]
    model_config = ModelConfig(scales=SCALES, **config)
    loss_options = LossOptions(
        frame_ids=config["frame_ids"], scales=SCALES,
        posecnn=config.get("pose_model_type") == "posecnn",
        pose_model_input=config.get("pose_model_input", "pairs"),
        predictive_mask=config.get("predictive_mask", False),
        disable_automasking=config.get("predictive_mask", False))
    system = Monodepth2(model_config)
    batch = random_batch(config["frame_ids"])
    with tf.GradientTape() as tape:
        outputs = system(batch, training=True)
        losses = system.loss(batch, outputs, loss_options)
    assert np.isfinite(losses.total.numpy())
    assert len(outputs.poses) == sum(1 for f in config["frame_ids"][1:] if f != "s")
    grads = tape.gradient(losses.total, system.trainable_variables)
    for variable, grad in zip(system.trainable_variables, grads):
        assert grad is not None, f"no gradient reaches {variable.path}"
    for network_name, network in system.networks().items():
        total = sum(float(tf.reduce_sum(tf.abs(g))) for v, g in
                    zip(system.trainable_variables, grads)
                    if any(v is w for w in network.trainable_variables))
        assert total > 0, f"the loss does not depend on the {network_name} network"


def test_stereo_only_training_builds_no_pose_network():
    system = Monodepth2(ModelConfig(frame_ids=(0, "s")))
    assert system.pose is None and system.shared_pose is None


def test_shared_encoder_predicts_the_same_depth_as_the_depth_network_alone():
    system = Monodepth2(ModelConfig(frame_ids=(0, -1, 1), pose_model_type="shared"))
    batch = random_batch((0, -1, 1))
    outputs = system(batch, training=False)
    alone = system.depth(batch.color_aug["0"], training=False)
    for a, b in zip(outputs.disps, alone):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
