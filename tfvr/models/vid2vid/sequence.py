"""vid2vid's sequential generation: the training rollout inside the graph and the eager whole-video generation.

A vid2vid generator makes frame t from the labels t−n+1..t and its own outputs t−n+1..t−1 (n = `n_frames_G`).
Frame 0 has no previous outputs: it is generated from its labels alone (the image encoder is skipped and only the
hallucinated image is used, vid2vid's `no_first_img`); before frame 0, labels repeat frame 0 and previous outputs
are zeros.

- `generate_sequence(gen, labels, ...)`: a training clip, unrolled in the graph, with truncated BPTT.
- `Synthesizer`: whole videos, one traced generator call per frame (evaluation, image summaries, `tfvr
  synthesize`'s reference).
- `label_windows`, `all_label_windows`, `merge_frames`: the tensor plumbing both use.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["label_windows", "all_label_windows", "merge_frames", "generate_sequence", "Synthesizer"]


def label_windows(labels, t: int, n_frames_G: int):
    """Labels t−(n−1)..t of a clip [B, T, ...] (indices before 0 repeat frame 0) → [B, n, ...]."""
    idx = [max(t - k, 0) for k in range(n_frames_G - 1, -1, -1)]
    return tf.gather(labels, idx, axis=1)


def merge_frames(x):
    """[B, T, ...] → [B·T, ...]."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


def all_label_windows(labels, n_frames_G: int):
    """The label window of every frame of a clip [B, T, ...], frames folded into the batch → [B·T, n, ...]
    (what a per-frame generator, fed no previous frames, takes in one call)."""
    return merge_frames(tf.stack([label_windows(labels, t, n_frames_G) for t in range(labels.shape[1])], axis=1))


_OUT_KEYS = ("img_final", "img_raw", "flow", "weight")


def recomputed_call(gen, labels, prev, instances, training=None, chain=None, **kw):
    """`gen(labels, prev, instances, training=..., **kw)` with gradient checkpointing: the forward keeps none of
    the generator's activations for backprop, the backward pass runs the forward again (without updating
    BatchNorm / InstanceNorm running statistics a second time, `torch_nn.frozen_running_stats`) and
    differentiates that. Same outputs, same gradients (the recomputation uses the same batch statistics); costs
    one more generator forward per call. `sequence.recompute_frames`.

    `chain`: a list shared by the calls of one clip. Each backward recomputation waits (control dependency) for
    the gradients of the one traced before it, so the frames are recomputed one after the other; without it the
    executor may run them all at once (the frames' gradients do not depend on each other with bptt_frames=1)
    and hold every frame's activations again."""
    from tfvr.layers.torch_nn import frozen_running_stats

    has_prev = prev is not None
    x = prev if has_prev else tf.zeros([], tf.float32)  # custom_gradient needs a tensor input

    def run(p):
        return gen(labels, p if has_prev else None, instances, training=training, **kw)

    keys = []

    @tf.custom_gradient
    def fwd(p):
        out = run(p)
        keys.extend(k for k in _OUT_KEYS if out.get(k) is not None)
        flat = [tf.identity(out[k]) for k in keys]

        def grad(*dys, variables=None):
            variables = list(variables or [])
            deps = chain[-1:] if chain is not None else []
            with tf.control_dependencies(deps):
                q = tf.identity(p)
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(q)
                    for v in variables:
                        tape.watch(v)
                    with frozen_running_stats():
                        again = run(q)
                    ys = [again[k] for k in keys]
                gs = tape.gradient(ys, [q, *variables], output_gradients=list(dys),
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
            if chain is not None:
                chain.append(tf.group(*[g for g in gs if g is not None]))
            return gs[0], gs[1:]

        return flat, grad

    flat = fwd(x)
    out = dict.fromkeys(_OUT_KEYS)
    out.update(zip(keys, flat))
    return out


def generate_sequence(gen, labels, instances=None, bptt_frames: int = 1, training=None, fix_coarse: bool = False,
                      recompute: bool = False):
    """Generates a clip frame by frame inside the graph (the T frames are unrolled: T is static).

    labels: int [B, T, H, W]; instances: int [B, T, H, W] or None. Frame 0 is generated from its labels alone
    (no previous frames: hallucinated image only); frame t from the labels t−n+1..t (indices before 0 repeat
    frame 0) and the outputs t−n+1..t−1 (zeros before frame 0). A previous output keeps its gradient only when it
    lies in the same window of `bptt_frames` frames as t (truncated BPTT).
    Returns {"img_final", "img_raw": [B, T, H, W, 3], "flow": [B, T − 1, H, W, 2], "weight": [B, T − 1, H, W, 1]}
    (flow and weight of frames 1 … T − 1; both None without flow). `fix_coarse`: the generator's coarse scales run
    outside the gradient (`Vid2VidGenerator.call`; `fix_global_steps`). `recompute`: every frame's generator call
    through `recomputed_call` (gradient checkpointing, `sequence.recompute_frames`).

    Unrolled rather than a `tf.while_loop`: synchronised BatchNorm all-reduces inside the generator, and
    tf.distribute cannot synchronise replicas inside a while loop's body.
    """
    n = gen.n_frames_G
    outs = []
    chain: list = []  # recompute: the frames' backward recomputations run one after the other
    for t in range(labels.shape[1]):
        prev = None
        if t > 0:
            prev = []
            for k in range(n - 1, 0, -1):
                j = t - k
                if j < 0:
                    prev.append(tf.zeros_like(outs[0]["img_final"]))
                elif j // bptt_frames == t // bptt_frames:
                    prev.append(outs[j]["img_final"])
                else:
                    prev.append(tf.stop_gradient(outs[j]["img_final"]))
            prev = tf.stack(prev, axis=1)
        ins = None if instances is None else label_windows(instances, t, n)
        kw = dict(fix_coarse=True) if fix_coarse else {}
        call = (lambda *a, **k: recomputed_call(gen, *a, chain=chain, **k)) if recompute else gen  # noqa: E731
        outs.append(call(label_windows(labels, t, n), prev, ins, training=training, **kw))
    result = {k: tf.stack([tf.cast(o[k], tf.float32) for o in outs], axis=1) for k in ("img_final", "img_raw")}
    for k in ("flow", "weight"):
        result[k] = None if gen.no_flow or len(outs) < 2 else tf.stack([o[k] for o in outs[1:]], axis=1)
    return result


class Synthesizer:
    """Generates whole videos with a generator: an eager loop over frames around one traced step function per
    generator and mode, kept for the generator's lifetime in this object. The recurrent step takes the previous
    frames and a scalar bool `first` (the generator's tensor `first_frame` flag: zero previous frames, the image
    encoder's features multiplied by 0, the raw image used), so the first frame and the later ones share one
    trace; the per-frame mode (`recurrent=False`, a generator that may have no image encoder) never passes any."""

    def __init__(self):
        self._step_fns = {}

    def _step_fn(self, gen, recurrent: bool):
        key = (id(gen), recurrent)
        if key not in self._step_fns:
            if recurrent:
                fn = tf.function(lambda lab, prev, ins, first: gen(lab, prev, ins, training=False, first_frame=first),
                                 autograph=False)
            else:
                fn = tf.function(lambda lab, ins: gen(lab, None, ins, training=False), autograph=False)
            self._step_fns[key] = fn
        return self._step_fns[key]

    def __call__(self, gen, labels, instances=None, recurrent: bool = True) -> np.ndarray:
        """uint8 [T, H, W, 3] from labels int [T, H, W] (and instances [T, H, W]).

        `recurrent=False` generates every frame as a first frame (the per-frame baseline).
        """
        step = self._step_fn(gen, bool(recurrent))
        labels = tf.convert_to_tensor(labels, tf.int32)[None]
        instances = None if instances is None else tf.convert_to_tensor(instances, tf.int32)[None]
        n, t_len = gen.n_frames_G, labels.shape[1]
        zeros = tf.zeros([1, labels.shape[2], labels.shape[3], gen.output_nc])
        frames = []
        for t in range(t_len):
            ins = None if instances is None or not gen.use_instance else label_windows(instances, t, n)
            lab = label_windows(labels, t, n)
            if not recurrent:
                out = step(lab, ins)
            else:
                prev = [frames[t - k] if t - k >= 0 else zeros for k in range(n - 1, 0, -1)]
                out = step(lab, tf.stack(prev, axis=1), ins, tf.constant(t == 0))
            frames.append(out["img_final"])
        video = tf.concat(frames, axis=0)
        return np.clip(np.rint((video.numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)
