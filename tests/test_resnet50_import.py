"""A torchvision-layout ResNet-50 state dict (made with NumPy, written as a PyTorch file) loaded
into the Keras encoder: every variable holds the right tensor, and the encoder computes what a
float64 NumPy ResNet-50 computes with those tensors."""

from typing import Dict, List

import numpy as np
import pytest

from monodepth_tf.networks.resnet_encoder import IMAGE_MEAN, IMAGE_STD, ResnetEncoder
from monodepth_tf.weights.torch_import import load_imagenet_resnet
from tests.helpers import write_state_dict

BLOCKS = (3, 4, 6, 3)  # ResNet-50's bottleneck blocks per stage
PLANES = (64, 128, 256, 512)
BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d's


def block_prefixes() -> List[str]:
    return [f"layer{s + 1}.{i}" for s, count in enumerate(BLOCKS) for i in range(count)]


def synthetic_resnet50(seed: int = 0) -> Dict[str, np.ndarray]:
    """torchvision's ResNet-50 keys and shapes (``[O, I, kh, kw]`` kernels), random values:
    He-scaled kernels, BatchNorm weights in [0.5, 1.5] (in [0.1, 0.3] for a block's last, so
    sixteen residual additions stay of order one), biases and running means near 0, running
    variances in [0.5, 2]; plus the classifier ``fc``, which the encoder has no use for."""
    rng = np.random.default_rng(seed)
    state: Dict[str, np.ndarray] = {}

    def conv(key, out_channels, in_channels, size):
        fan_in = in_channels * size * size
        state[key] = rng.normal(0, np.sqrt(2 / fan_in), (out_channels, in_channels, size, size))

    def bn(prefix, channels, gamma=(0.5, 1.5)):
        state[f"{prefix}.weight"] = rng.uniform(*gamma, channels)
        state[f"{prefix}.bias"] = rng.normal(0, 0.1, channels)
        state[f"{prefix}.running_mean"] = rng.normal(0, 0.1, channels)
        state[f"{prefix}.running_var"] = rng.uniform(0.5, 2.0, channels)

    conv("conv1.weight", 64, 3, 7)
    bn("bn1", 64)
    in_channels = 64
    for stage, (count, planes) in enumerate(zip(BLOCKS, PLANES)):
        for i in range(count):
            prefix = f"layer{stage + 1}.{i}"
            conv(f"{prefix}.conv1.weight", planes, in_channels, 1)
            conv(f"{prefix}.conv2.weight", planes, planes, 3)
            conv(f"{prefix}.conv3.weight", planes * 4, planes, 1)
            for k, (channels, gamma) in enumerate(((planes, (0.5, 1.5)), (planes, (0.5, 1.5)),
                                                   (planes * 4, (0.1, 0.3)))):
                bn(f"{prefix}.bn{k + 1}", channels, gamma)
            if i == 0:
                conv(f"{prefix}.downsample.0.weight", planes * 4, in_channels, 1)
                bn(f"{prefix}.downsample.1", planes * 4)
            in_channels = planes * 4
    state["fc.weight"] = rng.normal(0, 0.01, (1000, 2048))
    state["fc.bias"] = rng.normal(0, 0.01, 1000)
    return {key: value.astype(np.float32) for key, value in state.items()}


# ----------------------------------------------------------------------------------------------
# Which tensor each Keras variable should hold, from the variable's path alone.

KERAS_TO_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                  "moving_variance": "running_var"}


def torch_key(keras_path: str) -> str:
    """``resnet_encoder/layer2_0/down_conv/kernel`` -> ``layer2.0.downsample.0.weight``."""
    *layers, variable = keras_path.split("/")[1:]
    module = ".".join(layers).replace("_", ".")
    module = module.replace("down.conv", "downsample.0").replace("down.bn", "downsample.1")
    return f"{module}.{KERAS_TO_TORCH.get(variable, 'weight')}"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The state dict and a ResNet-50 encoder loaded from it through a ``.pth`` file."""
    state = synthetic_resnet50()
    path = tmp_path_factory.mktemp("resnet50") / "resnet50-synthetic.pth"
    write_state_dict(path, state)
    encoder = ResnetEncoder(50)
    encoder(np.zeros((1, 64, 64, 3), np.float32))
    load_imagenet_resnet(encoder, path)
    return state, encoder


def test_every_variable_holds_its_tensor_in_keras_layout(loaded):
    state, encoder = loaded
    seen = set()
    for variable in encoder.variables:
        key = torch_key(variable.path)
        expected = state[key]
        if expected.ndim == 4:  # [O, I, kh, kw] -> [kh, kw, I, O]
            expected = np.transpose(expected, (2, 3, 1, 0))
        np.testing.assert_array_equal(variable.numpy(), expected, err_msg=variable.path)
        seen.add(key)
    # 53 convolutions and 53 BatchNorms (4 tensors each): every tensor but fc's, once
    assert len(encoder.variables) == 53 + 53 * 4
    assert seen == set(state) - {"fc.weight", "fc.bias"}


def test_kernel_layout_on_hand_picked_entries(loaded):
    """conv1 is [64, 3, 7, 7] in PyTorch and (7, 7, 3, 64) in Keras: out channel 5, input
    channel 2 (blue), row 1, column 6."""
    state, encoder = loaded
    kernel = encoder.conv1.kernel.numpy()
    assert kernel.shape == (7, 7, 3, 64)
    assert kernel[1, 6, 2, 5] == state["conv1.weight"][5, 2, 1, 6]
    down = encoder.stages[1][0].down_conv.kernel.numpy()  # layer2.0.downsample.0: [512,256,1,1]
    assert down.shape == (1, 1, 256, 512)
    assert down[0, 0, 17, 300] == state["layer2.0.downsample.0.weight"][300, 17, 0, 0]
    bn = encoder.stages[3][2].bns[2]  # layer4.2.bn3
    np.testing.assert_array_equal(bn.moving_variance.numpy(), state["layer4.2.bn3.running_var"])


# ----------------------------------------------------------------------------------------------
# The same network in float64 NumPy, with PyTorch's conventions (NCHW kernels, symmetric
# padding, BatchNorm with running statistics).

def conv2d(x: np.ndarray, weight: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """``x [H, W, I]``, ``weight [O, I, kh, kw]`` -> ``[H', W', O]`` (cross-correlation)."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    size = weight.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(0, 1))
    windows = windows[::stride, ::stride]  # [H', W', I, kh, kw]
    return np.einsum("hwikl,oikl->hwo", windows, weight.astype(np.float64))


def batch_norm(x: np.ndarray, state: Dict[str, np.ndarray], prefix: str) -> np.ndarray:
    mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    scale = state[f"{prefix}.weight"] / np.sqrt(var.astype(np.float64) + BN_EPSILON)
    return (x - mean) * scale + state[f"{prefix}.bias"]


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def max_pool_3x3_stride_2(x: np.ndarray) -> np.ndarray:
    """3x3 max-pool, stride 2, padding 1 with -inf (PyTorch's)."""
    x = np.pad(x, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(0, 1))[::2, ::2]
    return windows.max(axis=(-2, -1))


def bottleneck(x: np.ndarray, state: Dict[str, np.ndarray], prefix: str,
               stride: int) -> np.ndarray:
    """torchvision's Bottleneck (stride on the 3x3 convolution)."""
    out = relu(batch_norm(conv2d(x, state[f"{prefix}.conv1.weight"]), state, f"{prefix}.bn1"))
    out = relu(batch_norm(conv2d(out, state[f"{prefix}.conv2.weight"], stride, 1), state,
                          f"{prefix}.bn2"))
    out = batch_norm(conv2d(out, state[f"{prefix}.conv3.weight"]), state, f"{prefix}.bn3")
    shortcut = x
    if f"{prefix}.downsample.0.weight" in state:
        shortcut = batch_norm(conv2d(x, state[f"{prefix}.downsample.0.weight"], stride),
                              state, f"{prefix}.downsample.1")
    return relu(out + shortcut)


def numpy_resnet50(image: np.ndarray, state: Dict[str, np.ndarray]) -> List[np.ndarray]:
    """The five feature maps of one ``[H, W, 3]`` image in [0, 1], in float64."""
    x = (image.astype(np.float64) - IMAGE_MEAN) / IMAGE_STD
    x = relu(batch_norm(conv2d(x, state["conv1.weight"], 2, 3), state, "bn1"))
    features = [x]
    x = max_pool_3x3_stride_2(x)
    for stage, count in enumerate(BLOCKS):
        for i in range(count):
            x = bottleneck(x, state, f"layer{stage + 1}.{i}", 2 if stage > 0 and i == 0 else 1)
        features.append(x)
    return features


def test_forward_pass_equals_a_float64_numpy_resnet50(loaded):
    """Inference on a 64x96 image: each of the five feature maps within 1e-4 of the float64
    result, relative to the map's largest value (float32 rounding over up to 50 layers)."""
    state, encoder = loaded
    image = np.random.default_rng(1).random((64, 96, 3))
    ours = [f.numpy()[0] for f in encoder(image[None].astype(np.float32), training=False)]
    expected = numpy_resnet50(image.astype(np.float32), state)
    assert [f.shape for f in ours] == [(32, 48, 64), (16, 24, 256), (8, 12, 512),
                                       (4, 6, 1024), (2, 3, 2048)]
    for level, (a, b) in enumerate(zip(ours, expected)):
        scale = np.abs(b).max()
        assert 0.5 < scale < 1e3, (level, scale)  # activations neither vanish nor blow up
        assert np.abs(a - b).max() <= 1e-4 * scale, (level, np.abs(a - b).max() / scale)
