"""monodepth_tf: self-supervised monocular depth estimation (Monodepth2) in TensorFlow/Keras."""

__version__ = "0.1.0"
