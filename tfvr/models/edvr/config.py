"""EDVR configuration.

`EDVRConfig`: exactly the `EDVR` constructor's arguments (keras-hub's rule; a test checks it). The first eleven
fields are BasicSR's `EDVR(...)` keyword arguments with BasicSR's defaults (EDVR-M), so a BasicSR YAML `network_g`
section maps onto it one to one. The last three are tfvr's own.

`EDVRExperiment`: a training run (`train/edvr.py`): model, data, loss, the stabilisers, optimizer, trainer, runtime.
No `from __future__ import annotations` here: ml_collections reads the field types.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from tfvr.config import Experiment
from tfvr.data.config import DataConfig
from tfvr.training.config import OptimConfig


@dataclass
class EDVRConfig:
    """Args (BasicSR names and defaults):
        num_in_ch: input channels (3).
        num_out_ch: output channels (3). BasicSR hard-codes 3 in `conv_last`; tfvr uses this value, and the global
            residual needs `num_out_ch == num_in_ch`.
        num_feat: feature channels (64 for M, 128 for L).
        num_frame: input frames T (5 for REDS, 7 for the Vimeo-90K / Vid4 models).
        deformable_groups: offset groups of every DCN (8).
        num_extract_block: ResidualBlockNoBN blocks in feature extraction (5).
        num_reconstruct_block: ResidualBlockNoBN blocks in reconstruction (10 for M, 40 for L).
        center_frame_idx: reference frame index; None = num_frame // 2.
        hr_in: the input is already high resolution (deblurring): two extra stride-2 convs in the predeblur module,
            output at the input size, base = centre frame. Requires `with_predeblur` (BasicSR cannot run without it).
        with_predeblur: PredeblurModule + 1×1 conv instead of `conv_first`.
        with_tsa: TSA fusion; False = a plain 1×1 conv over the concatenated aligned features.
    tfvr only:
        dcn_impl: deformable-conv implementation, "auto" | "reference" | "kernel" (`tfvr.ops.deform_conv`).
        pad_mode: how inputs whose H, W are not multiples of 4 (16 with hr_in) are padded before the network and
            cropped after: "reflect" (default) | "replicate" | "zeros".
        dcn_mode: "dcn" (default, BasicSR) | "conv": the four PCD deformable convs become plain 3x3 convs and the
            offset branch is dropped (seed 001's "DCN -> plain conv, then freeze" workaround for a diverging DCN;
            `--config.model.dcn_mode=conv`). Weights move by BasicSR name through `stabilizers.init_from`: a DCN's
            main `weight`/`bias` go into the plain conv, its `conv_offset` and the `offset_conv*` /
            `cas_offset_conv*` convs are dropped; the other way (a conv-mode run initialising a DCN run) the DCN
            gets the conv's kernel and keeps its zero-initialised offset branch (offset 0, mask sigmoid(0) = 0.5,
            so it starts at half the conv's response plus bias). With zero offsets and unit masks a DCN is exactly
            the plain conv (tests/models/edvr/test_dcn_mode.py).
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_frame: int = 5
    deformable_groups: int = 8
    num_extract_block: int = 5
    num_reconstruct_block: int = 10
    center_frame_idx: Optional[int] = None
    hr_in: bool = False
    with_predeblur: bool = False
    with_tsa: bool = True
    dcn_impl: str = "auto"
    pad_mode: str = "reflect"
    dcn_mode: str = "dcn"

    def to_kwargs(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def basicsr_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))[:11]

    @property
    def scale(self) -> int:
        return 1 if self.hr_in else 4

    @property
    def size_multiple(self) -> int:
        return 16 if self.hr_in else 4


@dataclass
class EDVRLossConfig:
    """Charbonnier loss `sqrt((output - gt)^2 + charbonnier_eps)` on the centre frame.

    Attributes:
        charbonnier_eps: added under the square root (BasicSR's `CharbonnierLoss(eps=1e-12)`; the legacy EDVR code
            used 1e-6, i.e. ε = 1e-3 in sqrt(x² + ε²)).
        reduction: "sum" (BasicSR's EDVR configs: the sum over batch, pixels and channels, so the loss value grows
            with batch and patch size; gradients are summed over replicas) or "mean" (the average per element).
            With Adam the two train almost identically (Adam divides out a constant loss scale); the logged
            `loss/per_pixel` is the mean either way.
    """

    charbonnier_eps: float = 1e-12
    reduction: str = "sum"


@dataclass
class EDVRStabilizerConfig:
    """The training stabilisers EDVR needs (EDVR notes; xinntao/EDVR#16, #91; BasicSR `edvr_model.py`).

    Attributes:
        dcn_lr_mul: learning-rate multiplier of the deformable-conv parameters (BasicSR `dcn_lr_mul`).
        dcn_lr_scope: which parameters it applies to: "dcn" (BasicSR: every parameter of the DCN packs, i.e. the
            deformable kernels and their offset/mask convs), "offset" (only the offset/mask convs inside the DCN
            packs) or "pcd" (the whole PCD alignment module, including the offset-feature convs).
        tsa_warmup_steps: for the first N steps only the fusion (TSA) module trains (stage "tsa_warmup"), then
            everything. Use it when initialising a TSA model from a model trained without TSA. BasicSR's
            `tsa_iter: K` is `tsa_warmup_steps = K - 1`: `EDVRModel.optimize_parameters` freezes all but the fusion at
            iteration 1 and unfreezes everything at iteration K *before* that iteration's update, so iterations
            1..K-1 train only the fusion (checked by tests/models/edvr/test_train_parity.py). The parameters frozen
            during the warm-up start their Adam bias correction at their first update ("torch_adam").
        init_from: initialise the model before step 0 (a fresh run only; a resumed run restores its checkpoint)
            from a tfvr workdir (its newest checkpoint), a `.weights.h5` written by `tfvr convert-weights`, or a
            BasicSR state dict (`.pth` / `.npz`). Weights are copied by BasicSR name where the shapes agree; the
            rest keeps its initialisation, e.g. TSA fusion when the source has none (BasicSR `strict_load: false`).
        init_mode: how reconstruction / feature-extraction blocks are matched when the source has fewer:
            "prefix" (block i ← block i, the extra blocks keep their near-identity init; what the EDVR authors and
            the notes did to initialise 40 blocks from 10) or "repeat" (block i ← block i mod n).
        offset_warn: log a warning when a DCN's mean |offset| exceeds this (BasicSR: 50).
        offset_rollback: above this (legacy EDVR's "Offset mean is larger than 100"), restore the last good
            checkpoint and multiply the DCN group's learning rate by `offset_lr_factor` (what the EDVR authors did
            by hand). 0 disables.
        offset_lr_factor: the factor applied to the DCN group's learning rate on each offset rollback.
        offset_max_failures: stop the run after this many offset rollbacks.
    """

    dcn_lr_mul: float = 1.0
    dcn_lr_scope: str = "dcn"
    tsa_warmup_steps: int = 0
    init_from: str = ""
    init_mode: str = "prefix"
    offset_warn: float = 50.0
    offset_rollback: float = 100.0
    offset_lr_factor: float = 0.5
    offset_max_failures: int = 5


def _default_data() -> DataConfig:
    return DataConfig(task="sr", num_frames=5, crop_size=64, scale=4, batch_size=4, temporal_reverse=False)


def _default_optim() -> OptimConfig:
    # BasicSR train_EDVR_M_x4_SR_REDS(_woTSA).yml: torch Adam 4e-4, betas (0.9, 0.99), eps 1e-8,
    # CosineAnnealingRestartLR.
    return OptimConfig(optimizer="torch_adam", learning_rate=4e-4, epsilon=1e-8, beta1=0.9, beta2=0.99, schedule="cosine_restart",
                       periods=(50000, 100000, 150000, 150000, 150000), restart_weights=(1.0, 1.0, 1.0, 1.0, 1.0),
                       eta_min=1e-7)


@dataclass
class EDVRExperiment(Experiment):
    """A training run of EDVR (see `tfvr.models.edvr.task`)."""

    name: str = "edvr"
    model: EDVRConfig = field(default_factory=EDVRConfig)
    data: DataConfig = field(default_factory=_default_data)
    loss: EDVRLossConfig = field(default_factory=EDVRLossConfig)
    stabilizers: EDVRStabilizerConfig = field(default_factory=EDVRStabilizerConfig)
    optim: OptimConfig = field(default_factory=_default_optim)


def _edvr_l() -> EDVRConfig:
    return EDVRConfig(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=40)


def _edvr_l_stage2() -> EDVRConfig:
    return EDVRConfig(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=20,
                      hr_in=True, with_predeblur=True)


@dataclass
class EDVRStage1Config:
    """The frozen stage-1 model of a stage-2 run (`tfvr.models.edvr.cascade`).

    Attributes:
        weights: a tfvr EDVR workdir (architecture from its config.json, weights from its newest checkpoint), a
            `.weights.h5` written by `tfvr convert-weights`, or a BasicSR / EDVR `.pth` / `.npz` state dict.
        model: the stage-1 architecture when `weights` is not a workdir (default EDVR-L, 5 frames, 40 blocks).
        quantize: round the stage-1 outputs to 8-bit levels (the authors trained stage 2 on result images).
    """

    weights: str = ""
    model: EDVRConfig = field(default_factory=_edvr_l)
    quantize: bool = True


def _stage2_data() -> DataConfig:
    return DataConfig(task="sr", num_frames=9, crop_size=64, scale=4, batch_size=4, temporal_reverse=False)


@dataclass
class EDVRStage2Experiment(EDVRExperiment):
    """Stage 2 of EDVR's two-stage restoration (`train/edvr_stage2.py`): `model` is the stage-2 EDVR (hr_in,
    20 blocks: preset edvr_l_stage2), `stage1` the frozen stage-1 model whose outputs it refines; `data.num_frames`
    = stage-1 frames + stage-2 frames - 1 LR frames per sample."""

    name: str = "edvr_stage2"
    model: EDVRConfig = field(default_factory=_edvr_l_stage2)
    data: DataConfig = field(default_factory=_stage2_data)
    stage1: EDVRStage1Config = field(default_factory=EDVRStage1Config)
