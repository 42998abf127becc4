"""Building blocks shared by the networks: convolutions padded the way PyTorch pads them.

TensorFlow's ``'same'`` padding at stride 2 puts the extra row/column at the bottom/right only,
while PyTorch pads ``p`` pixels on every side. Every convolution here pads explicitly (zeros or
reflection) and then convolves with ``'valid'``, so feature maps line up with the original's.
"""

import keras
import tensorflow as tf


def pad_spatial(x: tf.Tensor, pad: int, mode: str = "CONSTANT", by_slices: bool = False
                ) -> tf.Tensor:
    """Pads ``pad`` pixels on each side of the two spatial axes of ``x`` ``[B, H, W, C]``.

    Args:
        x: ``[B, H, W, C]``.
        pad: pixels on every side.
        mode: ``"CONSTANT"`` (zeros) or ``"REFLECT"``.
        by_slices: build reflection padding with :func:`reflect_pad_by_slices` (the same values).
    """
    if pad == 0:
        return x
    if mode.upper() == "REFLECT" and by_slices:
        return reflect_pad_by_slices(x, pad)
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=mode)


def reflect_pad_by_slices(x: tf.Tensor, pad: int) -> tf.Tensor:
    """Reflection padding of ``[B, H, W, C]`` built from slices and concatenations: the same
    values as ``tf.pad(..., "REFLECT")``. Forward, it is faster than TensorFlow's MirrorPad on
    the CPU (about 1.7x over the decoder's paddings at batch 1, 192x640, when measured in
    2026-12), and its ops are ones TFLite's XNNPACK delegate runs (its MIRROR_PAD kernel is not
    delegated and is slow at full resolution). Its gradient, a zero-padded copy per slice, is
    slower than MirrorPad's: training keeps MirrorPad (see :class:`PaddedConv2D`)."""
    rows = [x[:, i:i + 1] for i in range(pad, 0, -1)] + [x] + \
        [x[:, -i - 1:-i] for i in range(1, pad + 1)]
    x = tf.concat(rows, axis=1)
    columns = [x[:, :, i:i + 1] for i in range(pad, 0, -1)] + [x] + \
        [x[:, :, -i - 1:-i] for i in range(1, pad + 1)]
    return tf.concat(columns, axis=2)


def torch_default_kernel_initializer() -> keras.initializers.Initializer:
    """PyTorch's default convolution weights: uniform in +-1/sqrt(fan_in)."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


@keras.saving.register_keras_serializable(package="monodepth_tf")
class PaddedConv2D(keras.layers.Conv2D):
    """A 2-D convolution with PyTorch's symmetric padding and PyTorch's default initialization.

    Unless initializers are given, weights and bias are drawn as PyTorch draws them for a fresh
    ``nn.Conv2d``: uniform in +-1/sqrt(fan_in) (Keras' Glorot default is ~2.4x wider for the
    decoders' last layers, which starts a network from scratch at saturated disparities).

    Args:
        filters: output channels.
        kernel_size: square kernel size.
        strides: stride in both directions.
        pad: pixels padded on every side before a ``'valid'`` convolution.
        pad_mode: ``"CONSTANT"`` (zeros) or ``"REFLECT"``.
        **kwargs: passed to ``keras.layers.Conv2D`` (``use_bias``, ``name``, ...).
    """

    def __init__(self, filters, kernel_size, strides=1, pad=0, pad_mode="CONSTANT", **kwargs):
        kwargs.pop("padding", None)
        kwargs.setdefault("kernel_initializer", torch_default_kernel_initializer())
        self._torch_bias = "bias_initializer" not in kwargs
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)
        self.pad = int(pad)
        self.pad_mode = pad_mode.upper()

    def build(self, input_shape):
        if self._torch_bias:  # the bound depends on the input channels, known only now
            bound = 1.0 / float(input_shape[-1] * self.kernel_size[0] * self.kernel_size[1]) ** 0.5
            self.bias_initializer = keras.initializers.RandomUniform(-bound, bound)
        super().build(input_shape)

    def call(self, inputs, training=None):
        # Reflection padding: MirrorPad when training (its gradient, MirrorPadGrad, is cheaper
        # than the slices'), slices and concatenations otherwise; the same values either way.
        padded = pad_spatial(inputs, self.pad, self.pad_mode, by_slices=not training)
        if training and self._depthwise_form(padded):
            outputs = tf.reduce_sum(
                tf.nn.depthwise_conv2d(padded, self.kernel, [1, 1, 1, 1], "VALID"),
                axis=-1, keepdims=True)
            if self.use_bias:
                outputs = outputs + self.bias
            return self.activation(outputs) if self.activation is not None else outputs
        return super().call(padded)

    def _depthwise_form(self, inputs) -> bool:
        """Whether training computes this convolution as a depthwise convolution summed over
        the input channels: for a single output channel (the disparity heads), where that is
        about twice as fast forward and backward on the CPU as oneDNN's convolution. The sums
        are the same up to their order. Inference keeps the plain convolution, the one op that
        TFLite and the int8 export expect; float16 and bfloat16 keep it too (its sums
        accumulate in float32)."""
        return (self.filters == 1 and tuple(self.strides) == (1, 1)
                and tuple(self.dilation_rate) == (1, 1) and self.groups == 1
                and inputs.dtype in (tf.float32, tf.float64))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda n: None if n is None else n + 2 * self.pad  # noqa: E731
        return super().compute_output_shape((b, grow(h), grow(w), c))

    def get_config(self):
        config = super().get_config()
        config.update(pad=self.pad, pad_mode=self.pad_mode)
        config.pop("padding", None)
        return config


def conv3x3_reflect(filters: int, name: str, use_bias: bool = True, **kwargs) -> PaddedConv2D:
    """The decoders' 3x3 convolution: reflection padding of 1, then a 'valid' convolution
    (``kwargs``: more ``PaddedConv2D`` arguments, e.g. ``dtype``)."""
    return PaddedConv2D(filters, 3, pad=1, pad_mode="REFLECT", use_bias=use_bias, name=name,
                        **kwargs)


# The dtype of the layers whose outputs leave the networks (the disparity heads, the pose
# outputs): float32 under mixed precision too. In bfloat16 a sigmoid disparity near 0.03 would
# move in steps of 0.4%, and so would every depth and translation the loss warps with.
HEAD_DTYPE = "float32"


def upsample_nearest(x: tf.Tensor) -> tf.Tensor:
    """Nearest-neighbour x2 upsampling: ``[B, H, W, C] -> [B, 2H, 2W, C]``."""
    x = tf.repeat(x, 2, axis=1)
    return tf.repeat(x, 2, axis=2)


def check_divisible(images: tf.Tensor, multiple: int = 32, what: str = "input images") -> None:
    """Raises ValueError when the static height or width of ``[B, H, W, C]`` is not a multiple."""
    height, width = images.shape[1], images.shape[2]
    for name, size in (("height", height), ("width", width)):
        if size is not None and size % multiple:
            raise ValueError(
                f"{what} have {name} {size}, which is not divisible by {multiple}: "
                f"the networks need sizes that are multiples of {multiple} (e.g. 192x640)"
            )


def build(model: keras.Model, channels: int, height: int = 64, width: int = 64) -> keras.Model:
    """Creates a model's variables by calling it once on zeros ``[1, height, width, channels]``."""
    model(tf.zeros([1, height, width, channels]), training=False)
    return model
