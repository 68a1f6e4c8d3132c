"""vid2vid's coarse-to-fine recipe (label2city_1024): `fix_global_steps` (NVIDIA's --niter_fix_global) and
`init_from` (NVIDIA's --load_pretrain: a one-scale run initialises the coarse scale of a two-scale one). Tiny shapes."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.models.vid2vid.test_task import synthetic_batch, tiny_config
from tfvr.errors import UserError
from tfvr.models.vid2vid.task import Vid2VidTask


def two_scale_config(**over):
    cfg = tiny_config(**over)
    cfg.model.n_scales_spatial, cfg.model.n_blocks_local = 2, 1
    cfg.sequence.start_frames = cfg.sequence.max_frames = cfg.data.num_frames = 2
    cfg.data.batch_size = 1
    return cfg


def _values(variables):
    return [np.array(v) for v in variables]


def test_fix_global_steps_trains_only_the_finest_scale_then_all():
    from tfvr.training.loop import Trainer

    cfg = two_scale_config(fix_global_steps=1)
    task = Vid2VidTask(cfg)
    assert [task.stage(s) for s in (0, 1)] == ["seq2_fixglobal", "seq2"]
    batch = synthetic_batch(task, n=1, t=2)
    trainer = Trainer(task, "/nonexistent-unused", strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
    trainer.build()
    gen = trainer.models["generator"]
    coarse, fine = gen.netG0.trainable_variables, gen.local[-1].trainable_variables
    c0, f0 = _values(coarse), _values(fine)
    tf.config.run_functions_eagerly(True)  # two stages of a tiny model: tracing both would take most of the time
    try:
        trainer.run_step(batch)  # step 0: the global generator is fixed
        c1, f1 = _values(coarse), _values(fine)
        trainer.run_step(batch)  # step 1: everything trains
        c2 = _values(coarse)
    finally:
        tf.config.run_functions_eagerly(False)
    for v, a, b in zip(coarse, c0, c1):
        np.testing.assert_array_equal(a, b, err_msg=f"{v.path} moved while fixed")
    assert all(np.abs(a - b).max() > 0 for a, b in zip(f0, f1)), "the finest scale must train"
    # then every coarse variable trains but its output convs (the coarse image no finer scale uses: no gradient)
    for v, a, b in zip(coarse, c1, c2):
        assert (np.abs(a - b).max() > 0) != ("model_final_" in v.path), v.path


def test_fixed_coarse_scale_is_outside_the_gradient():
    """fix_coarse: no gradient path reaches the coarse scale (so backprop keeps none of its activations), the
    forward values are the same."""
    task = Vid2VidTask(two_scale_config())
    gen = task.build_models()["generator"]
    batch = synthetic_batch(task, n=1, t=2)
    labels = tf.constant(batch["labels"][:, :3].repeat(2, axis=1)[:, :3])
    prev = tf.constant(batch["frames"][:, :2] * 2 - 1)
    with tf.GradientTape(persistent=True) as tape:
        free = gen(labels, prev, training=False)["img_final"]
        fixed = gen(labels, prev, training=False, fix_coarse=True)["img_final"]
        lf, lx = tf.reduce_sum(free), tf.reduce_sum(fixed)
    np.testing.assert_array_equal(free, fixed)
    assert all(g is None for g in tape.gradient(lx, gen.netG0.trainable_variables))
    assert all(g is not None for g in tape.gradient(lx, gen.local[-1].trainable_variables))
    # without fix_coarse the coarse scale is in the gradient (all but its output convs, which only make the
    # coarse image a finer scale never uses)
    unused = [v.path for v, g in zip(gen.netG0.trainable_variables, tape.gradient(lf, gen.netG0.trainable_variables))
              if g is None]
    assert unused and all("model_final_" in p for p in unused), unused


def test_fix_global_steps_needs_two_scales():
    from tfvr.errors import ConfigError

    with pytest.raises(ConfigError, match="n_scales_spatial"):
        Vid2VidTask(tiny_config(fix_global_steps=5))


def _one_scale_run(tmp_path, name="run512", **model):
    """A one-scale tfvr vid2vid run folder (config.json + an untrained checkpoint), as a 512 run leaves it."""
    from tfvr.config import save_json
    from tfvr.training.checkpoints import checkpoint_objects

    cfg = tiny_config()
    for k, v in model.items():
        setattr(cfg.model, k, v)
    wd = tmp_path / name
    tf.keras.utils.set_random_seed(1)
    models = Vid2VidTask(cfg).build_models()
    ckpt = tf.train.Checkpoint(**checkpoint_objects(models, step=tf.Variable(0, dtype=tf.int64)))
    tf.train.CheckpointManager(ckpt, str(wd / "checkpoints"), max_to_keep=1, checkpoint_name="ckpt").save(0)
    save_json(cfg, wd / "config.json", task="vid2vid")
    return wd, models


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    return _one_scale_run(tmp_path_factory.mktemp("init_from"))


def test_init_from_loads_the_coarse_scale_and_the_discriminators(source_run, tmp_path):
    """(and: layers kept in lists — Sequence items, local scales, D scales — are in TF's checkpoint graph, so a run
    folder restores without its optimizers and keeps BatchNorm statistics)"""
    from tfvr.models.vid2vid.convert import state_dict

    wd, src = source_run
    for name, m in src.items():
        path = tf.train.Checkpoint(model=m).write(str(tmp_path / name))
        saved = [v for v, _ in tf.train.list_variables(path) if v.startswith("model/")]
        assert len(saved) == len(m.variables), name
    cfg = two_scale_config(init_from=str(wd))
    # the 1024 recipe adds an image-D scale: the source's scale0 lands on scale0 (pix2pixHD widths: ndf·2**(num_D−1−s),
    # the recipe's ndf 64 is capped at 64 on every scale; here 2·2 = the source's 4)
    cfg.disc.num_D, cfg.disc.ndf = 2, 2
    tf.keras.utils.set_random_seed(2)
    task = Vid2VidTask(cfg)
    models = task.build_models()
    got, want = state_dict(models["generator"].netG0), state_dict(src["generator"].netG0)
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # the coarse generator computes what the source does on the same input
    x = tf.random.stateless_uniform([1, 16, 16, models["generator"].netG0.input_nc], [0, 1])
    np.testing.assert_array_equal(models["generator"].netG0(x, None, training=False)["img_raw"],
                                  src["generator"].netG0(x, None, training=False)["img_raw"])
    d_src, d_got = state_dict(src["image_d"]), state_dict(models["image_d"])
    assert set(d_src) < set(d_got)
    for k in d_src:
        np.testing.assert_array_equal(d_got[k], d_src[k], err_msg=k)
    r = task.init_report
    assert r.loaded["generator/netG0"] == len(want) and r.kept["generator/netG1"] > 0
    assert r.kept["image_d"] == len(d_got) - len(d_src) and "video_d/netD_T0" in r.loaded
    assert "init_from" in r.line() and "netG1" in r.line()


def test_init_from_rejects_a_mismatching_source_in_one_line(tmp_path, source_run):
    from tfvr.models.vid2vid.init_from import init_from

    wd, _ = _one_scale_run(tmp_path, ngf=8)
    cfg = two_scale_config()
    models = Vid2VidTask(cfg).build_models()
    path = tf.train.Checkpoint(model=models["generator"]).write(str(tmp_path / "two_scales"))  # local scales tracked
    assert len([v for v, _ in tf.train.list_variables(path) if v.startswith("model/")]) == len(
        models["generator"].variables)
    with pytest.raises(UserError) as e:
        init_from(str(wd), models, cfg)
    msg = str(e.value)
    assert "\n" not in msg and "netG0" in msg and "does not fit" in msg
    with pytest.raises(UserError, match="no such file"):
        init_from(str(tmp_path / "missing.weights.h5"), models, cfg)
    cfg.model.label_nc = 7
    with pytest.raises(UserError, match="label_nc"):
        init_from(str(source_run[0]), models, cfg)



def test_recompute_frames_gives_the_same_loss_gradients_and_statistics():
    """sequence.recompute_frames (gradient checkpointing per frame, `recomputed_call`): the same gradients as
    keeping the activations (in a tf.function, as training runs it), and the BatchNorm running statistics
    updated once per call, not twice."""
    from tfvr.models.vid2vid.generator import Vid2VidGenerator
    from tfvr.models.vid2vid.sequence import recomputed_call

    gen = Vid2VidGenerator(label_nc=3, n_frames_G=2, ngf=4, n_downsampling=1, n_blocks=1)
    labels = tf.constant(np.random.default_rng(0).integers(0, 3, (1, 2, 8, 8)), tf.int32)
    prev = tf.constant(np.random.default_rng(1).uniform(-1, 1, (1, 1, 8, 8, 3)), tf.float32)
    gen(labels, prev)
    stats = [v for v in gen.variables if "moving" in v.path]
    start = _values(stats)
    results = []
    for recompute in (False, True):
        for v, a in zip(stats, start):
            v.assign(a)
        call = (lambda *a, **k: recomputed_call(gen, *a, **k)) if recompute else gen  # noqa: E731

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(prev)
                out = call(labels, prev, None, training=True)
                loss = tf.reduce_mean(tf.square(out["img_final"])) + tf.reduce_mean(out["flow"])
            return loss, tape.gradient(loss, [prev, *gen.trainable_variables])

        loss, grads = step()
        results.append((float(loss), [None if g is None else g.numpy() for g in grads], _values(stats)))
    (l0, g0, s0), (l1, g1, s1) = results
    assert l1 == pytest.approx(l0, rel=1e-6)
    names = ["prev"] + [v.path for v in gen.trainable_variables]
    for name, a, b in zip(names, g0, g1):
        if a is None:  # unconnected without recomputation: zero with it
            assert b is None or np.abs(b).max() == 0, name
        else:
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=name)
    for v, a, b in zip(stats, s0, s1):
        np.testing.assert_array_equal(b, a, err_msg=v.path)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(start, s1)), "the statistics must be updated (once)"
