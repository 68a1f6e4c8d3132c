"""Exponential moving average of weights.

`shadow <- decay * shadow + (1 - decay) * weight` after every optimizer step (BasicSR's `model_ema` with a
fixed decay, e.g. 0.999), on the trainable variables of the chosen models. The shadow variables are created in
the strategy scope (mirrored) and saved in checkpoints. `swapped()` puts the EMA values into the model for
evaluation / export and puts the training values back afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import tensorflow as tf

__all__ = ["EMA"]


class EMA(tf.Module):
    def __init__(self, variables: Sequence[tf.Variable], decay: float, name: str = "ema"):
        super().__init__(name=name)
        self.decay = float(decay)
        # Not tracked (the models' own checkpoint entries hold them): bypass tf.Module's attribute tracking.
        object.__setattr__(self, "_vars", list(variables))
        # Shadow copies start equal to the weights (created inside the caller's strategy scope).
        self.shadow = [tf.Variable(v.read_value() if hasattr(v, "read_value") else v, trainable=False,
                                   name=f"ema_{i}") for i, v in enumerate(self._vars)]

    def update(self) -> None:
        """Call in cross-replica context (after strategy.run) or eagerly."""
        d = tf.constant(self.decay, tf.float32)
        for s, v in zip(self.shadow, self._vars):
            val = tf.cast(tf.convert_to_tensor(v), s.dtype)
            s.assign(tf.cast(d, s.dtype) * s + tf.cast(1.0 - d, s.dtype) * val)

    @contextlib.contextmanager
    def swapped(self):
        backup = [tf.identity(tf.convert_to_tensor(v)) for v in self._vars]
        try:
            for s, v in zip(self.shadow, self._vars):
                v.assign(tf.cast(tf.convert_to_tensor(s), v.dtype))
            yield
        finally:
            for b, v in zip(backup, self._vars):
                v.assign(b)

    def copy_to_model(self) -> None:
        """Puts the EMA values into the model for good (export from a finished run)."""
        for s, v in zip(self.shadow, self._vars):
            v.assign(tf.cast(tf.convert_to_tensor(s), v.dtype))
