"""vid2vid configuration: the generator (fields = `Vid2VidGenerator`'s constructor arguments, a test checks it), the
discriminators, the loss weights, the sequential-training schedule and the experiment (what `train/vid2vid.py`
reads from a flagfile as `--config.model.ngf=32` ...).

No `from __future__ import annotations` here: ml_collections reads the field types and needs real types.
Defaults are NVIDIA/vid2vid's (`options/*.py`) unless a comment says otherwise.
"""

import dataclasses

from tfvr.config import Experiment
from tfvr.data.config import DataConfig
from tfvr.errors import ConfigError
from tfvr.training.config import OptimConfig


@dataclasses.dataclass
class Vid2VidGeneratorConfig:
    """`Vid2VidGenerator(**asdict(cfg))` (see its docstring).

    label_nc defaults to the embedded synthetic data's classes (sky, ground, ball, box, blob) and fg_labels to
    its foreground "things" (ball, box, blob); vid2vid's Cityscapes setting is label_nc=35, fg_labels=(26,).
    """

    label_nc: int = 5
    use_instance: bool = False
    n_frames_G: int = 3
    output_nc: int = 3
    ngf: int = 128
    n_downsampling: int = 3
    n_blocks: int = 9
    use_fg_model: bool = True
    fg_labels: tuple[int, ...] = (2, 3, 4)
    no_flow: bool = False
    norm: str = "batch"
    padding_type: str = "reflect"
    n_scales_spatial: int = 1
    n_blocks_local: int = 3


@dataclasses.dataclass
class Vid2VidDiscriminatorConfig:
    """The conditional image D (`MultiscaleDiscriminator` on labels ⊕ frame) and the video D (one
    `MultiscaleDiscriminator` per temporal scale on n_frames_D frames ⊕ their flows).

    Temporal scale s compares frames n_frames_D**s apart (1, 3, 9 …: vid2vid's frame skipping).
    use_video_d=False drops the video D (the per-frame baseline never has one).
    """

    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2
    norm: str = "batch"
    n_frames_D: int = 3
    n_scales_temporal: int = 2
    use_video_d: bool = True


@dataclasses.dataclass
class Vid2VidLossConfig:
    """Loss weights (vid2vid's `lambda_*`) and options.

    gan_mode: "lsgan" (vid2vid's `gan_mode='ls'`), "hinge" or "nsgan".
    lambda_feat: discriminator feature matching (and VGG) weight.
    lambda_F: flow L1 against the confidence-masked reference flow.
    lambda_T: warp losses (reference-flow warp of the previous output; own-flow warp of the previous real frame).
    lambda_W: the occlusion-weight regulariser (mean of w where the reference flow is confident; vid2vid uses 1).
    raw_gan: also show the hallucinated image `img_raw` to the image D (vid2vid does).
    vgg_weights: path to local Keras VGG19 (`include_top=False`) weights (.h5 / .weights.h5); "" = no VGG loss.
        Never downloaded.
    """

    gan_mode: str = "lsgan"
    lambda_feat: float = 10.0
    lambda_F: float = 10.0
    lambda_T: float = 10.0
    lambda_W: float = 1.0
    raw_gan: bool = True
    vgg_weights: str = ""


@dataclasses.dataclass
class Vid2VidSequenceConfig:
    """Sequential generation during training.

    Each step generates a clip frame by frame: the first frame without flow (previous frames are zeros, only the
    hallucinated image is used, as vid2vid's `no_first_img`), then each frame from the model's own previous
    outputs. Gradients flow through previous outputs inside windows of `bptt_frames` frames (truncated BPTT; 1 =
    vid2vid's `max_frames_backpropagate=1`: previous outputs are constants).
    The clip length grows progressively: `start_frames` frames at first, `grow_frames` more every `grow_every`
    steps, up to `max_frames` (vid2vid's `n_frames_total` / `niter_step` schedule; ≤ data.num_frames).
    flow_preset: OpenCV DIS preset of the reference flow ("ultrafast", "fast", "medium").
    recompute_frames: gradient checkpointing per generated frame (`sequence.recomputed_call`): backprop keeps no
        generator activations across the clip, each frame's forward runs again in the backward pass (one more
        generator forward per frame; same gradients; running statistics updated once). Off by default (not in
        NVIDIA's trainer). Measured on label2city_1024 at 2 generated frames: no lower peak (11.45 vs 11.27 GiB at
        256x512, docs/performance.md "vid2vid label2city_1024"); the kept activations it removes grow with the
        clip length.
    """

    start_frames: int = 4
    grow_frames: int = 2
    grow_every: int = 1000
    max_frames: int = 8
    bptt_frames: int = 2
    flow_preset: str = "medium"
    recompute_frames: bool = False


def _optim():
    return OptimConfig(optimizer="adam", learning_rate=2e-4, beta1=0.5, beta2=0.999)


def _data():
    return DataConfig(task="label2video", num_frames=9, crop_size=64, batch_size=2, rot90=False, vflip=False,
                      temporal_reverse=False)


@dataclasses.dataclass
class Vid2VidExperiment(Experiment):
    """Everything one vid2vid training run needs (see `tfvr.config.Experiment` for optim/trainer/runtime).

    Attributes:
        model: the generator.
        disc: the discriminators.
        loss: loss weights.
        sequence: sequential generation and the progressive clip length.
        data: label-to-video clips (`data.task="label2video"`: frames, labels, instances). Flips that change the
            meaning of a street scene (vertical, rot90) and time reversal are off by default.
        optim: the generator's Adam (lr 2e-4, β = (0.5, 0.999), as vid2vid).
        d_optim: the discriminators' Adam (the same).
        train_baseline: also train the per-frame baseline side by side (the same generator with `no_flow=True`
            fed no previous frames, its own image D, no video D, no flow/warp losses) at the same steps and
            batches, and report it in the evaluation (`psnr_baseline`, `ewarp_baseline`).
        eval_videos: held-out synthetic label videos (`tfvr.data.synthetic.generate`, seeds disjoint from the
            training videos', data.synthetic.height × width, no cuts) the evaluation generates in full (0 = use
            the clips of the `val` split of `data` instead).
        eval_frames: frames per held-out evaluation video.
        sequence_root: a folder laid out like NVIDIA/vid2vid's `datasets/Cityscapes` (`train_A/<seq>/` label maps,
            `train_B/<seq>/` frames, optional `train_inst/<seq>/`; `tfvr.data.layouts.cityscapes`) to train on
            instead of `data.source`; crops, batch size, frames per clip and seed still come from `data`. The
            evaluation then generates the `val_A` sequences (their first `eval_frames` frames). Set model.label_nc
            (and fg_labels, use_instance) to the data's classes: 35, (26,) and true for Cityscapes.
        fix_global_steps: NVIDIA/vid2vid's `--niter_fix_global`, in steps: for the first `fix_global_steps`
            steps only the finest spatial scale of the generator (the last local enhancer, `netG<n−1>`) is trained;
            the coarser scales run outside the gradient (their forward is `tf.stop_gradient`-ed, so backprop keeps
            none of their activations and their variables get no update; BatchNorm still uses and updates its
            batch statistics there, as NVIDIA's modules stay in train mode), then every scale trains (stage
            `seq<L>_fixglobal` → `seq<L>`). NVIDIA counts epochs (one iteration per training sequence at batch 1):
            steps = epochs × training sequences / global batch (10 epochs of Cityscapes' 2975 sequences at batch 1
            = 29750). NVIDIA then builds a new Adam over all scales; here the `g` optimizer keeps its state, so use
            `optim.optimizer="torch_adam"` (per-variable step counts: the coarse scales start their bias
            correction at t = 1, as in NVIDIA's new Adam; the finest scale keeps its moments where NVIDIA's restart
            them). Needs model.n_scales_spatial > 1. 0 = off.
        init_from: NVIDIA's `--load_pretrain`: a vid2vid run folder (newest checkpoint, raw weights) or a converted
            `.weights.h5` whose generator scales initialise this run's coarsest ones by PyTorch parameter name
            (a 512 run's netG0 → a 1024 run's netG0), and, from a run folder, the image / video discriminators
            partially (`tfvr.models.vid2vid.init_from`). A fresh run only; "" = off.
    """

    name: str = "vid2vid"
    model: Vid2VidGeneratorConfig = dataclasses.field(default_factory=Vid2VidGeneratorConfig)
    disc: Vid2VidDiscriminatorConfig = dataclasses.field(default_factory=Vid2VidDiscriminatorConfig)
    loss: Vid2VidLossConfig = dataclasses.field(default_factory=Vid2VidLossConfig)
    sequence: Vid2VidSequenceConfig = dataclasses.field(default_factory=Vid2VidSequenceConfig)
    data: DataConfig = dataclasses.field(default_factory=_data)
    optim: OptimConfig = dataclasses.field(default_factory=_optim)
    d_optim: OptimConfig = dataclasses.field(default_factory=_optim)
    train_baseline: bool = True
    eval_videos: int = 2
    eval_frames: int = 16
    sequence_root: str = ""
    fix_global_steps: int = 0
    init_from: str = ""


def size_multiple(model: Vid2VidGeneratorConfig) -> int:
    """What frame sides must be a multiple of: 2**(n_downsampling + n_scales_spatial − 1)."""
    return 2 ** (model.n_downsampling + model.n_scales_spatial - 1)


def check_experiment(c: Vid2VidExperiment) -> None:
    """The cross-field checks of a training run (`Vid2VidTask` runs them); `ConfigError` naming the fields."""
    if c.data.task != "label2video":
        raise ConfigError(f"data.task={c.data.task!r}: vid2vid trains on task=label2video clips")
    s = c.sequence
    if not 1 <= s.start_frames <= s.max_frames <= c.data.num_frames:
        raise ConfigError(f"sequence: need 1 <= start_frames ({s.start_frames}) <= max_frames ({s.max_frames}) "
                          f"<= data.num_frames ({c.data.num_frames})")
    if s.start_frames < 2 and not c.model.no_flow:
        raise ConfigError("sequence.start_frames must be >= 2 with flow (the first frame has no flow)")
    if s.bptt_frames < 1:
        raise ConfigError("sequence.bptt_frames must be >= 1")
    mult = size_multiple(c.model)
    if any(d % mult for d in c.data.crop_hw):
        raise ConfigError(f"data.crop_size={c.data.crop_size} must be a multiple of {mult} (both sides) "
                          "(2**(model.n_downsampling + model.n_scales_spatial - 1))")
    if c.fix_global_steps < 0:
        raise ConfigError(f"fix_global_steps={c.fix_global_steps} must be >= 0")
    if c.fix_global_steps and c.model.n_scales_spatial < 2:
        raise ConfigError(f"fix_global_steps={c.fix_global_steps} needs model.n_scales_spatial > 1 (it trains only "
                          "the finest scale first)")
    from tfvr.losses.adversarial import KINDS

    if c.loss.gan_mode not in KINDS:
        raise ConfigError(f"loss.gan_mode={c.loss.gan_mode!r}: expected one of {KINDS}")
