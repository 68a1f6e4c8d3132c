"""A quiet console for tfvr's entry points: `quiet.setup()` before TensorFlow is imported.

TensorFlow 2.21 prints C++/absl start-up lines that `TF_CPP_MIN_LOG_LEVEL=2` does not hide (measured here):
`WARNING: All log messages before absl::InitializeLog() is called are written to STDERR` and
`I0000 ... cudart_stub.cc:31] Could not find cuda drivers ...` come from libraries that log before TensorFlow's
own log settings are read, twice per `import tensorflow`, whatever TF_CPP_MIN_LOG_LEVEL, TF_CPP_MAX_VLOG_LEVEL,
GLOG_minloglevel or ABSL_MIN_LOG_LEVEL say. Later lines (`E0000 ... cuda_platform.cc] failed call to cuInit`,
`E0000 ... oneDNN supports DT_UINT8 only ...`, `meta_optimizer.cc ... remapper failed`) are ERROR-level absl
logs that only `TF_CPP_MIN_LOG_LEVEL=3` hides. Python libraries add INFO lines (PySceneDetect's
`Detecting scenes...`, absl).

`setup(argv=None, verbose=None)`, unless verbose (`--verbose` in `argv`, `verbose=True`, or env `TFVR_VERBOSE=1`):
1. sets `TF_CPP_MIN_LOG_LEVEL=3` (kept as it is when the user set it to 0 or 1: they asked for TF's logs), so the
   ERROR-level noise after the import is not written; TensorFlow's real errors still surface as Python
   exceptions with their message;
2. installs an import hook: when `import tensorflow` runs (the first time, in this process), file descriptor 2
   (where TensorFlow's C++ code and child processes write) is routed through a small filter process that drops
   the lines `is_noise` recognises and passes everything else at once, so real errors, tracebacks and a dying
   process's last words still come out; Python's own `sys.stderr` keeps writing to the terminal directly;
3. lowers the Python loggers `pyscenedetect`, `absl` and `apache_beam` to WARNING (again after `import scenedetect`, which sets
   its logger to INFO).
tfvr's own `tfvr.*` loggers are untouched. Verbose: nothing is changed (and `TFVR_VERBOSE=1` is exported, so
child processes are verbose too). Importing this module is cheap (no TensorFlow).
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import re
import sys
from typing import Optional, Sequence

__all__ = ["setup", "is_verbose", "is_noise", "filter_noise", "filtered_stderr", "NOISY_LOGGERS"]

NOISY_LOGGERS = ("pyscenedetect", "absl", "apache_beam")

_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([\w.\-]+):\d+\] (.*)$")
# ERROR-level lines known to be harmless start-up / graph-optimizer noise (file, message start)
_NOISY_ERRORS = (
    ("cuda_platform.cc", "failed call to cuInit"),
    ("cuda_dnn.cc", "Unable to register"),
    ("cuda_fft.cc", "Unable to register"),
    ("cuda_blas.cc", "Unable to register"),
    ("computation_placer.cc", ""),
    ("meta_optimizer.cc", ""),
    ("mkl_util.h", ""),
    ("onednn", ""),
)
_NOISY_TEXT = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "To enable the following instructions:",
    "oneDNN supports DT_",
)

# Apache Beam's worker processes (`tfvr prepare --runner beam`) log with Python's default format to the inherited
# stderr: their INFO lines and these start-up warnings are noise too (inside `filtered_stderr` only).
_BEAM_NOISE = re.compile(r"^(INFO|DEBUG):|^WARNING:root:apitools not found|^WARNING:__main__:No semi_persistent|"
                         r"^WARNING:apache_beam\.options\.pipeline_options:Discarding unparseable|"
                         r"^WARNING:apache_beam\.runners\.portability\.local_job_service:Worker: severity: WARN")

_state = {"installed": False, "verbose": None}


def is_verbose(argv: Optional[Sequence[str]] = None) -> bool:
    """`--verbose` (or `--verbose=true`) in argv, or env TFVR_VERBOSE set to something other than 0/false/no."""
    if argv is not None:
        for a in argv:
            if a in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1"):
                return True
    return os.environ.get("TFVR_VERBOSE", "").strip().lower() not in ("", "0", "false", "no")


def is_noise(line: str) -> bool:
    """True for a TensorFlow / absl start-up line tfvr hides by default (INFO/WARNING absl lines, known ERROR
    noise). FATAL lines and anything else are never noise."""
    s = line.rstrip("\r\n")
    if not s.strip():
        return False
    if any(s.startswith(t) or t in s for t in _NOISY_TEXT):
        return True
    m = _ABSL_LINE.match(s)
    if not m:
        return False
    level, src, msg = m.groups()
    if level in ("I", "W"):
        return True
    if level == "E":
        return any(src.startswith(f) or (f == "onednn" and "oneDNN" in msg) for f, start in _NOISY_ERRORS
                   if msg.startswith(start))
    return False


def _dup_stderr() -> tuple[int, int, int]:
    """Flushes `sys.stderr`, then (a copy of fd 2, a new pipe's read end, its write end)."""
    try:
        sys.stderr.flush()
    except Exception:
        pass
    return (os.dup(2), *os.pipe())


def filtered_stderr():
    """Context manager: while it is open, file descriptor 2 (this process's and its children's) goes through a
    filter thread that drops `is_noise` lines and Beam workers' INFO / start-up lines and passes everything else
    (tracebacks, errors) on. A no-op when verbose."""
    import contextlib
    import threading

    @contextlib.contextmanager
    def cm():
        if is_verbose():
            yield
            return
        saved, r, w = _dup_stderr()
        os.dup2(w, 2)
        os.close(w)

        def pump():  # owns `saved`: runs until every writer of the pipe is gone, then closes it
            try:
                with os.fdopen(r, "rb") as src:
                    for raw in src:
                        line = raw.decode("utf-8", "replace")
                        if not (is_noise(line) or _BEAM_NOISE.match(line)):
                            os.write(saved, raw)
            finally:
                os.close(saved)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except Exception:
                pass
            os.dup2(saved, 2)  # closes the pipe's last write end held by this process
            # A process started inside the block may still hold the pipe (the fd-2 filter process of a
            # TensorFlow imported here, a Beam worker that is still shutting down): the thread keeps passing its
            # lines on until it exits; waiting for it here cost ~10 s per `tfvr prepare --runner beam`.
            t.join(timeout=0.2)

    return cm()


def filter_noise(text: str) -> str:
    """`text` without its noise lines (line endings kept)."""
    return "".join(ln for ln in text.splitlines(keepends=True) if not is_noise(ln))


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, redirect: bool = True):
        self._loader = loader
        self._redirect = redirect

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self._redirect:
            _install_fd2_filter()
        self._loader.exec_module(module)
        _lower_loggers()  # scenedetect's import calls its init_logger(INFO)


# The filter process: reads what the C++ side (and child processes) write to fd 2, drops noise lines, passes the
# rest at once (a partial line, e.g. a progress bar, after 0.1 s). It ignores SIGINT / SIGTERM (a Ctrl-C of the
# process group must not cut the main process's stderr) and exits when every writer has closed the pipe, so
# whatever a crashing process wrote last still comes out.
_FILTER_SRC = r"""
import os, re, select, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.path.insert(0, sys.argv[1])
from tfvr.quiet import is_noise, _BEAM_NOISE
def out(b):
    t = b.decode("utf-8", "replace")
    if not (is_noise(t) or _BEAM_NOISE.match(t)):
        try:
            os.write(1, b)
        except OSError:
            pass
buf = b""
while True:
    ready = select.select([0], [], [], 0.1 if buf else None)[0]
    if not ready:
        out(buf)
        buf = b""
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        if buf:
            out(buf)
        break
    parts = re.split(rb"(?<=[\n\r])", buf + chunk)
    buf = parts.pop()
    for ln in parts:
        out(ln)
"""


def _install_fd2_filter() -> None:
    """Routes fd 2 through the filter process (once per process). Python's own `sys.stderr` keeps writing to
    the original stream directly (tfvr's log lines, tracebacks, progress bars on a terminal)."""
    if _state.get("filter") is not None:
        return
    import atexit
    import io
    import subprocess

    orig, r, w = _dup_stderr()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _FILTER_SRC, root], stdin=r, stdout=orig,
                                close_fds=True, pass_fds=())
    except OSError:
        os.close(r)
        os.close(w)
        os.close(orig)
        return
    os.close(r)
    os.dup2(w, 2)
    os.close(w)
    _state["filter"] = proc
    if getattr(sys.stderr, "fileno", None) is not None:
        try:
            if sys.stderr.fileno() == 2:
                sys.stderr = io.TextIOWrapper(io.FileIO(os.dup(orig), "w"), encoding=sys.stderr.encoding,
                                              errors="backslashreplace", line_buffering=True)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def close():
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(orig, 2)  # closes this process's end of the pipe: the filter drains and exits
        try:
            proc.wait(timeout=5)
        except Exception:
            pass

    atexit.register(close)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level `tensorflow` package (fd 2 redirected while it runs) and of `scenedetect`
    (its loggers lowered afterwards)."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in ("tensorflow", "scenedetect") or fullname in sys.modules:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, redirect=fullname == "tensorflow")
        return spec


def _lower_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def setup(argv: Optional[Sequence[str]] = None, verbose: Optional[bool] = None) -> bool:
    """Makes the console quiet unless verbose (module docstring). Returns whether it is verbose. Idempotent;
    call it before anything imports TensorFlow (a later call still sets the log levels)."""
    verbose = is_verbose(argv) if verbose is None else bool(verbose)
    _state["verbose"] = verbose
    if verbose:
        os.environ["TFVR_VERBOSE"] = "1"
        return True
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "") not in ("0", "1"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    _lower_loggers()
    if not _state["installed"]:
        sys.meta_path.insert(0, _QuietFinder())
        _state["installed"] = True
    return False
