"""MemVSR configuration (seed 004): every `input_dic` / `Mem_param` setting of the seed as a typed field.

Seed → tfvr (flagfile `--config.<path>=value`):

| seed                               | tfvr field                                  |
|------------------------------------|---------------------------------------------|
| `input_dic['test_type']`           | `nextframe.test_type`                       |
| `input_dic['wsupervised']`         | `nextframe.wsupervised`                     |
| `input_dic['QSsep']`               | `nextframe.qs_sep`                          |
| `input_dic['load']`                | `nextframe.init_from` (a workdir; "" = off) |
| `input_dic['dataset']`             | `nextframe_data.dataset`                    |
| `input_dic['frame_interval']`      | `nextframe_data.frame_interval`             |
| `input_dic['random_interval']`     | `nextframe_data.random_interval`            |
| `input_dic['batch_size']`          | `nextframe_data.batch_size`                 |
| `input_dic['W']`, `['H']`          | `nextframe_data.width`, `.height`           |
| `input_dic['input_size']`, `Mem_param['input_size']` | `nextframe_data.input_size` (sentence length) |
| `channels`, `noskip` (enc/dec)     | `nextframe.channels`, `nextframe.skip`      |
| `input_dic['encoder'/'decoder']`   | `nextframe.encoder` ("unet" / "resnet")     |
| `Mem_param['hops']`                | `memory.hops`                               |
| `Mem_param['embed_size']`          | `memory.embed_size`                         |
| `Mem_param['memory_size']`         | `memory.memory_size`                        |
| `Mem_param['pad']`, VSR `crop`     | `memory.crop`                               |
| memory module class (pixsim / pixwise / pixsentence) | `memory.variant`          |
| `max_iter` / `val_iter` / `save_iter` | `trainer.num_steps` / `trainer.eval_every` / `trainer.checkpoint_every` |
| per-module `lr` of `optimList`     | `optim.learning_rate` × `lr.encoder` / `lr.decoder` / `lr.memory` |
| `criterion` (L1Loss)               | `nextframe.loss` ("l1" / "l2" / "charbonnier") |
| `vis_port` (Visdom)                | TensorBoard under `<workdir>/tb` instead    |

`mode` chooses the use: "nextframe" (encoder/decoder + memory, `train/configs/memvsr_nextframe_demo.flags`) or
"vsr" (EDVR with the memory on the aligned features: `edvr`, `vsr`, `data`, `loss`, `stabilizers` as in
`tfvr.models.edvr`). No `from __future__ import annotations` (ml_collections reads the field types).
"""

from dataclasses import dataclass, field

from tfvr.config import Experiment
from tfvr.data.config import DataConfig
from tfvr.errors import ConfigError
from tfvr.models.edvr.config import EDVRConfig, EDVRLossConfig, EDVRStabilizerConfig
from tfvr.training.config import OptimConfig

MODES = ("nextframe", "vsr")
TEST_TYPES = ("nextframe", "subtract", "opticalflow")
ENCODERS = ("unet", "resnet")
DATASETS = ("synthetic", "humaneva", "charades")
LOSSES = ("l1", "l2", "charbonnier")


@dataclass
class MemoryConfig:
    """The memory (`tfvr.models.memvsr.memory.MemoryModule`).

    Attributes:
        enabled: False = the same model without the memory (the ablation baseline).
        variant: "pixsim" (one weight per slot) | "pixwise" (per-pixel weights) | "pixsentence" (search every
            position).
        hops: rounds of attention.
        embed_size: channels stored in the memory (the seed's 128 / 256).
        memory_size: number of slots.
        crop: neighbourhood search size for "pixwise" (3, 5; 0 = same position only).
        normalize: cosine similarity with a learned temperature (`temperature` = its initial value).
        fusion: "concat" | "add".
    """

    enabled: bool = True
    variant: str = "pixsim"
    hops: int = 1
    embed_size: int = 128
    memory_size: int = 10
    crop: int = 0
    normalize: bool = False
    temperature: float = 10.0
    fusion: str = "concat"

    def module_kwargs(self, input_size: int, channels: int) -> dict:
        return dict(embed_size=self.embed_size, memory_size=self.memory_size, input_size=input_size,
                    hops=self.hops, variant=self.variant, crop=self.crop, normalize=self.normalize,
                    temperature=self.temperature, fusion=self.fusion, channels=channels)


@dataclass
class NextFrameConfig:
    """Next-frame prediction model (`tfvr.models.memvsr.nextframe.NextFramePredictor`).

    Attributes:
        test_type: "nextframe" (the decoder outputs the frame), "subtract" (it outputs the difference to the last
            input frame), "opticalflow" (it outputs a flow; the last frame is backward-warped with it).
        encoder: "unet" (skip connections per level) | "resnet" (residual stages, no skips).
        channels: (image channels, level 1, level 2, ...), the seed's `[3, 32, 64, 128]`; each level halves H, W.
        skip: per-level skip-connection switches of the U-Net (the seed's `noskip` list, passed to its U-Net as
            `skip_ind`; tfvr reads True as "connected"). One entry per level.
        res_blocks: residual blocks per stage of the ResNet encoder/decoder.
        qs_sep: the seed's `QSsep`. False: the query frame (the last input) is also part of the sentence that
            writes the memory; True: the sentence is the frames before it.
        wsupervised: the seed's `wsupervised` (0 in every reported run): weight of an entropy penalty on the
            memory read weights (sharper reads). tfvr's reading; 0 = off.
        loss: the seed's criterion: "l1" (L1Loss), "l2" or "charbonnier".
        init_from: the seed's `load`: a tfvr workdir whose latest checkpoint initialises the models ("" = off).
    """

    test_type: str = "nextframe"
    encoder: str = "unet"
    channels: tuple[int, ...] = (3, 32, 64, 128)
    skip: tuple[bool, ...] = (True, True, True)
    res_blocks: int = 1
    qs_sep: bool = False
    wsupervised: float = 0.0
    loss: str = "l1"
    init_from: str = ""


@dataclass
class NextFrameDataConfig:
    """Clips for next-frame prediction: `input_size` frames `frame_interval` apart, and the frame after them.

    Attributes:
        dataset: "synthetic" (procedural videos, `tfvr.data.synthetic`), "humaneva", "charades" (the seed's
            layouts under `root`; see `tfvr.data.layouts.nextframe`).
        root: data folder for humaneva / charades.
        input_size: sentence length (input frames).
        frame_interval: frames between consecutive inputs (the seed's default 50 on 30-60 fps footage).
        random_interval: draw the interval uniformly in [1, frame_interval] per clip.
        batch_size: global batch size.
        width, height: frames are resized to this size (the seed's 64 × 64).
        num_train_videos, num_eval_videos, video_frames, video_height, video_width, motion: synthetic videos
            (`video_frames` 0 = just long enough: (input_size + 1) × frame_interval + 16).
        eval_clips_per_video: held-out clips per evaluation video (fixed positions).
        seed: data seed (the trainer replaces it per (re)start).
    """

    dataset: str = "synthetic"
    root: str = ""
    input_size: int = 10
    frame_interval: int = 50
    random_interval: bool = False
    batch_size: int = 1
    width: int = 64
    height: int = 64
    num_train_videos: int = 8
    num_eval_videos: int = 2
    video_frames: int = 0
    video_height: int = 64
    video_width: int = 64
    motion: float = 1.0
    eval_clips_per_video: int = 8
    seed: int = 0

    @property
    def synthetic_frames(self) -> int:
        """Frames per synthetic video (`video_frames`, or room for a clip with or without qs_sep + 15)."""
        return self.video_frames or (self.input_size + 1) * self.frame_interval + 16


@dataclass
class ModuleLRConfig:
    """Learning-rate multipliers of the seed's three optimizer groups (`optimList`: encoder, decoder, memory).
    In "vsr" mode `encoder` applies to the EDVR body, `memory` to the memory."""

    encoder: float = 1.0
    decoder: float = 1.0
    memory: float = 1.0


@dataclass
class VSRConfig:
    """EDVR + memory (`tfvr.models.memvsr.vsr.MemEDVR`).

    Attributes:
        with_pcd: PCD alignment (the seed's Table 3: PCD vs no PCD). False: the per-frame features go to the
            memory and fusion unaligned.
    """

    with_pcd: bool = True


@dataclass
class OutputConfig:
    """Saved validation images (the seed's `best_loss/` and `last/` folders).

    Attributes:
        image_dir: folder of `best_loss/` and `last/` ("" = the run's --workdir).
        num_images: validation clips saved per evaluation.
    """

    image_dir: str = ""
    num_images: int = 4


def _default_optim():
    return OptimConfig(learning_rate=1e-3)


def _default_vsr_data():
    return DataConfig(task="sr", scale=4, num_frames=5)


@dataclass
class MemVSRExperiment(Experiment):
    """A MemVSR run: `mode` "nextframe" (uses `nextframe`, `nextframe_data`) or "vsr" (uses `edvr`, `vsr`, `data`,
    `loss`, `stabilizers`); `memory`, `lr`, `output`, `optim`, `trainer`, `runtime` in both."""

    name: str = "memvsr"
    mode: str = "nextframe"
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    nextframe: NextFrameConfig = field(default_factory=NextFrameConfig)
    nextframe_data: NextFrameDataConfig = field(default_factory=NextFrameDataConfig)
    lr: ModuleLRConfig = field(default_factory=ModuleLRConfig)
    edvr: EDVRConfig = field(default_factory=EDVRConfig)
    vsr: VSRConfig = field(default_factory=VSRConfig)
    data: DataConfig = field(default_factory=_default_vsr_data)
    loss: EDVRLossConfig = field(default_factory=EDVRLossConfig)
    stabilizers: EDVRStabilizerConfig = field(default_factory=EDVRStabilizerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    optim: OptimConfig = field(default_factory=_default_optim)

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        def bad(path, msg):
            raise ConfigError(f"--config.{path}: {msg}")

        if self.mode not in MODES:
            bad("mode", f"{self.mode!r} is not one of {MODES}")
        m = self.memory
        from tfvr.models.memvsr.memory import FUSIONS, VARIANTS

        if m.variant not in VARIANTS:
            bad("memory.variant", f"{m.variant!r} is not one of {VARIANTS}")
        if m.fusion not in FUSIONS:
            bad("memory.fusion", f"{m.fusion!r} is not one of {FUSIONS}")
        for name in ("hops", "embed_size", "memory_size"):
            if getattr(m, name) < 1:
                bad(f"memory.{name}", "must be >= 1")
        if m.crop < 0 or (m.crop and m.crop % 2 == 0):
            bad("memory.crop", f"{m.crop}: must be 0 or odd (3, 5)")
        if m.crop and m.variant != "pixwise":
            bad("memory.crop", f"applies to memory.variant=pixwise only (got {m.variant!r})")
        if m.normalize and m.temperature <= 0:
            bad("memory.temperature", "must be > 0")
        if self.mode == "nextframe":
            n, d = self.nextframe, self.nextframe_data
            if n.test_type not in TEST_TYPES:
                bad("nextframe.test_type", f"{n.test_type!r} is not one of {TEST_TYPES}")
            if n.encoder not in ENCODERS:
                bad("nextframe.encoder", f"{n.encoder!r} is not one of {ENCODERS}")
            if n.loss not in LOSSES:
                bad("nextframe.loss", f"{n.loss!r} is not one of {LOSSES}")
            if len(n.channels) < 2 or n.channels[0] != 3 or min(n.channels) < 1:
                bad("nextframe.channels", f"{n.channels}: (3, c1, c2, ...) with at least one level")
            levels = len(n.channels) - 1
            if n.encoder == "unet" and len(n.skip) != levels:
                bad("nextframe.skip", f"{len(n.skip)} switches for {levels} levels of nextframe.channels")
            if d.dataset not in DATASETS:
                bad("nextframe_data.dataset", f"{d.dataset!r} is not one of {DATASETS}")
            if d.dataset != "synthetic" and not d.root:
                bad("nextframe_data.root", f"the {d.dataset} folder is required")
            if d.input_size < 1:
                bad("nextframe_data.input_size", "must be >= 1")
            if d.frame_interval < 1:
                bad("nextframe_data.frame_interval", "must be >= 1")
            mult = 2 ** levels
            if d.width % mult or d.height % mult:
                bad("nextframe_data.width", f"width and height must be multiples of {mult} ({levels} levels)")
            if d.batch_size < 1:
                bad("nextframe_data.batch_size", "must be >= 1")
            span = (d.input_size + int(n.qs_sep)) * d.frame_interval + 1
            if d.dataset == "synthetic" and 0 < d.video_frames < span:
                bad("nextframe_data.video_frames", f"{d.video_frames} frames cannot hold a clip of "
                    f"(input_size + qs_sep) × frame_interval + 1 = {span} frames")
        else:
            if self.edvr.num_frame != self.data.num_frames:
                bad("edvr.num_frame", f"{self.edvr.num_frame} differs from data.num_frames={self.data.num_frames}")


__all__ = ["MemVSRExperiment", "MemoryConfig", "NextFrameConfig", "NextFrameDataConfig", "ModuleLRConfig",
           "VSRConfig", "OutputConfig", "MODES", "TEST_TYPES", "ENCODERS", "DATASETS", "LOSSES"]
