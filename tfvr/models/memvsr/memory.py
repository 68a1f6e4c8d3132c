"""The memory module of MemVSR (seed 004): slots built from a "sentence" of frame features, read by attention.

A memory network in the sense of End-to-End Memory Networks (Sukhbaatar et al., NeurIPS 2015), on feature maps:

* **Writing** (the seed's "static conv, separate 1×1" memory): the sentence is the encoder features of
  `input_size` frames, `[B, S, h, w, E]`. Per hop, two separate 1×1 convolutions over the S·E stacked channels
  make `memory_size` key maps and `memory_size` value maps (`[B, h, w, M, E]` each): MemN2N's input (A) and
  output (C) embeddings, here mixing the sentence's frames into M slots at every position.
* **Reading**: the query `u` (a 1×1 conv of the query features, `[B, h, w, E]`) attends to the slots; the read
  `o` is the attention-weighted sum of value maps; with `hops` > 1 the query is updated `u ← u + o` and read
  again (MemN2N's multi-hop, untied weights per hop).
* **Variants** (the seed's names):
  - `pixsim`: one similarity per slot, `softmax_m(mean_{y,x} u·k_m / √E)`, and `o = Σ_m p_m v_m` (one weight
    per slot for the whole map).
  - `pixwise`: per-pixel weights, `p[y, x, m] = softmax_m(u(y,x)·k_m(y,x) / √E)`. With `crop` = c > 0 the
    query at (y, x) is compared with every slot at every position of the c×c neighbourhood (y+dy, x+dx),
    softmax over the M·c² candidates (positions outside the map are excluded), and the read is the weighted
    sum of the corresponding values.
  - `pixsentence`: every query position searches every position of every slot (softmax over M·h·w); `crop`
    must be 0 (the whole map is the neighbourhood).
* **Normalisation** (`normalize=True`): cosine similarity (query and keys L2-normalised over channels) times a
  learned temperature (init `temperature`), instead of the scaled dot product.
* **Fusion** of the read with the query features x: `concat` → `conv1x1([x, o])`; `add` → `x + conv1x1(o)`.

The read weights per slot, `[B, h, w, M]` (summed over the neighbourhood / positions; constant over the map for
`pixsim`), are returned for the seed's `weight_image` visualisation.

Where the seed leaves details open (the seed's write-up names the modules but not their equations), the choices
above are the simplest reading, and each is a config field (`MemoryConfig`).
"""

import math

import keras
import tensorflow as tf

__all__ = ["MemoryModule", "VARIANTS", "FUSIONS", "neighbourhood_stack"]

VARIANTS = ("pixsim", "pixwise", "pixsentence")
FUSIONS = ("concat", "add")


def neighbourhood_stack(x, crop: int):
    """`[B, h, w, ...rest]` → (`[B, h, w, crop², ...rest]` of x at (y+dy, x+dx), dy, dx ∈ [-r, r] row-major,
    zero outside; validity mask `[1, h, w, crop²]` float, 1 where the shifted position is inside the map)."""
    r = crop // 2
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    rank = x.shape.rank
    pad = [[0, 0], [r, r], [r, r]] + [[0, 0]] * (rank - 3)
    xp = tf.pad(x, pad)
    ones = tf.pad(tf.ones(tf.stack([1, h, w]), x.dtype), [[0, 0], [r, r], [r, r]])
    vals, valid = [], []
    for dy in range(crop):
        for dx in range(crop):
            vals.append(xp[:, dy:dy + h, dx:dx + w])
            valid.append(ones[:, dy:dy + h, dx:dx + w])
    return tf.stack(vals, axis=3), tf.stack(valid, axis=3)


class MemoryModule(keras.layers.Layer):
    """Memory read by attention over slots written from a sentence of frame features (seed 004's memory).

    Args:
        embed_size: int, channels E of the features stored in and read from the memory.
        memory_size: int, number of slots M.
        input_size: int, sentence length S (frames whose features write the memory).
        hops: int ≥ 1, rounds of attention (`u ← u + o` between hops).
        variant: "pixsim" | "pixwise" | "pixsentence" (see the module docstring).
        crop: neighbourhood search size c (odd: 3, 5, …) for "pixwise"; 0 = same position only.
        normalize: cosine similarity with a learned temperature instead of the scaled dot product.
        temperature: initial temperature of the normalised similarity.
        fusion: "concat" or "add" (how the read joins the query features).
        channels: int or None, channels C of the query / sentence features (None: E). The 1×1 embeddings map
            C → E, the fusion E (+ C) → C, so a 64-channel EDVR can use a 128- or 256-channel memory.

    Call: `(query [B, h, w, C], sentence [B, S, h, w, C])` → `(fused [B, h, w, C], weights [B, h, w, M])`,
    weights = the read weights per slot of the last hop.

    Reference: Sukhbaatar, Szlam, Weston, Fergus, "End-To-End Memory Networks", NeurIPS 2015; the study of seed
    004 (memory-augmented EDVR / next-frame prediction).
    """

    def __init__(self, embed_size=128, memory_size=10, input_size=10, hops=1, variant="pixsim", crop=0,
                 normalize=False, temperature=10.0, fusion="concat", channels=None, **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"memory variant must be one of {VARIANTS}, got {variant!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"memory fusion must be one of {FUSIONS}, got {fusion!r}")
        if int(hops) < 1 or int(memory_size) < 1 or int(input_size) < 1 or int(embed_size) < 1:
            raise ValueError("memory hops, memory_size, input_size and embed_size must be >= 1")
        crop = int(crop)
        if crop < 0 or (crop > 0 and crop % 2 == 0):
            raise ValueError(f"memory crop must be 0 or an odd size (3, 5, ...), got {crop}")
        if crop and variant != "pixwise":
            raise ValueError(f"memory crop={crop} applies to the 'pixwise' variant only ('pixsim' has one weight "
                             f"per slot, 'pixsentence' already searches every position); got {variant!r}")
        self.embed_size = int(embed_size)
        self.memory_size = int(memory_size)
        self.input_size = int(input_size)
        self.hops = int(hops)
        self.variant = variant
        self.crop = crop
        self.normalize = bool(normalize)
        self.temperature = float(temperature)
        self.fusion = fusion
        self.channels = self.embed_size if channels is None else int(channels)
        e, m = self.embed_size, self.memory_size
        self.query_embed = keras.layers.Conv2D(e, 1, name="query_embed")
        for k in range(self.hops):
            setattr(self, f"key_embed_{k}", keras.layers.Conv2D(m * e, 1, name=f"key_embed_{k}"))
            setattr(self, f"value_embed_{k}", keras.layers.Conv2D(m * e, 1, name=f"value_embed_{k}"))
        self.fuse = keras.layers.Conv2D(self.channels, 1, name="fuse")

    def build(self, query_shape=None, sentence_shape=None):
        e, s, c = self.embed_size, self.input_size, self.channels
        self.query_embed.build((None, None, None, c))
        for k in range(self.hops):
            getattr(self, f"key_embed_{k}").build((None, None, None, s * c))
            getattr(self, f"value_embed_{k}").build((None, None, None, s * c))
        self.fuse.build((None, None, None, c + e if self.fusion == "concat" else e))
        if self.normalize:
            self.log_temperature = self.add_weight(
                name="log_temperature", shape=(), initializer=keras.initializers.Constant(
                    math.log(self.temperature)), trainable=True)
        self.built = True

    def _slots(self, sentence, k):
        """[B, S, h, w, C] → keys, values [B, h, w, M, E] of hop k."""
        shape = tf.shape(sentence)
        b, h, w = shape[0], shape[2], shape[3]
        stacked = tf.reshape(tf.transpose(sentence, [0, 2, 3, 1, 4]), [b, h, w, self.input_size * self.channels])
        keys = getattr(self, f"key_embed_{k}")(stacked)
        values = getattr(self, f"value_embed_{k}")(stacked)
        slot_shape = [b, h, w, self.memory_size, self.embed_size]
        return tf.reshape(keys, slot_shape), tf.reshape(values, slot_shape)

    def _sim_scale(self, u, keys):
        if self.normalize:
            return (tf.math.l2_normalize(u, axis=-1), tf.math.l2_normalize(keys, axis=-1),
                    tf.cast(tf.exp(self.log_temperature), u.dtype))
        return u, keys, tf.cast(1.0 / float(self.embed_size) ** 0.5, u.dtype)

    def read(self, u, keys, values):
        """One hop: query u [B, h, w, E], slots [B, h, w, M, E] → (o [B, h, w, E], weights [B, h, w, M])."""
        q, kn, scale = self._sim_scale(u, keys)
        shape = tf.shape(u)
        b, h, w = shape[0], shape[1], shape[2]
        m = self.memory_size
        if self.variant == "pixsim":
            sim = tf.reduce_mean(tf.einsum("bhwe,bhwme->bhwm", q, kn), axis=[1, 2]) * scale  # [B, M]
            p = tf.nn.softmax(sim, axis=-1)
            o = tf.einsum("bm,bhwme->bhwe", p, values)
            return o, tf.broadcast_to(p[:, None, None, :], tf.stack([b, h, w, m]))
        if self.variant == "pixsentence":
            kf = tf.reshape(kn, [b, h * w * m, self.embed_size])
            vf = tf.reshape(values, [b, h * w * m, self.embed_size])
            qf = tf.reshape(q, [b, h * w, self.embed_size])
            p = tf.nn.softmax(tf.matmul(qf, kf, transpose_b=True) * scale, axis=-1)  # [B, hw, hw·M]
            o = tf.reshape(tf.matmul(p, vf), [b, h, w, self.embed_size])
            per_slot = tf.reduce_sum(tf.reshape(p, [b, h * w, h * w, m]), axis=2)
            return o, tf.reshape(per_slot, [b, h, w, m])
        if self.crop == 0:
            p = tf.nn.softmax(tf.einsum("bhwe,bhwme->bhwm", q, kn) * scale, axis=-1)
            return tf.einsum("bhwm,bhwme->bhwe", p, values), p
        kc, valid = neighbourhood_stack(kn, self.crop)  # [B, h, w, c², M, E], [1, h, w, c²]
        vc, _ = neighbourhood_stack(values, self.crop)
        sim = tf.einsum("bhwe,bhwnme->bhwnm", q, kc) * scale
        # tf.where, not an additive -1e9: that overflows to -inf in float16 and 0·inf gives NaN
        outside = tf.fill(tf.shape(sim), tf.constant(sim.dtype.min / 2, sim.dtype))
        sim = tf.where(tf.broadcast_to(valid[..., None] > 0, tf.shape(sim)), sim, outside)
        n = self.crop * self.crop
        p = tf.reshape(tf.nn.softmax(tf.reshape(sim, [b, h, w, n * m]), axis=-1), [b, h, w, n, m])
        o = tf.einsum("bhwnm,bhwnme->bhwe", p, vc)
        return o, tf.reduce_sum(p, axis=3)

    def call(self, query, sentence):
        query = tf.convert_to_tensor(query)
        sentence = tf.cast(sentence, query.dtype)
        u = self.query_embed(query)
        o = weights = None
        for k in range(self.hops):
            keys, values = self._slots(sentence, k)
            o, weights = self.read(u, keys, values)
            u = u + o
        o = tf.cast(o, query.dtype)
        if self.fusion == "concat":
            fused = self.fuse(tf.concat([query, o], axis=-1))
        else:
            fused = query + self.fuse(o)
        return fused, weights

    def get_config(self):
        cfg = super().get_config()
        cfg.update(embed_size=self.embed_size, memory_size=self.memory_size, input_size=self.input_size,
                   hops=self.hops, variant=self.variant, crop=self.crop, normalize=self.normalize,
                   temperature=self.temperature, fusion=self.fusion, channels=self.channels)
        return cfg
