"""`tfvr convert-weights`: PyTorch weights (BasicSR / the authors' code) → a Keras `.weights.h5`.

    tfvr convert-weights --arch edvr|sttn_inpaint|vid2vid [--preset NAME] [--kwargs JSON] IN.(pth|npz) -o OUT.weights.h5

Reads the state dict with `tfvr.export.torch_state.load_state_dict` (`.npz` and `.pth` alike, no torch
needed: a restricted unpickler, see `tfvr.export.pth`), builds the Keras model with the family's converter, and writes

* `OUT.weights.h5`: `model.save_weights` (Keras 3 requires the `.weights.h5` suffix), and
* `OUT.config.json` beside it: `{"arch", "class", "config": model.get_config(), "source", "num_params"}` — what is
  needed to rebuild the model (`cls.from_config(config)`, build, `load_weights`),

each written to a temporary name and renamed, so a failed conversion leaves nothing behind.

Convention for converters (how a family plugs in): `--arch NAME` is a family whose record (`tfvr.family.Family`,
`tfvr.registry`) names a `converter`; this command calls that `convert_cli(state_dict, preset, kwargs) -> keras.Model`, where `state_dict` is `{PyTorch name: np.ndarray}` (PyTorch
layouts), `preset` is the `--preset` string or None, `kwargs` the parsed `--kwargs` JSON object or None (the
reference constructor's keyword arguments; with a preset they override its fields). If `convert_cli` also takes
a `source` keyword, it gets the input file name for its error messages. The returned model must be built, with
every weight assigned. A converter raises `tfvr.errors.UserError` (or ValueError / KeyError, which this
command turns into a one-line error naming the input file) for weights that do not fit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from tfvr.errors import UserError
from tfvr.export.converted import config_path_for, load_converted  # noqa: F401  (re-exported)

SUFFIX = ".weights.h5"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="PyTorch state dict: .pth/.pt (read without torch) or .npz")
    parser.add_argument("-o", "--output", type=Path, required=True, help=f"output file, must end with {SUFFIX}")
    from tfvr.registry import converter_names

    parser.add_argument("--arch", required=True, choices=converter_names(), help="model family")
    parser.add_argument("--preset", default=None, help="named configuration of the family (e.g. edvr_l)")
    parser.add_argument("--kwargs", default=None, metavar="JSON",
                        help='constructor kwargs as a JSON object, e.g. \'{"num_feat": 128, "with_tsa": false}\'')
    parser.add_argument("--key", default=None,
                        help="entry of a wrapped checkpoint to read (default: params_ema, params, state_dict, ...)")


def _parse_kwargs(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--kwargs is not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise UserError(f"--kwargs must be a JSON object, got {type(value).__name__}: {text!r}")
    return value


def _atomic_write(path: Path, write) -> None:
    """`write(tmp)` into a temporary sibling (same suffixes), then checked, umask applied and renamed
    (`tfvr.safety.atomic_file`)."""
    from tfvr.safety import atomic_file

    with atomic_file(path) as tmp:
        tmp.unlink()  # h5py / Keras create the file themselves
        write(str(tmp))


def convert(arch: str, input_path: Path, output: Path, preset: str | None = None, kwargs: dict | None = None,
            key: str | None = None):
    """The command as a function; returns the Keras model."""
    from tfvr.export.torch_state import load_state_dict

    if not str(output).endswith(SUFFIX):
        raise UserError(f"{output}: the output name must end with {SUFFIX} (Keras save_weights requires it)")
    if not output.parent.is_dir():
        raise UserError(f"{output}: the folder {output.parent} does not exist")
    from tfvr.export.converted import _converter, build_from_state_dict

    _converter(arch)  # an unknown --arch fails before the input is read
    state_dict = load_state_dict(input_path, key=key)
    model = build_from_state_dict(arch, state_dict, preset, kwargs, source=str(input_path))

    meta = {"arch": arch, "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "config": model.get_config(), "source": str(input_path), "preset": preset,
            "num_params": num_params(model)}
    cfg_path = config_path_for(output)
    from tfvr.safety import check_output

    for target in (output, cfg_path):  # a single file may be replaced, never the input or a training run
        check_output(target, [input_path], overwrite=True)
    _atomic_write(output, model.save_weights)
    try:
        _atomic_write(cfg_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, default=str) + "\n"))
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return model


def num_params(model) -> int:
    """Trainable parameters (what PyTorch's `sum(p.numel() for p in m.parameters())` counts)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def run(args: argparse.Namespace) -> int:
    kwargs = _parse_kwargs(args.kwargs)
    model = convert(args.arch, args.input, args.output, args.preset, kwargs, args.key)
    print(f"{args.input} → {args.output} ({type(model).__name__}, {num_params(model):,} parameters); "
          f"config: {config_path_for(args.output)}")
    return 0
