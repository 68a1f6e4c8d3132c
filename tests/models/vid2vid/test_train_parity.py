"""Training-step parity of vid2vid's losses with NVIDIA/vid2vid (tests/fixtures/train_parity_vid2vid.npz, made by
tests/fixtures/make_train_parity_vid2vid.py from NVIDIA's own networks and `Vid2VidModelD` loss code; see its
docstring for the few CPU / torch-version patches and how the first frame is generated).

One tfvr generator step through the real path — `Vid2VidTask.train_step` run by `Trainer.run_step` on a 3-frame
clip (frames generated sequentially by `generate_sequence`, image D on labels ⊕ frame for the final and the raw
images, LSGAN, feature matching, flow L1 against the reference flow, warp of the previous real frame by the
generated flow, weight regulariser, warp loss against the reference-flow warp of the previous generated frame,
temporal D on frames ⊕ flows / 20) — with NVIDIA's weights and the same batch and reference flow / confidence
(FlowNet2 is not available; tfvr's pipeline would compute the DIS flow, here both sides get the same arrays): every
loss term within 1e-4 relative of NVIDIA's.

No tfvr change was needed for these terms (the D losses are logged as ½(real + fake), NVIDIA's `get_losses`).
"""

import ast
import dataclasses

import numpy as np
import pytest

from tests.helpers import REPO, steps_only
from tfvr.models.vid2vid.config import (Vid2VidDiscriminatorConfig, Vid2VidExperiment, Vid2VidGeneratorConfig,
                                        Vid2VidLossConfig, Vid2VidSequenceConfig)
from tfvr.models.vid2vid.convert import load_state_dict
from tfvr.models.vid2vid.task import Vid2VidTask
from tfvr.training.loop import Trainer

FIXTURE = REPO / "tests" / "fixtures" / "train_parity_vid2vid.npz"


def _experiment(opt, fx):
    _, t, h, w = fx["labels"].shape
    exp = Vid2VidExperiment()
    exp.model = Vid2VidGeneratorConfig(label_nc=opt["label_nc"], use_instance=False, n_frames_G=opt["n_frames_G"],
                                       output_nc=3, ngf=opt["ngf"], n_downsampling=opt["n_downsampling"],
                                       n_blocks=opt["n_blocks"], use_fg_model=False, fg_labels=(), no_flow=False,
                                       norm=opt["norm"], padding_type="reflect", n_scales_spatial=1)
    exp.disc = Vid2VidDiscriminatorConfig(ndf=opt["ndf"], n_layers_D=opt["n_layers_D"], num_D=opt["num_D"],
                                          norm=opt["norm"], n_frames_D=opt["n_frames_D"],
                                          n_scales_temporal=opt["n_scales_temporal"], use_video_d=True)
    exp.loss = Vid2VidLossConfig(gan_mode="lsgan", lambda_feat=opt["lambda_feat"], lambda_F=opt["lambda_F"],
                                 lambda_T=opt["lambda_T"], lambda_W=1.0, raw_gan=True, vgg_weights="")
    exp.sequence = dataclasses.replace(Vid2VidSequenceConfig(), start_frames=t, grow_frames=0, max_frames=t)
    exp.data = dataclasses.replace(exp.data, num_frames=t, crop_size=h, batch_size=1)
    exp.train_baseline = False
    exp.trainer = steps_only(exp.trainer, 1, log_grad_norm=False)
    exp.runtime.strategy = "one_device"
    return exp


def test_vid2vid_train_step_parity_of_the_loss_terms_with_nvidia(tmp_path):
    with np.load(FIXTURE, allow_pickle=False) as z:
        fx = {k: z[k] for k in z.files}
    opt = ast.literal_eval(str(fx["config"]))
    trainer = Trainer(Vid2VidTask(_experiment(opt, fx)), str(tmp_path / "run")).build()
    m = trainer.models
    for prefix, net in (("g/", m["generator"].netG0), ("d/", m["image_d"]), ("dt/", m["video_d"].nets[0])):
        load_state_dict(net, {k[len(prefix):]: v for k, v in fx.items() if k.startswith(prefix)})
    logs = trainer.run_step({"frames": fx["frames"].astype(np.float32) / 256.0, "labels": fx["labels"],
                             "instances": np.zeros_like(fx["labels"]), "flow1": fx["flow1"], "conf1": fx["conf1"]})
    ref = {k[5:]: float(v) for k, v in fx.items() if k.startswith("loss/")}
    pairs = {
        "loss/g_gan": ref["G_GAN"], "loss/g_feat": ref["G_GAN_Feat"],
        "loss/d_image": 0.5 * (ref["D_real"] + ref["D_fake"]),
        "loss/f_flow": ref["F_Flow"], "loss/f_warp": ref["F_Warp"], "loss/w": ref["W"], "loss/g_warp": ref["G_Warp"],
        "loss/gt0_gan": ref["G_T_GAN"], "loss/gt0_feat": ref["G_T_GAN_Feat"],
        "loss/d_video0": 0.5 * (ref["D_T_real"] + ref["D_T_fake"]),
    }
    rel = {k: abs(logs[k] - v) / abs(v) for k, v in pairs.items()}
    print("vid2vid train parity: max loss rel %.3g; " % max(rel.values())
          + ", ".join(f"{k[5:]} {v:.2g}" for k, v in rel.items()))
    bad = {k: (logs[k], pairs[k]) for k, r in rel.items() if r > 1e-4}
    assert not bad, f"loss terms (tfvr, NVIDIA) beyond 1e-4 relative: {bad}"
    g_total = sum(pairs[k] for k in pairs if not k.startswith("loss/d_"))
    assert logs["loss"] == pytest.approx(g_total, rel=1e-4)
