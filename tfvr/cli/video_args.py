"""The arguments every "model over a video" command shares (`tfvr restore`, `inpaint`, `synthesize`).

`add_io(p, source, source_help, output_help, model_help)` first (the positional input and output, `--model`),
the command's own options next, then `add_run_options(p, max_frames_help, fps_help)` (`--max-frames`, `--fps`,
`--overwrite`, `--quiet`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_io(p: argparse.ArgumentParser, source: str, source_help: str, output_help: str, model_help: str) -> None:
    p.add_argument(source, type=Path, help=source_help)
    p.add_argument("output", type=Path, help=output_help)
    p.add_argument("--model", required=True, type=Path, help=model_help)


def add_run_options(p: argparse.ArgumentParser, max_frames_help: str, fps_help: str) -> None:
    p.add_argument("--max-frames", type=int, default=None, help=max_frames_help)
    p.add_argument("--fps", type=float, default=None, help=fps_help)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it is a file or a folder tfvr wrote")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
