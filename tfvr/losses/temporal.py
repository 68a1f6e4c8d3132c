"""vid2vid's flow and warp losses on a generated clip (NVIDIA/vid2vid `vid2vid_model_D.py`).

With frames in [−1, 1], the generator's flows F_t (frame t → t−1) and occlusion weights w_t of frames 1 … T−1, the
reference flows F_ref and their confidences conf (`tfvr.models.vid2vid.flow.reference_flows`), and ‖·‖₁,conf
vid2vid's MaskedL1 (`tfvr.losses.pixel.masked_l1`):

    f_flow = λ_F · ‖F − F_ref‖₁,conf                       the flow against the reference flow
    f_warp = λ_T · ‖warp(x_{t−1}, F) − x_t‖₁,conf           the own flow warps the real previous frame onto x_t
    w      = λ_W · ‖w‖₁,conf                                the occlusion-weight regulariser
    g_warp = λ_T · ‖x̃_t − stop_grad(warp(x̃_{t−1}, F_ref))‖₁,conf   temporal consistency of the output

(warps: `tfvr.ops.warp.backward_warp`, border padding).
"""

from __future__ import annotations

import tensorflow as tf

from tfvr.losses.pixel import masked_l1
from tfvr.ops.warp import backward_warp

__all__ = ["flow_warp_losses"]


def _merge(x):
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


def flow_warp_losses(real, fake, flow, weight, flow_ref, conf, lambda_F: float, lambda_T: float,
                     lambda_W: float) -> dict[str, tf.Tensor]:
    """{"f_flow", "f_warp", "w", "g_warp"} (weighted, float32 scalars) for one clip batch.

    real, fake: [B, T, H, W, 3]; flow, flow_ref: [B, T−1, H, W, 2]; weight, conf: [B, T−1, H, W, 1] (entry t−1 is
    frame t's; T ≥ 2).
    """
    flow, weight, flow_ref, conf = _merge(flow), _merge(weight), _merge(flow_ref), _merge(conf)
    real_prev, real_cur = _merge(real[:, :-1]), _merge(real[:, 1:])
    fake_prev, fake_cur = _merge(fake[:, :-1]), _merge(fake[:, 1:])
    return {
        "f_flow": masked_l1(flow, flow_ref, conf) * lambda_F,
        "f_warp": masked_l1(backward_warp(real_prev, flow), real_cur, conf) * lambda_T,
        "w": masked_l1(weight, tf.zeros_like(weight), conf) * lambda_W,
        "g_warp": masked_l1(fake_cur, tf.stop_gradient(backward_warp(fake_prev, flow_ref)), conf) * lambda_T,
    }
