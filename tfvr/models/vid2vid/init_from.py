"""vid2vid's `init_from`: start a run with more spatial scales from a trained run with fewer (NVIDIA/vid2vid's
`--load_pretrain checkpoints/label2city_512` for label2city_1024, `train_1024.sh`).

NVIDIA's `load_network(netG<s>, 'G<s>', epoch, load_pretrain)` loads, for every scale s of the new model, the
file `<epoch>_net_G<s>.pth` of the pretrained run when it exists, by PyTorch parameter name: the 512 model's
`G0` becomes the 1024 model's coarse scale `netG0`, and `netG1` (no `G1` file) keeps its initialisation. The
discriminators are loaded the same way (`D`, `D_T<s>`): by name, partially — pix2pixHD names the network of a
multi-scale D that sees the full-resolution input `scale<num_D − 1>`, so the 512 run's two image-D scales
(`scale0`, `scale1`: 256 and 512 wide) land on the 1024 run's `scale0`, `scale1`, which see the same 256- and
512-wide inputs (the 1024-wide `scale2` keeps its initialisation).

Here the same by the same PyTorch names (`convert.state_dict` / the torch module tree the Keras networks keep):

* generator: scale s of the source → scale s of this model for every scale the source has; the target's
  finer scales keep their initialisation. A scale that does not fit (another ngf, label_nc, n_frames_G, …) is a
  one-line `UserError`; so is a source with more scales than this model, or other `label_nc` / `use_instance` /
  `fg_labels`. BatchNorm running statistics are copied with the weights (they are in the state dict).
* discriminators (a workdir source only): `image_d` and every temporal network of `video_d` that both runs
  have, partially: every source tensor must land on a tensor of the same shape here (else `UserError`), the
  target's extra scales keep their initialisation.

Sources: a tfvr vid2vid run folder (its newest checkpoint, raw weights — not the EMA shadow — as EDVR's
`init_from`; `tfvr.training.checkpoints.restore_models`) or a `.weights.h5` written by `tfvr convert-weights
--arch vid2vid` (the generator only: NVIDIA's `latest_net_G0.pth` converted). Only a fresh run is initialised:
a resumed run restores its own checkpoint instead. What was loaded and what kept its initialisation is logged
and returned (`InitReport`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from tfvr.errors import UserError

log = logging.getLogger("tfvr.training")


@dataclasses.dataclass
class InitReport:
    source: str
    loaded: dict  # model / scale name -> number of tensors copied
    kept: dict  # model / scale name -> number of tensors that keep their initialisation
    unused: dict  # source model name -> number of its tensors not used (models this run does not have)

    def line(self) -> str:
        fmt = lambda d: ", ".join(f"{k} {v}" for k, v in d.items()) or "none"  # noqa: E731
        return (f"init_from {self.source}: loaded {fmt(self.loaded)}; kept their initialisation: {fmt(self.kept)}; "
                f"unused in the source: {fmt(self.unused)}")


def _read_source(path: str):
    """({model name: model} of the source, what it is)."""
    p = Path(path)
    if p.is_dir():
        from tfvr.models.vid2vid.task import Vid2VidTask
        from tfvr.training.checkpoints import restore_models

        run = restore_models(p, ema=False, tasks={"vid2vid": Vid2VidTask})
        return run.models, run.path
    if p.name.endswith(".weights.h5"):
        from tfvr.export.converted import load_converted

        model = load_converted(p)
        return {"generator": model}, str(p)
    if not p.exists():
        raise UserError(f"{path}: no such file or folder (init_from: a vid2vid run folder or a .weights.h5)")
    raise UserError(f"{path}: init_from takes a vid2vid run folder or a converted .weights.h5")


def _scales(gen) -> list:
    from tfvr.models.vid2vid.generator import CompositeGenerator

    if isinstance(gen, CompositeGenerator):  # converted NVIDIA netG0 on its own
        return [gen]
    if hasattr(gen, "scale_models"):
        return gen.scale_models()
    raise UserError(f"init_from: the source's generator is a {type(gen).__name__}, not a vid2vid generator")


def _assign(src_model, dst_model, what: str, source: str, partial: bool) -> tuple[int, int]:
    """Copies the source's tensors into `dst_model` by PyTorch name (`convert.load_state_dict`): (copied, kept).
    Strict unless `partial` (then the target may have more tensors, never other shapes or tensors it lacks)."""
    from tfvr.models.vid2vid.convert import load_state_dict, state_dict

    try:
        return load_state_dict(dst_model, state_dict(src_model), partial=partial)
    except ValueError as e:
        raise UserError(f"init_from {source}: {what} does not fit: {e} (another architecture, ngf, label_nc or "
                        f"n_frames_G?)") from None


def init_from(path: str, models: dict, config) -> InitReport:
    """Initialises `models` (a fresh vid2vid run's `build_models()`) from `path` (module docstring)."""
    src, where = _read_source(path)
    mc = config.model
    gen = src.get("generator")
    if gen is None:
        raise UserError(f"init_from {path}: the source has no generator")
    for field in ("label_nc", "use_instance", "fg_labels", "n_frames_G"):
        if hasattr(gen, field) and getattr(gen, field) != getattr(mc, field):
            raise UserError(f"init_from {path}: the source generator has {field}={getattr(gen, field)!r}, this run "
                            f"model.{field}={getattr(mc, field)!r}")
    src_scales, dst_scales = _scales(gen), models["generator"].scale_models()
    if len(src_scales) > len(dst_scales):
        raise UserError(f"init_from {path}: the source generator has {len(src_scales)} spatial scales, this run "
                        f"model.n_scales_spatial={len(dst_scales)}")
    loaded, kept, unused = {}, {}, {}
    for s, (a, b) in enumerate(zip(src_scales, dst_scales)):
        loaded[f"generator/netG{s}"] = _assign(a, b, f"generator scale netG{s}", path, partial=False)[0]
    for s in range(len(src_scales), len(dst_scales)):
        kept[f"generator/netG{s}"] = len(dst_scales[s].weights)
    pairs = []
    if "image_d" in src and "image_d" in models:
        pairs.append(("image_d", src["image_d"], models["image_d"]))
    if "video_d" in src and "video_d" in models:
        a_nets, b_nets = src["video_d"].nets, models["video_d"].nets
        pairs += [(f"video_d/netD_T{s}", a, b) for s, (a, b) in enumerate(zip(a_nets, b_nets))]
        if len(a_nets) > len(b_nets):
            unused["video_d"] = sum(len(n.weights) for n in a_nets[len(b_nets):])
        for s in range(len(a_nets), len(b_nets)):
            kept[f"video_d/netD_T{s}"] = len(b_nets[s].weights)
    for name, a, b in pairs:
        if a.num_D > b.num_D:
            raise UserError(f"init_from {path}: the source's {name} has num_D={a.num_D}, this run disc.num_D={b.num_D}")
        n, k = _assign(a, b, name, path, partial=True)
        loaded[name] = n
        if k:
            kept[name] = k
    for name in src:
        if name not in ("generator", "image_d", "video_d") or name not in models:
            unused[name] = len(src[name].weights)
    report = InitReport(source=where, loaded=loaded, kept=kept, unused=unused)
    log.info("%s", report.line())
    return report
