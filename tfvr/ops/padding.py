"""`pad_to_multiple`: the one bottom/right padding every model and serving graph uses (dynamic shapes, any dtype).

Modes (they differ only where the pad is longer than the axis minus one):
    "reflect"       mirror without repeating the edge (numpy "reflect"); beyond one reflection the edge pixel
                    repeats (serving graphs: a tiny frame still pads).
    "reflect_fold"  mirror without repeating the edge, folding back and forth for long pads (EDVR's `pad_mode`
                    "reflect").
    "replicate"     repeat the edge ("edge" is the same).
    "zeros"         zero padding.
"""

from __future__ import annotations

import tensorflow as tf

MODES = ("reflect", "reflect_fold", "replicate", "edge", "zeros")


def _indices(n, target, mode):
    i = tf.range(target)
    if mode == "reflect":
        i = tf.where(i < n, i, 2 * (n - 1) - i)
    elif mode == "reflect_fold":
        period = tf.maximum(2 * (n - 1), 1)
        i = i % period
        i = tf.where(i >= n, period - i, i)
    return tf.clip_by_value(i, 0, n - 1)


def pad_to_multiple(x, multiple: int, axes=(1, 2), mode: str = "reflect"):
    """Pads `x` at the end of each axis in `axes` so its length becomes a multiple of `multiple`; crop the result
    with `[:h, :w]` afterwards. A gather (any dtype), so it works with unknown sizes in graph mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    multiple = int(multiple)
    if multiple <= 1:
        return x
    for ax in axes:
        n = tf.shape(x)[ax]
        target = (n + multiple - 1) // multiple * multiple
        if mode == "zeros":
            pads = [[0, 0]] * len(x.shape)
            pads[ax] = [0, target - n]
            x = tf.pad(x, pads)
        else:
            x = tf.gather(x, _indices(n, target, mode), axis=ax)
    return x
