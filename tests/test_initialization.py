"""Networks trained from scratch start as the original's do (PyTorch's default conv init), but
where a scratch run moves its start: a mono run's translations (forward motion)."""

import numpy as np
import tensorflow as tf

from monodepth_tf.networks.layers import PaddedConv2D


def test_conv_weights_and_bias_are_uniform_within_one_over_root_fan_in():
    layer = PaddedConv2D(64, 3, pad=1)
    layer(tf.zeros([1, 8, 8, 32]))
    bound = 1 / np.sqrt(32 * 9)
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
    # a uniform distribution on [-b, b] has std b / sqrt(3); 18432 draws pin it within 3%
    assert abs(kernel.std() / (bound / np.sqrt(3)) - 1) < 0.03
    assert abs(np.abs(bias).max() / bound - 1) < 0.2  # the bias spans its range too


def test_explicit_initializers_are_kept():
    layer = PaddedConv2D(4, 1, kernel_initializer="ones", bias_initializer="zeros")
    layer(tf.zeros([1, 2, 2, 3]))
    np.testing.assert_array_equal(layer.kernel.numpy(), 1.0)
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)


POSE_IMAGES = tf.random.stateless_uniform([2, 64, 96, 6], seed=[4, 5])


def pose_networks():
    """(name, network, its output convolution, a call on two frames) of each pose type."""
    from monodepth_tf.networks.layers import build
    from monodepth_tf.networks.pose_net import PoseNet, build_shared_pose_decoder
    from monodepth_tf.networks.resnet_encoder import ResnetEncoder

    tf.keras.utils.set_random_seed(7)
    resnet = build(PoseNet(18, 2, "separate_resnet"), 6)
    cnn = build(PoseNet(18, 2, "posecnn"), 6)
    encoder = ResnetEncoder(18, 1)
    shared = build_shared_pose_decoder(encoder.num_ch_enc, 2)
    features = [encoder(POSE_IMAGES[..., :3]), encoder(POSE_IMAGES[..., 3:])]
    return [("separate_resnet", resnet, resnet.decoder.convs[-1], lambda: resnet(POSE_IMAGES)),
            ("posecnn", cnn, cnn.cnn.pose_conv, lambda: cnn(POSE_IMAGES)),
            ("shared", shared, shared.convs[-1], lambda: shared(features))]


def test_translations_start_at_the_chosen_forward_motion_and_only_the_output_bias_changes():
    for name, network, output_conv, predict in pose_networks():
        before = {v.path: v.numpy() for v in network.variables}
        axisangle, translation = predict()
        assert np.abs(translation.numpy()).max() < 0.03, name  # the original's start: ~0
        network.start_translations_at(-0.2)
        bias = output_conv.bias.numpy()  # by hand: 6 numbers a frame, z last, scaled by 0.01
        expected = np.zeros_like(bias)
        expected[5::6] = -20.0
        np.testing.assert_array_equal(bias, expected, err_msg=name)
        for v in network.variables:
            if v.path != output_conv.bias.path:
                np.testing.assert_array_equal(v.numpy(), before[v.path], err_msg=name)
        axisangle, translation = predict()
        translation = translation.numpy()
        assert translation.shape[-1] == 3
        np.testing.assert_allclose(translation[..., 2], -0.2, atol=0.03, err_msg=name)
        assert np.abs(translation[..., :2]).max() < 0.03, name
        assert np.abs(axisangle.numpy()).max() < 0.03, name


def test_a_scratch_run_starts_moving_forward_only_without_stereo():
    from monodepth_tf.training.checkpoints import SCRATCH_TRANSLATION, initial_weights
    from monodepth_tf.training.options import MODES, TrainOptions
    from monodepth_tf.training.step import Trainer

    for mode, pose_model_type in (("mono", "separate_resnet"), ("mono", "shared"),
                                  ("mono_stereo", "separate_resnet")):
        options = TrainOptions(**MODES[mode], pose_model_type=pose_model_type, scales=(0,),
                               weights_init="scratch", height=64, width=96)
        trainer = Trainer(tf.distribute.OneDeviceStrategy("/cpu:0"), options.model_config(),
                          options.loss_options())
        system = trainer.system
        pose = system.pose if system.pose is not None else system.shared_pose
        output_conv = pose.decoder.convs[-1] if system.pose is not None else pose.convs[-1]
        before = output_conv.bias.numpy()
        assert initial_weights(options, trainer) is None
        z_bias = output_conv.bias.numpy()[5::6]
        if options.use_stereo:
            np.testing.assert_array_equal(output_conv.bias.numpy(), before)
        else:
            np.testing.assert_array_equal(z_bias, SCRATCH_TRANSLATION / 0.01)
