"""The Keras networks with the original's weights reproduce its outputs (reference forward.npz)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import geometry
from monodepth_tf.networks.depth_decoder import DepthDecoder
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.networks.layers import PaddedConv2D, build
from monodepth_tf.networks.pose_cnn import PoseCNN
from monodepth_tf.networks.pose_decoder import PoseDecoder
from monodepth_tf.networks.pose_net import PoseNet
from monodepth_tf.networks.resnet_encoder import ResnetEncoder
from monodepth_tf.training.step import restore_grappler_options
from monodepth_tf.weights.torch_checkpoint import load_state_dict
from monodepth_tf.weights.torch_import import (WeightImportError, assign_imagenet_resnet,
                                              assign_state_dict, load_torch_file)
from tests.reference import load_npz, nhwc, relative_to_std


@pytest.fixture(scope="module")
def forward(reference_dir):
    return load_npz(reference_dir, "forward.npz")


@pytest.fixture
def nets(reference_dir):
    """Fresh networks per test: a training-mode call updates BatchNorm's running statistics."""
    depth = build(DepthNet(18), 3)
    load_torch_file(depth.encoder, reference_dir / "encoder.pth")
    load_torch_file(depth.decoder, reference_dir / "depth.pth")
    pose = build(PoseNet(18, 2), 6)
    load_torch_file(pose.encoder, reference_dir / "pose_encoder.pth")
    load_torch_file(pose.decoder, reference_dir / "pose.pth")
    return depth, pose


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_encoder_features_match(nets, forward, mode):
    depth, _ = nets
    features = depth.encoder(tf.constant(nhwc(forward["input"])), training=mode == "train")
    for i, feature in enumerate(features):
        expected = nhwc(forward[f"{mode}/features/{i}"])
        assert feature.shape == expected.shape
        assert relative_to_std(feature.numpy(), expected) <= 1e-4, f"feature {i}"


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_disparities_at_all_scales_match(nets, forward, mode):
    depth, _ = nets
    disps = depth(tf.constant(nhwc(forward["input"])), training=mode == "train")
    for s, disp in enumerate(disps):
        np.testing.assert_allclose(disp.numpy(), nhwc(forward[f"{mode}/disp/{s}"]), atol=1e-4,
                                   err_msg=f"scale {s}")


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_pose_outputs_and_transforms_match(nets, forward, mode):
    _, pose = nets
    axisangle, translation = pose(tf.constant(nhwc(forward[f"{mode}/pose_input"])),
                                  training=mode == "train")
    np.testing.assert_allclose(axisangle.numpy(), forward[f"{mode}/axisangle"], atol=1e-4)
    np.testing.assert_allclose(translation.numpy(), forward[f"{mode}/translation"], atol=1e-4)
    for invert, key in ((False, "T"), (True, "T_inv")):
        T = geometry.transformation_from_parameters(axisangle[:, 0], translation[:, 0], invert)
        np.testing.assert_allclose(T.numpy(), forward[f"{mode}/{key}"], atol=1e-4)


def test_full_resolution_disparity_scaled_disparity_and_depth(nets, forward):
    depth, _ = nets
    disps = depth(tf.constant(nhwc(forward["full/input"])), training=False)
    for s, disp in enumerate(disps):
        np.testing.assert_allclose(disp.numpy(), nhwc(forward[f"full/disp/{s}"]), atol=1e-4)
    # The 1e-4 disparity tolerance, carried through scaled = 0.01 + 9.99 * disp and
    # depth = 1 / scaled. (The reference is itself float32: its disparity differs from a float64
    # evaluation of the same network by 4.7e-5, so a tighter bound is below its own precision.)
    scaled, metric = geometry.disp_to_depth(disps[0], 0.1, 100.0)
    np.testing.assert_allclose(scaled.numpy(), nhwc(forward["full/scaled_disp"]), atol=9.99e-4)
    np.testing.assert_allclose(1.0 / metric.numpy(), 1.0 / nhwc(forward["full/depth"]),
                               atol=9.99e-4)


def test_encoder_checkpoint_keeps_its_feed_size(reference_dir):
    extras = load_torch_file(build(ResnetEncoder(18), 3), reference_dir / "encoder.pth")
    assert extras["height"] == 192 and extras["width"] == 640


@pytest.mark.parametrize("num_layers,channels", [(18, [64, 64, 128, 256, 512]),
                                                 (50, [64, 256, 512, 1024, 2048])])
def test_encoder_output_shapes(num_layers, channels):
    features = ResnetEncoder(num_layers)(tf.zeros([1, 64, 96, 3]))
    assert [f.shape[-1] for f in features] == channels
    assert [f.shape[1:3] for f in features] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]


def test_posecnn_and_shared_decoder_shapes():
    axisangle, translation = PoseCNN(3)(tf.zeros([2, 64, 64, 9]))
    assert axisangle.shape == (2, 2, 1, 3) and translation.shape == (2, 2, 1, 3)
    encoder = ResnetEncoder(18)
    features = encoder(tf.zeros([2, 64, 64, 3]))
    axisangle, _ = PoseDecoder(encoder.num_ch_enc, 3)([features] * 3)
    assert axisangle.shape == (2, 2, 1, 3)


def test_image_size_not_divisible_by_32_is_rejected():
    with pytest.raises(ValueError, match="height 100, which is not divisible by 32"):
        ResnetEncoder(18)(tf.zeros([1, 100, 640, 3]))


def test_checkpoint_missing_a_key_is_named(reference_dir):
    state = dict(load_state_dict(reference_dir / "depth.pth"))
    del state["decoder.3.conv.conv.bias"]
    decoder = DepthDecoder([64, 64, 128, 256, 512])
    decoder(ResnetEncoder(18)(tf.zeros([1, 64, 64, 3])))
    with pytest.raises(WeightImportError, match=r"depth.pth: missing key 'decoder.3.conv.conv.bias'"):
        assign_state_dict(decoder, state, source="depth.pth")


def test_checkpoint_with_a_wrong_shape_is_named(reference_dir):
    encoder = build(ResnetEncoder(18, num_input_images=2), 6)
    with pytest.raises(WeightImportError, match=r"'encoder.conv1.weight' has shape \(64, 3, 7, 7\)"
                                                r", but the network needs \(64, 6, 7, 7\)"):
        load_torch_file(encoder, reference_dir / "encoder.pth")


def test_checkpoint_of_a_deeper_resnet_is_rejected(reference_dir):
    encoder = build(ResnetEncoder(34), 3)
    with pytest.raises(WeightImportError, match="missing key 'encoder.layer1.2.conv1.weight'"):
        load_torch_file(encoder, reference_dir / "encoder.pth")


def test_torchvision_imagenet_layout_loads_and_multi_frame_conv1_is_averaged(reference_dir):
    """A torchvision checkpoint has the same tensors without the ``encoder.`` prefix."""
    state = load_state_dict(reference_dir / "encoder.pth")
    torchvision = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    single = build(ResnetEncoder(18), 3)
    assign_imagenet_resnet(single, torchvision, "resnet18.pth")
    np.testing.assert_array_equal(single.conv1.kernel.numpy(),
                                  np.transpose(state["encoder.conv1.weight"], (2, 3, 1, 0)))
    pair = build(ResnetEncoder(18, num_input_images=2), 6)
    assign_imagenet_resnet(pair, torchvision, "resnet18.pth")
    kernel = pair.conv1.kernel.numpy()  # [7, 7, 6, 64]
    np.testing.assert_allclose(kernel[:, :, :3] + kernel[:, :, 3:], single.conv1.kernel.numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(kernel[:, :, :3], kernel[:, :, 3:])
    # the same image twice through the pair encoder = once through the single encoder
    image = tf.random.uniform([1, 64, 64, 3], seed=1)
    np.testing.assert_allclose(pair(tf.concat([image, image], -1))[-1].numpy(),
                               single(image)[-1].numpy(), atol=1e-4)


def test_disparity_heads_train_as_depthwise_sums_with_the_convolutions_values():
    decoder = DepthDecoder([64, 64, 128, 256, 512])
    rng = np.random.default_rng(5)
    features = [tf.constant(rng.standard_normal((2, 32 // 2 ** i, 48 // 2 ** i, c)), tf.float32)
                for i, c in enumerate([64, 64, 128, 256, 512])]

    def run(training):
        with tf.GradientTape() as tape:
            disps = decoder(features, training=training)
            loss = tf.add_n([tf.reduce_sum(d * d) for d in disps])
        return disps, tape.gradient(loss, decoder.trainable_variables)

    (inferred, grads_inferred), (trained, grads_trained) = run(False), run(True)
    for a, b in zip(inferred, trained):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_inferred, grads_trained):  # float32 sums in another order
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5 * np.abs(a.numpy()).max())
    # the training graph really takes the depthwise form, inference the plain convolution
    ops = {training: {op.type for op in tf.function(lambda f, t=training: decoder(
        f, training=t)).get_concrete_function(features).graph.get_operations()}
        for training in (False, True)}
    assert "DepthwiseConv2dNative" in ops[True]
    assert "DepthwiseConv2dNative" not in ops[False]


def test_reflection_padding_takes_mirror_pad_to_train_and_slices_to_infer():
    """The same values either way (bitwise forward; the input gradient within rounding of the
    order its reflected terms are summed in); only the ops differ, each where it is faster."""
    conv = PaddedConv2D(4, 3, pad=1, pad_mode="REFLECT")
    x = tf.constant(np.random.default_rng(8).standard_normal((2, 6, 9, 3)), tf.float32)

    def run(training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = conv(x, training=training)
            loss = tf.reduce_sum(y * y)
        return y.numpy(), tape.gradient(loss, x).numpy()

    (inferred, grad_inferred), (trained, grad_trained) = run(False), run(True)
    np.testing.assert_array_equal(trained, inferred)
    np.testing.assert_allclose(grad_trained, grad_inferred, rtol=1e-6, atol=1e-6)
    ops = {training: {op.type for op in tf.function(lambda v, t=training: conv(
        v, training=t)).get_concrete_function(x).graph.get_operations()}
        for training in (False, True)}
    assert "MirrorPad" in ops[True] and "MirrorPad" not in ops[False]


def conv_gradients_float64(x, kernel, dy):
    """(dx, dkernel) of a stride-1 'valid' convolution, straight from the sums, in float64."""
    kh, kw = kernel.shape[:2]
    h, w = dy.shape[1:3]
    x, kernel, dy = (a.astype(np.float64) for a in (x, kernel, dy))
    dx = np.zeros_like(x)
    dk = np.zeros_like(kernel)
    for i in range(kh):
        for j in range(kw):
            window = x[:, i:i + h, j:j + w]
            dk[i, j] = np.einsum("bhwc,bhwo->co", window, dy)
            dx[:, i:i + h, j:j + w] += np.einsum("bhwo,co->bhwc", dy, kernel[i, j])
    return dx, dk


@pytest.mark.parametrize("kernel_size, channels, filters", [(3, 5, 4), (1, 6, 3), (3, 1, 2)])
def test_cpu_convolution_gradients_equal_the_float64_sums(kernel_size, channels, filters):
    from monodepth_tf.networks.layers import conv2d_with_cpu_gradients
    rng = np.random.default_rng(21)
    # three images: the flattened taps must not wrap across rows or images
    x = rng.standard_normal((3, 7, 11, channels)).astype(np.float32)
    kernel = rng.standard_normal((kernel_size, kernel_size, channels, filters)).astype(np.float32)
    out_size = (7 - kernel_size + 1, 11 - kernel_size + 1)
    dy = rng.standard_normal((3, *out_size, filters)).astype(np.float32)
    xt, kt = tf.constant(x), tf.constant(kernel)
    with tf.GradientTape() as tape:
        tape.watch([xt, kt])
        y = conv2d_with_cpu_gradients(xt, kt)
        loss = tf.reduce_sum(y * dy)
    np.testing.assert_array_equal(y.numpy(), tf.nn.conv2d(xt, kt, 1, "VALID").numpy())
    dx, dk = tape.gradient(loss, [xt, kt])
    expected_dx, expected_dk = conv_gradients_float64(x, kernel, dy)
    np.testing.assert_allclose(dx.numpy(), expected_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dk.numpy(), expected_dk, rtol=1e-5, atol=1e-4)
    # and traced, with the batch unknown to the trace
    traced = tf.function(lambda a, b: tf.gradients(
        tf.reduce_sum(conv2d_with_cpu_gradients(a, b) * dy), [a, b]), autograph=False,
        input_signature=[tf.TensorSpec([None, 7, 11, channels]), tf.TensorSpec(kernel.shape)])
    for got, expected in zip(traced(xt, kt), (expected_dx, expected_dk)):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-4)


def conv_float64(x, kernel):
    """A stride-1 'valid' convolution, straight from the sums, in float64."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return sum(np.einsum("bhwc,co->bhwo", x[:, i:i + h, j:j + w].astype(np.float64),
                         kernel[i, j].astype(np.float64)) for i in range(kh) for j in range(kw))


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_zero_padded_stride_1_convolutions_are_same_convolutions_with_the_float64_sums(
        monkeypatch, kernel_size):
    """Zero padding of (k - 1) / 2 at stride 1 is TensorFlow's "SAME": the layer pads inside
    the convolution (no Pad op), training and inference, with PyTorch's values and gradients."""
    import monodepth_tf.networks.layers as layers
    monkeypatch.setattr(layers, "cpu_flags", lambda: ["avx2", "avx512f", "avx512bw"])
    pad = kernel_size // 2
    conv = PaddedConv2D(4, kernel_size, pad=pad, activation="elu")
    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, 7, 10, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 7, 10, 4)).astype(np.float32)
    xt = tf.constant(x)
    conv(xt)  # built
    kernel, bias = conv.kernel.numpy(), conv.bias.numpy()
    padded = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)]).astype(np.float64)
    linear = conv_float64(padded, kernel) + bias
    expected = np.where(linear > 0, linear, np.expm1(linear))
    upstream = dy * np.where(linear > 0, 1.0, np.exp(linear))  # through the ELU
    expected_dx, expected_dk = conv_gradients_float64(padded, kernel, upstream)
    expected_dx = expected_dx[:, pad:-pad, pad:-pad]
    for training in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = conv(xt, training=training)
            loss = tf.reduce_sum(y * dy)
        dx, dk = tape.gradient(loss, [xt, conv.kernel])
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dx.numpy(), expected_dx, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(dk.numpy(), expected_dk, rtol=1e-5, atol=1e-4)
        graph = tf.function(lambda v, t=training: conv(v, training=t),
                            autograph=False).get_concrete_function(xt).graph
        convolutions = [op for op in graph.get_operations() if op.type == "Conv2D"]
        assert [op.get_attr("padding") for op in convolutions] == [b"SAME"]
        assert "Pad" not in {op.type for op in graph.get_operations()}
    # stride 2 (TensorFlow's "SAME" would pad after only) and reflection keep their padding
    for other in (PaddedConv2D(4, 3, strides=2, pad=1), PaddedConv2D(4, 3, pad=1,
                                                                      pad_mode="REFLECT")):
        graph = tf.function(lambda v, layer=other: layer(v, training=True),
                            autograph=False).get_concrete_function(xt).graph
        assert {"Pad", "MirrorPad"} & {op.type for op in graph.get_operations()}


def test_training_takes_the_cpu_gradients_on_large_stride_1_maps_only(monkeypatch):
    import monodepth_tf.networks.layers as layers
    # an AVX2 CPU (Zen 3's flags), where the per-tap form is the faster one
    monkeypatch.setattr(layers, "cpu_flags", lambda: ["sse2", "avx", "avx2", "fma"])
    conv = PaddedConv2D(4, 3, pad=1, pad_mode="REFLECT")
    strided = PaddedConv2D(4, 3, strides=2, pad=1)
    zero_padded = PaddedConv2D(4, 3, pad=1)  # else a "SAME" convolution
    big = tf.zeros([1, 62, 64, 3])  # 64x66 padded: at least CPU_GRADIENT_MIN_PIXELS
    small = tf.zeros([1, 14, 16, 3])
    conv(small), strided(small), zero_padded(small)  # built outside the traces
    assert 64 * 66 >= layers.CPU_GRADIENT_MIN_PIXELS > 16 * 18

    def gradient_ops(layer, x, training=True):
        def step(v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                loss = tf.reduce_sum(layer(v, training=training))
            return tape.gradient(loss, [v, layer.kernel])
        graph = tf.function(step, autograph=False).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "Conv2DBackpropInput" not in gradient_ops(conv, big)
    assert "MatMul" in gradient_ops(conv, big)
    assert {"MatMul", "Pad"} <= gradient_ops(zero_padded, big)
    assert "Pad" not in gradient_ops(zero_padded, small)
    assert "Conv2DBackpropInput" in gradient_ops(conv, small)
    assert "Conv2DBackpropInput" in gradient_ops(conv, big, training=False)
    assert "Conv2DBackpropInput" in gradient_ops(strided, tf.zeros([1, 128, 128, 3]))
    # with AVX-512 (or without grappler: --deterministic) oneDNN's gradients are the faster
    monkeypatch.setattr(layers, "cpu_flags", lambda: ["avx2", "avx512f", "avx512bw"])
    assert "Conv2DBackpropInput" in gradient_ops(conv, big)
    assert "MatMul" not in gradient_ops(conv, big)
    assert not {"MatMul", "Pad"} & gradient_ops(zero_padded, big)
    monkeypatch.setattr(layers, "cpu_flags", lambda: ["sse2", "avx", "avx2", "fma"])
    previous = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        assert "Conv2DBackpropInput" in gradient_ops(conv, big)
        assert "MatMul" not in gradient_ops(conv, big)
    finally:
        restore_grappler_options(previous)


def test_output_heads_compute_in_float32_under_mixed_precision():
    """Under ``mixed_bfloat16`` the bodies compute in bfloat16, the disparity heads and the pose
    outputs in float32: the disparities and poses leave the networks in float32."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        encoder = ResnetEncoder(18)
        decoder = DepthDecoder(encoder.num_ch_enc)
        pose_decoder = PoseDecoder(encoder.num_ch_enc, 2)
        posecnn = PoseCNN(2)
    finally:
        keras.config.set_dtype_policy("float32")
    features = encoder(tf.zeros([1, 64, 64, 3]))
    assert features[-1].dtype == tf.bfloat16
    disps = decoder(features, training=True)
    assert [d.dtype for d in disps] == [tf.float32] * 4
    assert decoder.upconvs[0][0].compute_dtype == "bfloat16"
    for pose in (pose_decoder([features] * 2), posecnn(tf.zeros([1, 64, 64, 6]))):
        assert [p.dtype for p in pose] == [tf.float32, tf.float32]
    assert posecnn.convs[0].compute_dtype == "bfloat16"
