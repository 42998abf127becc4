"""Building blocks shared by the networks: convolutions padded the way PyTorch pads them.

TensorFlow's ``'same'`` padding at stride 2 puts the extra row/column at the bottom/right only,
while PyTorch pads ``p`` pixels on every side. Every convolution here pads explicitly (zeros or
reflection) and then convolves with ``'valid'``, so feature maps line up with the original's.
"""

import keras
import tensorflow as tf

from monodepth_tf.cpu import cpu_flags


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
        if self._same_padding_form(inputs, training):
            outputs = tf.nn.conv2d(inputs, tf.convert_to_tensor(self.kernel), 1, "SAME")
        else:
            # Reflection padding: MirrorPad when training (its gradient, MirrorPadGrad, is
            # cheaper than the slices'), slices and concatenations otherwise; the same values.
            padded = pad_spatial(inputs, self.pad, self.pad_mode, by_slices=not training)
            if training and self._depthwise_form(padded):
                outputs = tf.reduce_sum(
                    tf.nn.depthwise_conv2d(padded, self.kernel, [1, 1, 1, 1], "VALID"),
                    axis=-1, keepdims=True)
            elif training and self._cpu_gradient_form(padded, 0):
                outputs = conv2d_with_cpu_gradients(padded, tf.convert_to_tensor(self.kernel))
            else:
                return super().call(padded)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def _same_padding_form(self, inputs, training) -> bool:
        """Whether this convolution is TensorFlow's ``"SAME"`` convolution: zero padding of
        ``(k - 1) / 2`` around an odd kernel at stride 1 is exactly what ``"SAME"`` pads, and
        the kernels then pad inside the convolution, with no Pad op before it and no Slice in
        its gradient (the encoders' 3x3 convolutions; measured on an Intel Xeon with AVX-512,
        batch 4, forward and both gradients: 1-20% faster than padding first). The sums are the
        same up to their order. Training on a CPU that differentiates convolutions with
        :func:`conv2d_with_cpu_gradients` keeps the padded form that function takes."""
        kernel = tuple(self.kernel_size)
        return (self.pad_mode == "CONSTANT" and tuple(self.strides) == (1, 1)
                and tuple(self.dilation_rate) == (1, 1) and self.groups == 1
                and kernel[0] == kernel[1] and kernel[0] % 2 == 1
                and self.pad > 0 and self.pad == (kernel[0] - 1) // 2
                and not (training and self._cpu_gradient_form(inputs, self.pad)))

    def _cpu_gradient_form(self, inputs, pad: int) -> bool:
        """Whether training differentiates this convolution of ``inputs`` padded by ``pad``
        pixels with :func:`conv2d_with_cpu_gradients`: float32, stride 1, static padded size of
        at least :data:`CPU_GRADIENT_MIN_PIXELS`, and no GPU in the process (cuDNN's gradients
        are better there). The forward pass is the same convolution op either way."""
        height, width = inputs.shape[1], inputs.shape[2]
        return (tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
                and self.groups == 1 and inputs.dtype == tf.float32
                and use_cpu_convolution_gradients()
                and height is not None and width is not None
                and (height + 2 * pad) * (width + 2 * pad) >= CPU_GRADIENT_MIN_PIXELS)

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


# The smallest input map (height x width, padding included) whose convolution is differentiated
# with conv2d_with_cpu_gradients. Measured on a Zen 3 CPU with oneDNN (batch 4): the kernel
# gradient took 0.3-0.6x of oneDNN's on 26x82 to 98x322 maps, and about the same on 14x42 and
# 8x22 maps with 256-512 channels; the input gradient the same time as oneDNN's.
CPU_GRADIENT_MIN_PIXELS = 1024


# The CPU flag of AVX-512's byte and word instructions (oneDNN's "avx512_core").
AVX512_FLAG = "avx512bw"


def use_cpu_convolution_gradients() -> bool:
    """True when the process has no GPU, grappler is on and the CPU has no AVX-512 (or its
    flags cannot be read): training's convolutions then use :func:`conv2d_with_cpu_gradients`
    (see :class:`PaddedConv2D`).

    Without grappler (``--deterministic`` turns it off) the per-tap slices and products are
    left as written and oneDNN's gradients are faster (Zen 3, mono_stereo, batch 4: a
    192x640 step 5.79 s against 5.43, a 64x192 step 0.88 s against 0.61), and they take less
    time to trace. With AVX-512 oneDNN's own gradients are as fast or faster (an Intel Xeon with
    AVX-512, batch 4, 192x640, float32, ``benchmarks/train_step.py --conv_gradients both``:
    stereo 1.09-1.20 s per step against 1.31-1.32, mono 2.39 s both); the per-tap form was
    measured faster only on an AVX2 CPU (Zen 3)."""
    grappler_off = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer")
    return (not tf.config.list_logical_devices("GPU") and not grappler_off
            and AVX512_FLAG not in (cpu_flags() or ()))


@tf.custom_gradient
def conv2d_with_cpu_gradients(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """``tf.nn.conv2d(x, kernel, 1, "VALID")``, differentiated with faster CPU kernels.

    ``x`` is ``[B, H, W, C]`` with static ``H`` and ``W``, ``kernel`` ``[kh, kw, C, O]``. The
    forward pass is the same op. On an AVX2 CPU (Zen 3) TensorFlow's kernel gradient of a
    convolution took 2-5x as long as the forward pass (oneDNN's, NHWC; Eigen's 2-3x), and
    without oneDNN the input gradient too, so both are rewritten as what runs at about the
    forward pass's speed:

    - the input gradient is a forward convolution of the gradient ``dy`` zero-padded by
      ``k - 1`` with the kernel flipped in space and its channel axes swapped;
    - the kernel gradient, ``sum_{b,h,w} x[b, h+i, w+j, :] dy[b, h, w, :]`` for each tap
      ``(i, j)``, is one matrix product per tap: ``x`` and ``dy`` (zero-padded to ``x``'s
      size) flattened to ``[B*H*W, C]`` and ``[B*H*W, O]``, ``x``'s rows shifted by
      ``i * W + j``. The padding's zeros cancel every product that would wrap across a row or
      an image, and the shifted views are slices of the first axis (which TensorFlow takes
      without a copy when they start on a 64-byte boundary).

    Both are the same sums in another order (within 1e-5 relative of TensorFlow's gradients:
    tests/test_networks.py checks them against float64).
    """
    outputs = tf.nn.conv2d(x, kernel, 1, "VALID")

    def gradient(dy):
        kh, kw, channels, filters = kernel.shape
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        dx = tf.nn.conv2d(tf.pad(dy, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]),
                          flipped, 1, "VALID")
        height, width = x.shape[1], x.shape[2]
        rows = tf.shape(x)[0] * height * width
        x_rows = tf.reshape(x, [-1, channels])
        dy_rows = tf.reshape(tf.pad(dy, [[0, 0], [0, kh - 1], [0, kw - 1], [0, 0]]),
                             [-1, filters])
        used = rows - ((kh - 1) * width + kw - 1)
        dy_rows = dy_rows[:used]
        taps = [tf.matmul(x_rows[i * width + j:i * width + j + used], dy_rows, transpose_a=True)
                for i in range(kh) for j in range(kw)]
        return dx, tf.reshape(tf.stack(taps), [kh, kw, channels, filters])

    return outputs, gradient


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
