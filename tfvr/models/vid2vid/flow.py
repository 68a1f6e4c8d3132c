"""Reference optical flow for vid2vid without FlowNet2: OpenCV's DIS flow plus vid2vid's confidence mask.

NVIDIA/vid2vid gets its reference flows and confidences from FlowNet2 (`models/flownet.py`), whose CUDA
extensions and weights are what users of the original most often could not build. Here the flow comes from
OpenCV's DIS (Kroeger et al., ECCV 2016), which needs no weights and runs on the CPU (≈1 ms for a 64×96 frame).
The conventions are vid2vid's:

- `flow[t]` maps frame t to frame t − d: `frame_t(x) ≈ frame_{t−d}(x + flow(x))`, pixels, (dx, dy), so
  `backward_warp(frame_{t−d}, flow)` predicts frame t (vid2vid's `flowNet(real_B, real_B_prev)`);
- `conf = Σ_c (I_t − warp(I_{t−d}, flow))² < 0.02` with images in [−1, 1] (vid2vid's `compute_flow_and_conf`).

The confidence is computed with `tfvr.ops.warp.backward_warp` (border padding), the same warp the losses use.
`add_reference_flows` adds them to a training batch; `warping_error` is the E_warp temporal-consistency metric (Lai et al., ECCV 2018) on DIS flow.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from tfvr.ops.warp import backward_warp

CONF_THRESHOLD = 0.02
_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def _gray_u8(img: np.ndarray) -> np.ndarray:
    """uint8 grey image from RGB uint8, or float in [0, 1] / [−1, 1] (detected by the value range)."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        x = img.astype(np.float32)
        if x.min() < 0:
            x = (x + 1.0) * 0.5
        img = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[-1] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    elif img.ndim == 3:
        img = img[..., 0]
    return np.ascontiguousarray(img)


def dis_flow(target: np.ndarray, source: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS flow [H, W, 2] (float32, pixels, (dx, dy)) with `target(x) ≈ source(x + flow(x))`.

    Images: [H, W, 3] RGB (uint8, or float in [0, 1] or [−1, 1]) or [H, W] grey.
    """
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of {sorted(_PRESETS)}, got {preset!r}")
    dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
    return dis.calc(_gray_u8(target), _gray_u8(source), None).astype(np.float32)


def dis_flows(frames: np.ndarray, step: int = 1, preset: str = "medium") -> np.ndarray:
    """Flows of a clip [T, H, W, 3] from each frame t ≥ step to frame t − step: [T − step, H, W, 2]."""
    frames = np.asarray(frames)
    t, h, w = frames.shape[:3]
    if t <= step:
        return np.zeros((0, h, w, 2), np.float32)
    return np.stack([dis_flow(frames[i], frames[i - step], preset) for i in range(step, t)])


def flow_confidence(current, previous, flow, threshold: float = CONF_THRESHOLD):
    """vid2vid's confidence: 1 where Σ_c (current − warp(previous, flow))² < threshold (images in [−1, 1]).

    current, previous: [..., H, W, 3]; flow [..., H, W, 2]. Returns float32 [..., H, W, 1].
    """
    current = tf.convert_to_tensor(current, tf.float32)
    shape = tf.shape(current)
    h, w, c = shape[-3], shape[-2], shape[-1]
    flat = lambda x, ch: tf.reshape(tf.cast(x, tf.float32), tf.stack([-1, h, w, ch]))  # noqa: E731
    warped = backward_warp(flat(previous, c), flat(flow, 2), padding="border")
    err = tf.reduce_sum(tf.square(flat(current, c) - warped), axis=-1, keepdims=True)
    conf = tf.cast(err < threshold, tf.float32)
    return tf.reshape(conf, tf.concat([shape[:-1], [1]], axis=0))


def reference_flows(frames, step: int = 1, preset: str = "medium"):
    """TF graph op: DIS flows and confidences of a clip [T, H, W, 3] or a batch of clips [B, T, H, W, 3], float in
    [−1, 1].

    Returns (flow [..., T − step, H, W, 2], conf [..., T − step, H, W, 1]), flow[i] mapping frame i + step to
    frame i. Usable inside `tf.data.Dataset.map` (the flow runs in `tf.numpy_function`).
    """
    frames = tf.convert_to_tensor(frames, tf.float32)

    def flows_np(x):
        if x.ndim == 4:
            return dis_flows(x, step, preset)
        return np.stack([dis_flows(c, step, preset) for c in x]).astype(np.float32)

    flow = tf.numpy_function(flows_np, [frames], tf.float32, stateful=False)
    t = frames.shape[-4]
    flow = tf.ensure_shape(flow, [*frames.shape[:-4], None if t is None else max(t - step, 0), *frames.shape[-3:-1], 2])
    conf = flow_confidence(frames[..., step:, :, :, :], frames[..., :-step, :, :, :], flow)
    return flow, conf


def add_reference_flows(batch: dict, distances, preset: str = "medium") -> dict:
    """A label-to-video batch plus `flow<d>` [B, T−d, H, W, 2] and `conf<d>` [B, T−d, H, W, 1] for every frame
    distance d in `distances` (DIS on the frames in [−1, 1]; a `tf.data` map function)."""
    frames = tf.cast(batch["frames"], tf.float32) * 2.0 - 1.0
    out = dict(batch)
    for d in distances:
        out[f"flow{d}"], out[f"conf{d}"] = reference_flows(frames, d, preset)
    return out


def occlusion_mask(flow_bw: np.ndarray, flow_fw: np.ndarray) -> np.ndarray:
    """1 where forward-backward consistent (Sundaram et al. 2010, as Lai et al. use for E_warp), else 0.

    flow_bw maps frame t → t − 1, flow_fw maps t − 1 → t. Returns float32 [H, W].
    """
    h, w = flow_bw.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fw_at = cv2.remap(flow_fw, gx + flow_bw[..., 0], gy + flow_bw[..., 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    diff = np.sum((flow_bw + fw_at) ** 2, axis=-1)
    bound = 0.01 * (np.sum(flow_bw**2, -1) + np.sum(fw_at**2, -1)) + 0.5
    return (diff <= bound).astype(np.float32)


def warping_error(frames: np.ndarray, preset: str = "medium") -> float:
    """E_warp of a video [T, H, W, 3] uint8 (or float in [0, 1]) on its own DIS flow.

    E_warp = mean over t ≥ 1 of Σ_x M_t(x)·‖O_t(x) − warp(O_{t−1}, F_{t→t−1})(x)‖² / Σ_x M_t(x), images in [0, 1],
    M_t the non-occluded pixels (forward-backward check). Lower is more temporally consistent.
    """
    frames = np.asarray(frames)
    x = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float32)
    errs = []
    for t in range(1, len(x)):
        bw = dis_flow(x[t], x[t - 1], preset)
        fw = dis_flow(x[t - 1], x[t], preset)
        mask = occlusion_mask(bw, fw)
        warped = np.asarray(backward_warp(x[t - 1][None], bw[None], padding="border"))[0]
        err = np.sum((x[t] - warped) ** 2, axis=-1)
        errs.append(float(np.sum(err * mask) / max(np.sum(mask), 1.0)))
    return float(np.mean(errs)) if errs else 0.0
