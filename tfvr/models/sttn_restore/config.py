"""STTN-R configuration: the model (fields = `STTNRestore`'s constructor arguments, a test checks it), the loss
weights and the experiment (what `train/sttn.py` reads from a flagfile as `--config.model.num_feat=32` ...).

No `from __future__ import annotations` here: ml_collections reads the field types and needs real types.
"""

import dataclasses

from tfvr.config import Experiment
from tfvr.data.config import DataConfig


@dataclasses.dataclass
class STTNRestoreConfig:
    """Architecture of `tfvr.models.sttn_restore.STTNRestore` (see its docstring for what each field does).

    Choices the paper leaves open are fields here, with the simplest reading as the default:
    `num_flows` (how many transformed frames x̃ the flow net produces: 1, the paper's single x̃),
    `z_param` (how the continuous frame index is parameterised: "tanh", which keeps z inside [0, T-1] and starts it
    at the reference frame), `residual` (the ResNet head predicts ỹ - reference), `padding` (sampler border handling).
    `use_flow=False` is the single-frame ablation: the same ResNet head on the reference frame alone.
    """

    num_frames: int = 5
    num_channels: int = 3
    use_flow: bool = True
    unet_feat: int = 32
    unet_depth: int = 3
    unet_max_feat: int = 128
    num_flows: int = 1
    z_param: str = "tanh"
    flow_scale: float = 1.0
    z_init: str = "centre"
    padding: str = "border"
    num_feat: int = 64
    num_blocks: int = 9
    residual: bool = True

    def kwargs(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class STTNLossConfig:
    """The training objective. Seed 000 trains x̃ and ỹ jointly against the ground truth; the issue adds a flow
    smoothness (TV) regulariser with its own weight (the seed saw a too-large regulariser dominate). Every term is
    logged (`train/loss/output`, `train/loss/warped`, `train/loss/tv`) whatever its weight.

    Attributes:
        pixel: "mse" (seed 000), "charbonnier" or "l1", used for both ỹ and x̃.
        charbonnier_eps: eps under the square root of the Charbonnier loss.
        output_weight: weight of the loss of ỹ (the restored centre frame).
        warped_weight: weight of the loss of x̃ (each transformed frame against the ground-truth centre frame);
            1.0 = the seed's joint training. With several flows (`model.num_flows` > 1, z_init="spread") this term
            pulls every flow onto the reference frame (the aligned, but equally noisy, one) and undoes the spread:
            measured on the denoising demo at 1200 steps, mean |z - 2| fell from 1.46 to 0.26 with weight 0.1 and
            STTN-R scored 0.16 dB lower than with weight 0 - so the presets with 4 flows set it to 0 (the term is
            still computed and logged as a monitor).
        tv_weight: weight of the total variation of the flow (u, v in pixels and z in frames); keep it small.
    """

    pixel: str = "mse"
    charbonnier_eps: float = 1e-6
    output_weight: float = 1.0
    warped_weight: float = 1.0
    tv_weight: float = 0.001


@dataclasses.dataclass
class STTNRestoreExperiment(Experiment):
    """Everything one STTN-R training run needs (see `tfvr.config.Experiment` for optim/trainer/runtime).

    Attributes:
        model: the STTN-R architecture (`use_flow=False` trains the single-frame ablation alone).
        loss: loss terms and weights.
        data: clips, degradation (denoise: Gaussian noise_sigma; deblur: GoPro-style blur), crops, batch.
        train_ablation: also train the single-frame ablation (the same ResNet head, no flow/sampler) side by side,
            with its own optimizer at the same steps, batches and learning rate, and report it in the evaluation
            (`psnr_ablation`). Ignored when model.use_flow is False.
    """

    name: str = "sttn_restore"
    model: STTNRestoreConfig = dataclasses.field(default_factory=STTNRestoreConfig)
    loss: STTNLossConfig = dataclasses.field(default_factory=STTNLossConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train_ablation: bool = True
