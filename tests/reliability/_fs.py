"""Helpers of the fault-injection suite: a small real tmpfs (disk-full cases), a tfvr CLI subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "2m"):
    """Mounts a tmpfs of `size` on `path` (created) for the block, always unmounted afterwards. Needs root; the
    test is skipped (with the reason) when not running as root, or when this root may not mount (a container
    without CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        pytest.skip("a real disk-full case needs a small tmpfs: mount needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"running as root, but mounting a tmpfs failed: {r.stderr.strip()[:200]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave: int = 0) -> None:
    """Fills the file system of `path` up to `leave` free bytes (a file `path/filler`)."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(path / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError:
            pass


def tfvr(*args, cwd=None, env=None, timeout=300):
    """`python -m tfvr.cli ARGS` in a subprocess (this checkout first on PYTHONPATH)."""
    e = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "tfvr.cli", *map(str, args)], capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=timeout)


def one_error_line(stderr: str, prog: str) -> str:
    """The stderr of a refused command: no traceback, and besides tfvr's own log lines ("HH:MM:SS W ...") and
    TensorFlow's start-up chatter exactly one line, the last, `<prog>: error: ...`."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not _noise(ln)]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == lines[0], stderr[-3000:]
    return lines[0]


def _noise(line: str) -> bool:
    # TensorFlow / absl start-up chatter that is not tfvr's (C++ logs go to stderr before Python runs)
    return line.startswith(("I0000", "W0000", "WARNING: All log messages", "To enable the following", "oneDNN")) \
        or re.match(r"^\d\d:\d\d:\d\d [IWE] ", line) is not None
