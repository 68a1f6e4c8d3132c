"""In-graph input checks for serving signatures: a wrong rank, frame count, channel count or an empty batch
fails with a message that names the expected input (``frames: expected uint8 [B, 5, H, W, 3] ...``) instead of
a raw graph error from deep inside the model ("Input to reshape is a tensor with 3072 values ...").

`check_input(x, dims, name)` is called at the top of a serving function (`RestorationModule`, STTN-I's and
vid2vid's export modules). Only stock ops (Shape, comparisons, Assert), so the SavedModel still loads in TF
Serving and in a process without tfvr.

Why the checks read the runtime shape vector: the signature's static shape (e.g. ``[None, 5, None, None, 3]``) is
not enforced by TF Serving, and graph optimisation folds ``tf.rank`` / ``tf.size`` of a tensor whose static rank
is known into constants - the rank is therefore counted from the elements of ``tf.shape(x)`` (which only exist at
run time), and each later check runs under a control dependency on the previous one.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import tensorflow as tf

Dim = Union[int, str, None]


def describe(dims: Sequence[Dim], dtype: tf.DType) -> str:
    """``uint8 [B, 5, H, W, 3]`` for dims ("B", 5, "H", "W", 3)."""
    return f"{tf.as_dtype(dtype).name} [{', '.join(str(d) for d in dims)}]"


def check_input(x, dims: Sequence[Dim], name: str, nonempty: Optional[Sequence[int]] = None):
    """Returns `x` behind runtime asserts that its rank is len(dims), that every int entry of `dims` matches, and
    that the axes in `nonempty` (default: every axis given by a name, e.g. "B", "H", "W") are not 0.

    A scalar (dims == ()) is only checked for its rank."""
    x = tf.convert_to_tensor(x)
    expected = f"{name}: expected {describe(dims, x.dtype)}"
    shape = tf.shape(x, out_type=tf.int32)
    rank = tf.reduce_sum(tf.cast(tf.greater_equal(shape, 0), tf.int32))  # not folded (see the docstring)
    checks = [tf.debugging.Assert(tf.equal(rank, len(dims)), [expected + "; got rank", rank, "shape", shape])]
    if nonempty is None:
        nonempty = [i for i, d in enumerate(dims) if isinstance(d, str)]
    with tf.control_dependencies(checks):
        shape = tf.identity(shape)
        for i, d in enumerate(dims):
            if isinstance(d, int) and not isinstance(d, bool):
                checks.append(tf.debugging.Assert(tf.equal(shape[i], d),
                                                  [f"{expected}; got shape", shape]))
        for i in nonempty:
            label = dims[i] if isinstance(dims[i], str) else f"axis {i}"
            what = "an empty batch" if label == "B" else f"{label} = 0"
            checks.append(tf.debugging.Assert(tf.greater(shape[i], 0),
                                              [f"{expected} with {label} >= 1; got {what}, shape", shape]))
    with tf.control_dependencies(checks):
        return tf.identity(x)
