"""The evaluation contract (`Task.build_eval_dataset / eval_step / aggregate / reduce_aggregated`, driven by
`Task.evaluate`) and the restoration evaluator with its baselines, on tiny arrays against PSNR computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.data.degrade import imresize
from tfvr.errors import UserError
from tfvr.training.evaluation import (RestorationEvaluator, copy_last, input_frame, other_model, to_uint8,
                                      upscaled)
from tfvr.training.task import Task


def hand_psnr(a_float, b_float):
    """PSNR (peak 255) of two [H, W, 3] float images in [0, 1], each rounded to 8 bits first."""
    a = np.clip(np.round(np.asarray(a_float, np.float64) * 255), 0, 255)
    b = np.clip(np.round(np.asarray(b_float, np.float64) * 255), 0, 255)
    return 10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2))


class Halve:
    """A stand-in model: half of frame 1 of its input [N, T, H, W, 3] (a dict output when `key`)."""

    def __init__(self, key=None, factor=0.5):
        self.key, self.factor = key, factor

    def __call__(self, x, training=False):
        y = tf.convert_to_tensor(x)[:, 1] * self.factor
        return {self.key: y} if self.key else y


def _batch(seed, n=2, h=12, w=12):
    rng = np.random.default_rng(seed)
    return {"lq": rng.uniform(size=(n, 3, h, w, 3)).astype(np.float32),
            "gt": rng.uniform(size=(n, 3, h, w, 3)).astype(np.float32)}


def test_same_size_baselines_input_ablation_and_gains():
    ev = RestorationEvaluator(model="m", output_key="out", target=lambda b: b["gt"][:, 1],
                              baselines=[input_frame(1, ssim=True), other_model("ablation", "abl", output_key="out")],
                              gains={"gain_in": "input", "gain_abl": "ablation"}, count="n")
    models = {"m": Halve("out"), "abl": Halve("out", factor=0.25)}
    batches = [_batch(0, n=2), _batch(1, n=1)]  # unequal batches: means are over examples, not batches
    state = {}
    for b in batches:
        scores, out = ev.step(b, models)
        assert set(scores) == {"psnr_model", "ssim_model", "psnr_input", "ssim_input", "psnr_ablation"}
        assert out["out"].shape == (len(b["lq"]), 12, 12, 3)
        for k, v in scores.items():
            state.setdefault(k, []).append(np.asarray(v))
    res = ev.reduce(state)
    lq = np.concatenate([b["lq"] for b in batches])
    gt = np.concatenate([b["gt"] for b in batches])[:, 1]
    want = {"psnr_model": np.mean([hand_psnr(lq[i, 1] * 0.5, gt[i]) for i in range(3)]),
            "psnr_input": np.mean([hand_psnr(lq[i, 1], gt[i]) for i in range(3)]),
            "psnr_ablation": np.mean([hand_psnr(lq[i, 1] * 0.25, gt[i]) for i in range(3)])}
    for k, v in want.items():
        assert res[k] == pytest.approx(v, abs=1e-9), k
    assert res["gain_in"] == pytest.approx(want["psnr_model"] - want["psnr_input"], abs=1e-9)
    assert res["gain_abl"] == pytest.approx(want["psnr_model"] - want["psnr_ablation"], abs=1e-9)
    assert res["n"] == 3.0 and 0 < res["ssim_input"] < 1
    # without the ablation model the baseline (and its gain) is left out, not failed
    no_abl = ev.reduce({k: v for k, v in state.items() if k != "psnr_ablation"})
    assert "psnr_ablation" not in no_abl and "gain_abl" not in no_abl
    scores, _ = ev.step(batches[0], {"m": Halve("out")})
    assert "psnr_ablation" not in scores


def test_sr_baselines_bicubic_bilinear_and_copy_last():
    rng = np.random.default_rng(3)
    lq = rng.uniform(size=(2, 3, 6, 7, 3)).astype(np.float32)
    gt = rng.uniform(size=(2, 3, 12, 14, 3)).astype(np.float32)
    ev = RestorationEvaluator(model="m", target=lambda b: b["gt"][:, 1],
                              baselines=[upscaled("bicubic", 1, 2, ssim=False), copy_last("hr"),
                                         upscaled("bilinear", 1, 2, method="bilinear")],
                              gains={"psnr_gain": "bicubic"})
    batch = {"lq": lq, "gt": gt, "hr": gt[:, 1::-1]}  # copy_last: the last frame of batch["hr"], gt frame 0
    scores, _ = ev.step(batch, {"m": lambda x, training=False: tf.image.resize(x[:, 1], [12, 14], "nearest")})
    res = ev.reduce({k: [np.asarray(v)] for k, v in scores.items()})
    bic = [imresize(lq[i, 1].astype(np.float64), 2) for i in range(2)]
    bil = tf.image.resize(lq[:, 1], [12, 14], method="bilinear").numpy()
    near = np.repeat(np.repeat(lq[:, 1], 2, axis=1), 2, axis=2)
    assert res["psnr_bicubic"] == pytest.approx(np.mean([hand_psnr(bic[i], gt[i, 1]) for i in range(2)]), abs=1e-9)
    assert res["psnr_bilinear"] == pytest.approx(np.mean([hand_psnr(bil[i], gt[i, 1]) for i in range(2)]), abs=1e-9)
    assert res["psnr_copy_last"] == pytest.approx(np.mean([hand_psnr(gt[i, 0], gt[i, 1]) for i in range(2)]),
                                                  abs=1e-9)
    assert res["psnr_model"] == pytest.approx(np.mean([hand_psnr(near[i], gt[i, 1]) for i in range(2)]), abs=1e-9)
    assert res["psnr_gain"] == pytest.approx(res["psnr_model"] - res["psnr_bicubic"])
    # a baseline of the wrong size is an error naming it, not a silent broadcast
    bad = RestorationEvaluator(model="m", target=lambda b: b["gt"][:, 1], baselines=[input_frame(1)])
    with pytest.raises(ValueError, match="input image"):
        bad.step(batch, {"m": lambda x, training=False: tf.image.resize(x[:, 1], [12, 14])})


def test_copy_last_is_the_last_input_frame():
    frames = np.zeros((1, 2, 11, 11, 3), np.float32)
    frames[:, 1] = 0.5
    target = np.full((1, 11, 11, 3), 131 / 255, np.float32)
    ev = RestorationEvaluator(model="m", inputs=lambda b, m: b["frames"], target=lambda b: b["target"],
                              output_key="pred", baselines=[copy_last(ssim=True)])
    scores, _ = ev.step({"frames": frames, "target": target},
                        {"m": lambda x, training=False: {"pred": tf.convert_to_tensor(x)[:, 0]}})
    # 0.5 -> 128 (round half to even of 127.5), target 131: MSE 9; the model's zeros: MSE 131^2
    assert to_uint8(0.5) == 128
    assert scores["psnr_copy_last"][0] == pytest.approx(10 * np.log10(255 ** 2 / 9.0))
    assert scores["psnr_model"][0] == pytest.approx(10 * np.log10(255 ** 2 / 131.0 ** 2))
    assert "ssim_copy_last" in scores


class _Fake(Task):
    name = "fake_eval_contract"

    def __init__(self, batches):
        self.batches = batches

    def build_eval_dataset(self):
        return self.batches

    def eval_step(self, batch, models):
        return {"value": batch["x"] * models["k"], "per_batch": float(len(batch["x"]))}


def test_task_evaluate_drives_the_contract():
    task = _Fake([{"x": np.array([1.0, 2.0])}, {"x": np.array([6.0])}])
    # per-example values average over examples (3), a scalar per batch over batches (2)
    assert task.evaluate({"k": 2.0}) == {"value": pytest.approx(6.0), "per_batch": pytest.approx(1.5)}
    with pytest.raises(UserError, match="evaluation data set is empty"):
        _Fake([]).evaluate({"k": 1.0})
    assert Task.evaluate(_Fake(None), {}) == {}  # no eval dataset: no metrics
