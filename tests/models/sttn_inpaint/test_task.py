"""STTN-I's GAN step: one step on 2 replicas equals one step on 1 replica with the same global batch."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, check_flagfile, one_cpu_strategy, run_train_script_test, tiny_run, two_cpu_strategy
from tfvr.errors import ConfigError
from tfvr.models.sttn_inpaint.config import DiscriminatorConfig, GeneratorConfig, ModelConfig
from tfvr.models.sttn_inpaint.task import LossConfig, STTNInpaintExperiment, STTNInpaintTask, generator_losses
from tfvr.training.task import StepContext, make_optimizer


def _experiment(**disc):
    exp = STTNInpaintExperiment()
    exp.model = ModelConfig(generator=GeneratorConfig(channels=16, num_blocks=1),
                            discriminator=DiscriminatorConfig(channels=8, **disc), height=48, width=48)
    exp.data = dataclasses.replace(exp.data, crop_size=48, num_frames=3, batch_size=4)
    # SGD: the weight change is lr x gradient, so equal weights mean equal gradients. The authors' Adam (beta1 0,
    # epsilon 1e-8) moves every weight by about +-lr on its first step whatever the gradient's size, so float noise
    # in a gradient near zero becomes a difference of up to 2 lr: CI's machine saw 1.29e-4 at lr 1e-3 where this
    # 2-core AMD EPYC saw 3.7e-7. The task's own optimizer on 2 replicas is tests/training/test_torch_adam.py's.
    exp.optim = dataclasses.replace(exp.optim, optimizer="sgd", learning_rate=1.0, beta1=0.0)
    exp.d_optim = dataclasses.replace(exp.d_optim, optimizer="sgd", learning_rate=1.0, beta1=0.0)
    return exp


def _batch(seed=0, n=4):
    rng = np.random.default_rng(seed)
    frames = rng.uniform(size=(n, 3, 48, 48, 3)).astype(np.float32)
    masks = np.zeros((n, 3, 48, 48, 1), np.float32)
    for i in range(n):  # different hole areas per clip: per-replica means of the ratio losses would differ
        masks[i, :, 4:10 + 8 * i, 6:30] = 1
    return {"frames": frames, "masks": masks}


def _one_step(strategy, init, batch, exp):
    task = STTNInpaintTask(exp)
    with strategy.scope():
        models = task.build_models()
        models["generator"].set_weights(init[0])
        models["discriminator"].set_weights(init[1])
        groups = {g.name: g for g in task.optimizer_groups(models)}
        opts = {}
        for name, g in groups.items():
            opts[name] = task.build_optimizer(g)
            opts[name].build(g.variables)
    ds = tf.data.Dataset.from_tensors(batch).unbatch().batch(4)
    dist = strategy.experimental_distribute_dataset(ds)

    def replica_fn(b):
        ctx = StepContext(step=tf.constant(0, tf.int64), stage="train", groups=groups, optimizers=opts,
                          num_replicas=strategy.num_replicas_in_sync, seed=0, precision="float32")
        return task.train_step(b, models, ctx)

    @tf.function
    def step(b):
        logs = strategy.run(replica_fn, args=(b,))
        return {k: strategy.reduce("mean", v, axis=None) for k, v in logs.items()}

    logs = step(next(iter(dist)))
    return ({k: float(v) for k, v in logs.items()}, [w.numpy() for w in models["generator"].weights],
            [w.numpy() for w in models["discriminator"].weights])


def test_gan_step_on_two_replicas_equals_one_replica():
    exp = _experiment()
    task = STTNInpaintTask(exp)
    models = task.build_models()
    init = (models["generator"].get_weights(), models["discriminator"].get_weights())
    batch = _batch()
    logs1, g1, d1 = _one_step(one_cpu_strategy(), init, batch, exp)
    logs2, g2, d2 = _one_step(two_cpu_strategy(), init, batch, exp)
    for k in logs1:
        assert abs(logs1[k] - logs2[k]) <= 1e-5 * max(1.0, abs(logs1[k])), (k, logs1[k], logs2[k])
    # Both networks' trainable weights moved (largest updates: generator 5.8e-3, discriminator kernels ~2e-4, so a
    # gradient summed instead of averaged over replicas would differ by that much) and moved the same way; SN's
    # power-iteration vectors too.
    trainable = [w.trainable for w in models["discriminator"].weights]
    assert max(np.abs(a - b).max() for a, b in zip(g1, init[0])) > 1e-3
    assert max(np.abs(a - b).max() for a, b, t in zip(d1, init[1], trainable) if t) > 1e-4
    # the issues' bound; observed 2-vs-1 differences (float summation order) reach 1.9e-8 (generator) and 6e-8
    # (SN vectors) on a 2-core AMD EPYC
    assert max(np.abs(a - b).max() for a, b in zip(g1, g2)) < 1e-5
    assert max(np.abs(a - b).max() for a, b in zip(d1, d2)) < 1e-5


def test_generator_losses_follow_the_authors_normalisation():
    rng = np.random.default_rng(1)
    frames = tf.constant(rng.uniform(-1, 1, size=(2, 3, 8, 8, 3)), tf.float32)
    pred = tf.constant(rng.uniform(-1, 1, size=(2, 3, 8, 8, 3)), tf.float32)
    masks = tf.constant((rng.uniform(size=(2, 3, 8, 8, 1)) > 0.7).astype(np.float32))
    score = tf.constant(rng.normal(size=(2, 3, 1, 1, 4)), tf.float32)
    total, logs = generator_losses(pred, frames, masks, score, LossConfig())
    p, f, m = pred.numpy(), frames.numpy(), np.broadcast_to(masks.numpy(), pred.shape)
    hole = np.mean(np.abs(p * m - f * m)) / np.mean(masks.numpy())  # nn.L1Loss()(pred*m, f*m) / mean(m)
    valid = np.mean(np.abs(p * (1 - m) - f * (1 - m))) / np.mean(1 - masks.numpy())
    adv = -score.numpy().mean()
    np.testing.assert_allclose(float(logs["loss/hole"]), hole, rtol=1e-5)
    np.testing.assert_allclose(float(logs["loss/valid"]), valid, rtol=1e-5)
    np.testing.assert_allclose(float(logs["loss/gan"]), 0.01 * adv, rtol=1e-5)
    np.testing.assert_allclose(float(total), hole + valid + 0.01 * adv, rtol=1e-5)


TINY = tiny_run(data__synthetic__height=48, data__synthetic__width=64, data__num_frames=3,
                model__generator__channels=8, model__generator__num_blocks=1, model__discriminator__channels=4)


def test_two_step_run_writes_everything_and_exports(tmp_path):
    run = run_train_script_test(
        "sttn_inpaint.py", "sttn_inpaint_demo.flags", TINY, tmp_path, task="sttn_inpaint", export_kind="inpainting",
        eval_keys=("psnr_hole", "psnr", "psnr_hole_start", "psnr_start"),
        printed=("held-out metrics before training", "psnr_hole_start"))
    assert run.config["model"]["generator"]["num_blocks"] == 1
    tags = run.tags()
    for tag in ("train/loss/hole", "train/loss/valid", "train/loss/gan", "train/loss/dis"):
        assert tag in tags, (tag, sorted(tags))
    assert any("inpaint" in t for t in tags), sorted(tags)
    frames = np.random.default_rng(0).integers(0, 256, (4, 30, 70, 3), dtype=np.uint8)
    masks = np.zeros((4, 30, 70, 1), np.uint8)
    masks[:, 10:20, 20:40] = 255
    out = run.serve(frames=frames, masks=masks)["frames"]
    assert out.dtype == np.uint8 and out.shape == frames.shape
    np.testing.assert_array_equal(out[masks[..., 0] == 0], frames[masks[..., 0] == 0])


def test_demo_flagfile_parses_and_says_how_to_run_it():
    check_flagfile(REPO / "train" / "configs" / "sttn_inpaint_demo.flags", STTNInpaintExperiment,
                   task_cls=STTNInpaintTask, how_to_run=True)


def test_task_rejects_other_data_tasks_and_sizes():
    exp = STTNInpaintExperiment()
    exp.data.task = "denoise"
    with pytest.raises(ConfigError, match="task=inpaint"):
        STTNInpaintTask(exp)
    exp = _experiment()
    exp.data.crop_size = 40
    with pytest.raises(ConfigError, match="multiples of 48"):
        STTNInpaintTask(exp).build_models()


def test_image_summaries_and_evaluation_on_a_batch():
    exp = _experiment()
    task = STTNInpaintTask(exp)
    models = task.build_models()
    batch = _batch(n=2)
    images = task.image_summaries(models, batch)
    strip = images["inpaint"].numpy()
    assert strip.shape[0] == 2 and strip.shape[1] == 48 and strip.shape[2] >= 4 * 48  # masked|output|comp|target
    from tfvr.models.sttn_inpaint.task import evaluate_inpainting

    ds = tf.data.Dataset.from_tensors(batch)
    metrics = evaluate_inpainting(models["generator"], ds)
    assert set(metrics) == {"psnr_hole", "psnr"} and metrics["psnr"] > metrics["psnr_hole"] > 0
