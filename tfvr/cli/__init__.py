"""The `tfvr` console script.

Each sub-command lives in its own module `tfvr.cli.<name>` exposing `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their command runs, so `tfvr --help` does not import TensorFlow.
A command fails with a one-line `tfvr <cmd>: error: ...` message and a non-zero exit code, never a traceback,
for errors that are the user's to fix (`tfvr.errors.UserError`).
"""

from __future__ import annotations

import os as _os
import sys as _sys

# `python -m tfvr.cli` puts the current folder first on sys.path, so a .py shipped in a workdir one runs it from
# would shadow a module tfvr imports later. Drop that entry (what Python 3.11's -P does); tfvr itself is found.
if _sys.argv[:1] == ["-m"] and _sys.path and _sys.path[0] in ("", _os.getcwd()) and not _sys.flags.safe_path:
    del _sys.path[0]

import argparse
import importlib
import importlib.util
import sys

# name -> (module, one-line help). Order is the order `tfvr --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("tfvr.cli.prepare", "split real videos into scenes and write TFRecord training clips"),
    "make-synthetic": ("tfvr.cli.synth_video", "write a synthetic (procedural) video, optionally degraded, as .mp4"),
    "score": ("tfvr.cli.eval", "PSNR/SSIM of predicted frame folders against ground-truth folders"),
    "evaluate": ("tfvr.cli.evaluate", "run a model over a benchmark layout (Vid4, REDS4, Vimeo-90K) and score it"),
    "export": ("tfvr.cli.export", "export a training run as a TF Serving SavedModel (uint8 in/out)"),
    "restore": ("tfvr.cli.restore", "restore (denoise, deblur, super-resolve) a video file with a SavedModel"),
    "inpaint": ("tfvr.cli.inpaint", "remove masked objects from a video file with an STTN-I SavedModel"),
    "synthesize": ("tfvr.cli.synthesize", "generate a photoreal video from a label video with a vid2vid SavedModel"),
    "convert-weights": ("tfvr.cli.convert_weights", "convert PyTorch (BasicSR / authors') weights to Keras .weights.h5"),
    "presets": ("tfvr.cli.presets", "list the released checkpoints tfvr converts by file name, with published scores"),
}

# Renamed commands: old name -> new name. The old names work for one more release (0.2) with a one-line notice.
ALIASES: dict[str, str] = {
    "eval": "score",
    "synth-video": "make-synthetic",
}


def _resolve_alias(argv: list[str]) -> list[str]:
    """Replaces a deprecated command name (the first non-option argument) by its new name, with a notice."""
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), None)
    if i is None or argv[i] not in ALIASES:
        return argv
    old, new = argv[i], ALIASES[argv[i]]
    print(f"tfvr: '{old}' is deprecated and will be removed in tfvr 0.2; use 'tfvr {new}'", file=sys.stderr)
    return argv[:i] + [new] + argv[i + 1:]


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module, help_) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = (module, help_)
    return found


def main(argv: list[str] | None = None) -> int:
    from tfvr.errors import UserError

    from tfvr import quiet

    argv = list(sys.argv[1:] if argv is None else argv)
    quiet.setup(argv)  # before any command module imports TensorFlow; `--verbose` is accepted anywhere
    argv = _resolve_alias([a for a in argv if a != "--verbose"])
    commands = _available()
    renamed = ", ".join(f"{old} -> {new}" for old, new in ALIASES.items())
    parser = argparse.ArgumentParser(
        prog="tfvr", description="tfvr: video restoration models for TensorFlow 2 / Keras 3.",
        epilog=f"Renamed commands (old names still work until tfvr 0.2, with a notice): {renamed}.")
    from tfvr import __version__

    parser.add_argument("--version", action="version", version=f"tfvr {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ start-up logs and third-party INFO logs (or env TFVR_VERBOSE=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Build only the chosen command's parser fully (its module may import TensorFlow); list the others by name.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in commands.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(commands[args.command][0])
    try:
        return int(module.run(args) or 0)
    except UserError as e:
        print(f"tfvr {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tfvr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - disk full / permission / TF disk errors: one line (tfvr.safety)
        from tfvr.safety import error_line

        line = error_line(e)
        if line is None:
            raise
        print(f"tfvr {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
