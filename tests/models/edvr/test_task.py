"""EDVR's training task: optimizer groups, TSA warm-up, the offset guard, init deep from shallow."""

import dataclasses
import json
import logging

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import one_cpu_strategy, steps_only
from tfvr.errors import ConfigError, UserError
from tfvr.models.edvr import EDVR, to_basicsr
from tfvr.models.edvr.config import EDVRConfig, EDVRExperiment
from tfvr.models.edvr.task import EDVRTask, load_init_state_dict
from tfvr.training.loop import Trainer

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=2,
            dcn_impl="reference")


def _experiment(**stab):
    cfg = EDVRExperiment()
    cfg.model = EDVRConfig(**TINY)
    cfg.data.num_frames = 3
    cfg.data.batch_size = 2
    cfg.data.crop_size = 32
    cfg.loss.reduction = "mean"
    cfg.trainer = steps_only(cfg.trainer, 2, log_grad_norm=False)
    cfg.runtime.strategy = "one_device"
    cfg.stabilizers = dataclasses.replace(cfg.stabilizers, **stab)
    return cfg


class FakeDataTask(EDVRTask):
    """Random LR/HR batches instead of the synthetic video pipeline (these tests are about the stabilisers)."""

    name = "edvr_fake_data_test"
    poison_first_stream_at = None  # a batch index of the first data stream whose input is scaled by 1e4

    def build_train_dataset(self, input_context, seed):
        self.streams = getattr(self, "streams", 0) + 1
        rng = np.random.default_rng(seed)
        batches = []
        for i in range(4):
            lq = rng.uniform(size=(2, 3, 8, 8, 3)).astype(np.float32)
            if self.streams == 1 and i == self.poison_first_stream_at:
                lq *= 1e4
            batches.append({"lq": lq, "gt": rng.uniform(size=(2, 3, 32, 32, 3)).astype(np.float32)})
        stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
        return tf.data.Dataset.from_tensor_slices(stacked).repeat()


def _values(model):
    return {v.path: v.numpy().copy() for v in model.trainable_variables}


@pytest.mark.parametrize("scope,count", [("dcn", 16), ("offset", 8), ("pcd", None)])
def test_dcn_group_scopes_partition_the_variables(scope, count):
    task = EDVRTask(_experiment(dcn_lr_scope=scope, dcn_lr_mul=0.25))
    model = task.build_models()["edvr"]
    main, dcn = task.optimizer_groups({"edvr": model})
    assert dcn.name == "dcn" and dcn.lr_multiplier == 0.25 and main.lr_multiplier == 1.0
    paths = [v.path for v in dcn.variables]
    assert all("pcd_align" in p for p in paths)
    assert len(paths) == (count if count is not None else len(model.pcd_align.trainable_variables))
    if scope == "offset":
        assert all("offset_" in p for p in paths)
    assert len(main.variables) + len(dcn.variables) == len(model.trainable_variables)
    assert not {id(v) for v in main.variables} & {id(v) for v in dcn.variables}


def test_config_checks():
    with pytest.raises(ConfigError, match="num_frame"):
        EDVRTask(dataclasses.replace(_experiment(), model=EDVRConfig(**dict(TINY, num_frame=5))))
    with pytest.raises(ConfigError, match="dcn_lr_scope"):
        EDVRTask(_experiment(dcn_lr_scope="everything"))
    with pytest.raises(ConfigError, match="with_tsa"):
        EDVRTask(dataclasses.replace(_experiment(tsa_warmup_steps=3), model=EDVRConfig(**dict(TINY, with_tsa=False))))
    cfg = _experiment()
    cfg.data.task = "denoise"
    with pytest.raises(ConfigError, match="sr"):
        EDVRTask(cfg)
    # Deblurring (predeblur + hr_in) trains on same-size pairs; ×4 data does not fit it.
    cfg = dataclasses.replace(_experiment(), model=EDVRConfig(**dict(TINY, hr_in=True, with_predeblur=True)))
    with pytest.raises(ConfigError, match="deblur"):
        EDVRTask(cfg)
    cfg.data.task = "deblur"
    assert EDVRTask(cfg).scale == 1


def _ckpt_values(path):
    model = EDVR(**TINY).build_for_weights()
    tf.train.Checkpoint(model_edvr=model).read(path).expect_partial()
    return to_basicsr(model)


@pytest.fixture(scope="module")
def guarded_run(tmp_path_factory):
    """One short run that exercises every stabiliser: step 0 is the TSA warm-up, step 2 sees a batch that drives the
    offsets past 100 (the offset guard rolls back to ckpt-2 and halves the DCN learning rate), then training goes on."""
    workdir = tmp_path_factory.mktemp("edvr_run")
    cfg = _experiment(tsa_warmup_steps=1, offset_warn=50, offset_rollback=100, offset_lr_factor=0.5)
    cfg.trainer.num_steps = 3
    cfg.trainer.checkpoint_every = 1
    cfg.trainer.keep_checkpoints = 10
    task = FakeDataTask(cfg)
    task.poison_first_stream_at = 2

    def build_models():
        models = EDVRTask.build_models(task)
        rng = np.random.default_rng(0)
        for layer in models["edvr"].dcn_layers().values():  # offsets that grow with the input
            layer.offset_kernel.assign(rng.normal(0, 0.3, layer.offset_kernel.shape).astype(np.float32))
        return models

    task.build_models = build_models
    trainer = Trainer(task, str(workdir), strategy=one_cpu_strategy())
    logger = logging.getLogger("tfvr.training")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        result = trainer.train()
    finally:
        logger.removeHandler(handler)
    from tfvr.config import save_json

    save_json(cfg, str(workdir / "config.json"), task="edvr", task_module="tfvr.models.edvr.task")
    return trainer, task, workdir, result, records


def test_tsa_warmup_trains_only_the_fusion_module(guarded_run):
    trainer, task, workdir, _, _ = guarded_run
    assert task.stage(0) == "tsa_warmup" and task.stage(1) == "main"
    ck = workdir / "checkpoints"
    w0, w1, w2 = (_ckpt_values(str(ck / f"ckpt-{i}")) for i in range(3))
    changed = {p for p in w0 if not np.array_equal(w0[p], w1[p])}
    assert changed and all(p.startswith("fusion.") for p in changed)  # step 0: warm-up
    changed = {p for p in w1 if not np.array_equal(w1[p], w2[p])}
    assert any(not p.startswith("fusion.") for p in changed)  # step 1: everything


def test_every_step_logs_mean_abs_offset_of_every_dcn(guarded_run):
    trainer, _, workdir, result, _ = guarded_run
    names = {f"offset/{n}" for n in trainer.models["edvr"].dcn_layers()}
    steps = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    logged = [e for e in steps if "loss" in e]
    assert len(logged) == 3 and all(names <= set(e) for e in logged)
    assert all(0 < e[k] < 50 for e in logged for k in names)


def test_offset_guard_restores_and_lowers_only_the_dcn_learning_rate(guarded_run):
    trainer, _, workdir, result, records = guarded_run
    assert result.step == 3 and result.rollbacks == 1
    assert float(trainer.guard_state.lr_scale["dcn"].numpy()) == 0.5
    assert float(trainer.guard_state.lr_scale["main"].numpy()) == 1.0
    assert trainer.learning_rates()["dcn"] == pytest.approx(0.5 * trainer.learning_rates()["main"])
    events = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    rollbacks = [e for e in events if e.get("event") == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["reason"].startswith("offset/") and rollbacks[0]["step"] == 2
    assert any("offset/" in r.getMessage() and r.levelname == "WARNING" for r in records)


def _shallow_deep():
    shallow = EDVR(**dict(TINY, num_reconstruct_block=2)).build_for_weights()
    rng = np.random.default_rng(1)
    for v in shallow.trainable_variables:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    return shallow


@pytest.mark.parametrize("mode", ["prefix", "repeat"])
def test_init_deep_from_shallow_state_dict(tmp_path, mode):
    shallow = _shallow_deep()
    src = to_basicsr(shallow)
    np.savez(tmp_path / "shallow.npz", **src)
    cfg = _experiment(init_from=str(tmp_path / "shallow.npz"), init_mode=mode)
    cfg.model = EDVRConfig(**dict(TINY, num_reconstruct_block=5))
    deep = EDVRTask(cfg).build_models()["edvr"]
    got = to_basicsr(deep)
    for k, v in src.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    k4 = "reconstruction.4.conv1.weight"
    if mode == "repeat":
        np.testing.assert_array_equal(got[k4], src["reconstruction.0.conv1.weight"])
    else:  # the extra blocks keep the ×0.1 Kaiming init
        assert got[k4].std() < 0.2 * src["reconstruction.0.conv1.weight"].std()


def test_init_deep_from_a_workdir_and_from_converted_weights(guarded_run, tmp_path):
    trainer, _, workdir, _, _ = guarded_run
    src = to_basicsr(trainer.models["edvr"])
    assert load_init_state_dict(str(workdir)).keys() == src.keys()
    # A deeper model (4 reconstruction blocks instead of 2) starts from the run's weights.
    cfg = _experiment(init_from=str(workdir))
    cfg.model = EDVRConfig(**dict(TINY, num_reconstruct_block=4))
    got = to_basicsr(EDVRTask(cfg).build_models()["edvr"])
    for k, v in src.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)

    # A TSA model initialised from one without TSA: everything but the fusion is copied.
    no_tsa = EDVR(**dict(TINY, with_tsa=False)).build_for_weights()
    plain = to_basicsr(no_tsa)
    np.savez(tmp_path / "sd.npz", **plain)
    from tfvr.cli.convert_weights import convert

    convert("edvr", tmp_path / "sd.npz", tmp_path / "c.weights.h5")
    cfg = _experiment(init_from=str(tmp_path / "c.weights.h5"), tsa_warmup_steps=10)
    got = to_basicsr(EDVRTask(cfg).build_models()["edvr"])
    assert not any(k.startswith("fusion.") and k in plain for k in got)
    for k, v in plain.items():
        if not k.startswith("fusion"):
            np.testing.assert_array_equal(got[k], v, err_msg=k)

    with pytest.raises(UserError, match="config.json"):
        load_init_state_dict(str(tmp_path))


@pytest.mark.slow  # ~15-50 s (two traces of the full step); the framework's own distributed tests are in the default run
def test_two_replicas_step_like_one_device(tmp_path):
    # Sum-reduced Charbonnier (BasicSR's) over 2 optimizer groups: 2 replicas × 1 clip == 1 device × 2 clips.
    from tests.helpers import two_cpu_strategy

    cfg = _experiment()
    cfg.loss.reduction = "sum"
    a = Trainer(EDVRTask(cfg), str(tmp_path / "one"), strategy=one_cpu_strategy()).build()
    b = Trainer(EDVRTask(cfg), str(tmp_path / "two"), strategy=two_cpu_strategy()).build()
    b.models["edvr"].set_weights(a.models["edvr"].get_weights())
    rng = np.random.default_rng(5)
    batch = {"lq": rng.uniform(size=(2, 3, 8, 8, 3)).astype(np.float32),
             "gt": rng.uniform(size=(2, 3, 32, 32, 3)).astype(np.float32)}
    la, lb = a.run_step(batch), b.run_step(batch)
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a.models["edvr"].get_weights(),
                                                              b.models["edvr"].get_weights()))
    assert diff < 1e-5
    assert lb["loss"] == pytest.approx(la["loss"] / 2, rel=1e-4)  # logs are replica means of per-replica sums
    for k in la:
        if k.startswith("offset/"):
            assert lb[k] == pytest.approx(la[k], rel=1e-4, abs=1e-7)


def test_image_summaries_strip(guarded_run):
    trainer, task, _, _, _ = guarded_run
    rng = np.random.default_rng(7)
    batch = {"lq": rng.uniform(size=(2, 3, 8, 8, 3)).astype(np.float32),
             "gt": rng.uniform(size=(2, 3, 32, 32, 3)).astype(np.float32)}
    images = task.image_summaries(trainer.models, batch)
    (name, strip), = images.items()
    assert name == "bicubic|output|target" and strip.shape[0] == 2 and strip.shape[1] == 32
    assert strip.shape[2] == 3 * 32 + 2 * 2
