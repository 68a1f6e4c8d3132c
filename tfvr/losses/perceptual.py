"""pix2pixHD / vid2vid's VGG19 perceptual loss from *local* Keras VGG19 weights (never downloaded)."""

from __future__ import annotations

import os

import tensorflow as tf

from tfvr.errors import ConfigError

__all__ = ["VGGLoss"]


class VGGLoss:
    """pix2pixHD's `VGGLoss`: Σ_l w_l · mean|φ_l(fake) − stop_grad(φ_l(real))| over VGG19's relu1_1 … relu5_1
    (weights 1/32 … 1), images in [−1, 1] (Keras' VGG19 preprocessing on (x + 1)·127.5).

    `path`: Keras VGG19 `include_top=False` weights (.h5 / .weights.h5); a missing file is a `ConfigError` naming
    `field` (the config field that gave the path).
    """

    LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, path: str, field: str = "loss.vgg_weights"):
        import keras

        if not os.path.isfile(path):
            raise ConfigError(f"{field}: {path}: no such file (VGG19 weights are never downloaded)")
        base = keras.applications.VGG19(include_top=False, weights=None)
        base.load_weights(path)
        base.trainable = False
        self.net = keras.Model(base.input, [base.get_layer(n).output for n in self.LAYERS])

    def __call__(self, fake, real):
        from keras.applications.vgg19 import preprocess_input

        fx = self.net(preprocess_input((tf.cast(fake, tf.float32) + 1.0) * 127.5))
        rx = self.net(preprocess_input((tf.cast(real, tf.float32) + 1.0) * 127.5))
        return tf.add_n([w * tf.reduce_mean(tf.abs(f - tf.stop_gradient(r))) for w, f, r in zip(self.WEIGHTS, fx, rx)])
