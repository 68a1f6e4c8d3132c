"""DIS reference flow + vid2vid confidence, and the E_warp metric."""

import cv2
import numpy as np
import tensorflow as tf

from tfvr.models.vid2vid.flow import dis_flow, flow_confidence, reference_flows, warping_error


def textured(h=64, w=80, seed=0):
    r = np.random.default_rng(seed)
    img = cv2.GaussianBlur(r.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def shifted_clip(dx=2, dy=1, t=3):
    big = textured(64 + 3 * t, 80 + 3 * t)
    return np.stack([big[i * dy:i * dy + 64, i * dx:i * dx + 80] for i in range(t)])


def test_dis_flow_follows_vid2vid_convention():
    clip = shifted_clip(dx=2, dy=1)
    flow = dis_flow(clip[1], clip[0])  # frame 1 (x) = frame 0 (x + (2, 1))
    inner = flow[8:-8, 8:-8]
    np.testing.assert_allclose(inner.mean(axis=(0, 1)), [2.0, 1.0], atol=0.25)


def test_confidence_marks_well_warped_pixels():
    clip = shifted_clip().astype(np.float32) / 127.5 - 1.0
    good = np.broadcast_to(np.array([2.0, 1.0], np.float32), (64, 80, 2))
    conf = np.asarray(flow_confidence(clip[1], clip[0], good))
    assert conf.shape == (64, 80, 1)
    assert conf[4:-4, 4:-4].mean() > 0.98
    bad = np.asarray(flow_confidence(clip[1], clip[0], -good))
    assert bad.mean() < conf.mean() - 0.3


def test_reference_flows_eager_and_in_dataset_map():
    clip = tf.constant(shifted_clip(t=4).astype(np.float32) / 127.5 - 1.0)
    flow, conf = reference_flows(clip, step=1, preset="fast")
    assert flow.shape == (3, 64, 80, 2) and conf.shape == (3, 64, 80, 1)
    ds = tf.data.Dataset.from_tensors(clip).map(lambda c: reference_flows(c, step=2, preset="fast"))
    f2, c2 = next(iter(ds))
    assert f2.shape == (2, 64, 80, 2) and c2.shape == (2, 64, 80, 1)
    np.testing.assert_allclose(np.median(f2[0, 8:-8, 8:-8].numpy().reshape(-1, 2), axis=0), [4.0, 2.0], atol=0.5)
    assert float(tf.reduce_mean(conf)) > 0.8


def test_warping_error_ranks_flicker_above_motion():
    clip = shifted_clip(t=4)
    steady = warping_error(clip)
    flicker = clip.astype(np.int32)
    flicker[1::2] = np.clip(flicker[1::2] + 40, 0, 255)
    assert warping_error(flicker.astype(np.uint8)) > steady * 5
    assert steady < 2e-3
