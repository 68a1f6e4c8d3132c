"""vid2vid's training task: config ⇄ constructor, sequential generation = streaming inference, the GAN step on
2 replicas = on 1 replica, and one short end-to-end run of train/vid2vid.py."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (REPO, check_config_errors, check_flagfile, one_cpu_strategy, overrides, run_model_test,
                           run_train_script_test, two_cpu_strategy)
from tfvr.models.vid2vid.config import Vid2VidExperiment, Vid2VidGeneratorConfig
from tfvr.models.vid2vid.generator import Vid2VidGenerator
from tfvr.models.vid2vid.task import Vid2VidTask, generate_sequence


def tiny_config(**over) -> Vid2VidExperiment:
    cfg = Vid2VidExperiment()
    m = cfg.model
    m.ngf, m.n_downsampling, m.n_blocks, m.use_fg_model = 4, 1, 1, False
    d = cfg.disc
    d.ndf, d.n_layers_D, d.num_D, d.n_scales_temporal = 4, 1, 1, 1
    s = cfg.sequence
    s.start_frames = s.max_frames = 3
    s.flow_preset = "fast"
    cfg.data.num_frames, cfg.data.crop_size, cfg.data.batch_size = 3, 16, 2
    cfg.train_baseline = False
    cfg.trainer.log_grad_norm = False
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def synthetic_batch(task, n=2, t=3, size=16):
    from tfvr.data import synthetic

    vids = [synthetic.generate(i, t, size, size, blur=False) for i in range(n)]
    batch = {"frames": tf.constant(np.stack([v.frames for v in vids]).astype(np.float32) / 255.0),
             "labels": tf.constant(np.stack([v.labels for v in vids])),
             "instances": tf.constant(np.stack([v.instances for v in vids]))}
    return {k: v.numpy() for k, v in task.add_reference_flows(batch).items()}


def test_generator_config_constructor_get_config_keras_round_trip_and_unknown_size(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (1, 2, 16, 16)).astype(np.int32)
    prev = rng.uniform(size=(1, 1, 16, 16, 3)).astype(np.float32)
    config = Vid2VidGeneratorConfig(label_nc=4, n_frames_G=2, ngf=4, n_downsampling=1, n_blocks=1, fg_labels=(1,))
    run_model_test(Vid2VidGenerator, config, [labels, prev], tmp_path=tmp_path, hw_axes=[(2, 3), (2, 3)],
                   check_defaults=False)  # label_nc is required; the config defaults to the demo's fg model


def test_stages_grow_the_clip():
    cfg = tiny_config()
    cfg.data.num_frames = 9
    cfg.sequence.start_frames, cfg.sequence.grow_frames, cfg.sequence.grow_every, cfg.sequence.max_frames = 4, 2, 10, 8
    task = Vid2VidTask(cfg)
    assert [task.stage(s) for s in (0, 9, 10, 25, 1000)] == ["seq4", "seq4", "seq6", "seq8", "seq8"]
    assert task.temporal_steps() == [1] and task.flow_steps() == [1]


def test_bad_configs_are_rejected():
    check_config_errors(Vid2VidTask, tiny_config, [
        ("data.task", "denoise", "label2video"), ("sequence.max_frames", 5, "max_frames"),
        ("data.crop_size", 15, "multiple"), ("loss.vgg_weights", "/nonexistent/vgg19.weights.h5", "never downloaded")])


def test_in_graph_sequence_equals_streaming_generation():
    """generate_sequence (the training loop) and synthesize (evaluation / serving order) give the same video;
    synthesize traces its recurrent step once for the first and the later frames (the tensor first_frame flag)."""
    cfg = tiny_config()
    task = Vid2VidTask(cfg)
    gen = task.build_models()["generator"]
    batch = synthetic_batch(task, n=1, t=4)
    seq = tf.function(lambda lab: generate_sequence(gen, lab, training=False))(tf.constant(batch["labels"]))
    video = task.synthesize(gen, batch["labels"][0])
    want = np.clip(np.rint((seq["img_final"][0].numpy() + 1) * 127.5), 0, 255)
    assert np.abs(video.astype(np.int32) - want).max() <= 1
    # frame 0 is the hallucinated image alone
    np.testing.assert_array_equal(seq["img_final"][0, 0], seq["img_raw"][0, 0])
    fns = list(task._synthesizer._step_fns.values())
    assert len(fns) == 1 and fns[0].experimental_get_tracing_count() == 1
    assert np.array_equal(task.synthesize(gen, batch["labels"][0]), video)  # the same function again, no retrace
    assert fns[0].experimental_get_tracing_count() == 1


def _one_step(strategy, cfg, batch):
    from tfvr.training.loop import Trainer

    task = Vid2VidTask(cfg)
    trainer = Trainer(task, "/nonexistent-unused", strategy=strategy)
    tf.keras.utils.set_random_seed(0)
    trainer.build()
    before = [np.asarray(v) for m in trainer.models.values() for v in m.variables]
    logs = trainer.run_step(batch)
    # in creation order: Keras' automatic layer names differ between the two builds in one process
    weights = [(v.path, np.asarray(v), b) for m, b in zip(
        [v for m in trainer.models.values() for v in m.variables], before) for v in [m]]
    return logs, weights


def test_gan_step_on_two_replicas_equals_one_replica():
    cfg = tiny_config()
    # SGD: the weight change is lr × gradient, so equal weights mean equal gradients (Adam's first step is
    # ±lr for any gradient, and would hide differences or magnify float noise near zero)
    cfg.optim = dataclasses.replace(cfg.optim, optimizer="sgd", learning_rate=0.1, beta1=0.0)
    cfg.d_optim = dataclasses.replace(cfg.d_optim, optimizer="sgd", learning_rate=0.1, beta1=0.0)
    task = Vid2VidTask(cfg)
    batch = synthetic_batch(task, n=2)
    logs1, w1 = _one_step(one_cpu_strategy(), cfg, batch)
    logs2, w2 = _one_step(two_cpu_strategy(), cfg, batch)
    assert len(w1) == len(w2)
    for k in ("loss", "loss/d", "loss/f_flow", "loss/gt0_gan"):
        assert logs1[k] == pytest.approx(logs2[k], rel=1e-4, abs=1e-5), k
    for (name, a, a0), (_, b, b0) in zip(w1, w2):  # updated weights and BN statistics of every model
        np.testing.assert_array_equal(a0, b0, err_msg=f"{name}: the two builds start from different weights")
        # Elementwise, with the tolerance scaled by the tensor's own update: synced BatchNorm reduces its
        # statistics across replicas in another order than one device does, and the conv right after it sees
        # gradients that differ by float noise of the update's size (measured on a 2-core AMD EPYC / AVX2:
        # 3 kernels over 1e-5, worst model_down_seg/conv2d_1: 1.86e-5 with an update of max 3.2 (SGD lr 0.1), i.e.
        # 5.8e-6 of it; the Xeon/AMX box of the first session stayed under 1e-5). A real replica bug (a
        # gradient summed instead of averaged, a missing all-reduce) moves the update by 50-100 %.
        update = float(np.abs(a - a0).max())
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=max(1e-5, 1e-4 * update), err_msg=name)


def test_train_script_end_to_end(tmp_path):  # a 4-channel model, 2 steps, 16x16 crops
    flags = tmp_path / "tiny.flags"
    flags.write_text("\n".join(overrides({
        "data.source": "synthetic", "data.task": "label2video", "data.num_frames": 3, "data.crop_size": 16,
        "data.batch_size": 2, "data.synthetic.num_train_videos": 2, "data.synthetic.num_eval_videos": 1,
        "data.synthetic.height": 32, "data.synthetic.width": 32, "data.synthetic.num_frames": 12,
        "data.synthetic.clip_len": 4, "model.ngf": 4, "model.n_downsampling": 1, "model.n_blocks": 1,
        "model.use_fg_model": False, "disc.ndf": 4, "disc.n_layers_D": 1, "disc.num_D": 1,
        "disc.n_scales_temporal": 1, "sequence.start_frames": 2, "sequence.max_frames": 2,
        "sequence.flow_preset": "fast", "eval_videos": 1, "eval_frames": 3, "trainer.num_steps": 2,
        "trainer.log_every": 1, "trainer.image_every": 2, "trainer.checkpoint_every": 2,
        "runtime.strategy": "one_device"})) + "\n")
    run_train_script_test("vid2vid.py", str(flags), [], tmp_path, task=Vid2VidTask.name, export_kind="label-to-video",
                          eval_keys=("psnr_model", "psnr_baseline", "ewarp_model", "ewarp_baseline", "ewarp_gt"))


def test_sequence_folders_feed_the_task(tmp_path):
    from tests.data.test_cityscapes import make_fake_cityscapes

    root = make_fake_cityscapes(tmp_path)
    cfg = tiny_config(sequence_root=str(root))
    cfg.model.label_nc = 5
    task = Vid2VidTask(cfg)
    ic = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=1)
    batch = next(iter(task.build_train_dataset(ic, seed=3)))
    assert batch["frames"].shape == (2, 3, 16, 16, 3)
    assert batch["flow1"].shape == (2, 2, 16, 16, 2) and batch["conf1"].shape == (2, 2, 16, 16, 1)
    videos = task.eval_videos()
    assert len(videos) == 1 and videos[0][0].shape == (5, 24, 32, 3)


@pytest.mark.parametrize("name", ["vid2vid_demo.flags", "vid2vid_cityscapes.flags", "vid2vid_label2city_1024.flags"])
def test_flagfiles_parse_and_make_a_valid_task(name):
    # absl + ml_collections' parser as train/vid2vid.py runs it, then the task's own checks of the combination
    check_flagfile(REPO / "train" / "configs" / name, Vid2VidExperiment, task_cls=Vid2VidTask)
